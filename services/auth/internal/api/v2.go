package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

// API v2 serves the resources of v1 through the very same handlers and use cases. Two
// things differ, and both live here, outside the handlers:
//
//   - errors are RFC 9457 application/problem+json: the server renders every error of a
//     path under /v2 that way (httpx.WithProblemJSON), after MapError, with the same
//     status, code and headers (Retry-After, RateLimit-*, WWW-Authenticate) as v1;
//   - the refresh token never travels in a body: login and refresh set it in a cookie,
//     refresh and logout read it from there, and the three routes that use the cookie
//     pass a CSRF guard first.
//
// Only login, login/mfa, passkey/finish, otp/verify, refresh and logout have v2 adapters; every other route is one
// handler registered under both prefixes (registerShared).

// The refresh cookie. API.md scopes it to /v2/auth so that it is sent to the three token
// routes and nowhere else. The __Host- prefix would pin it to the host (no Domain, so a
// sibling subdomain cannot overwrite it) but requires Path=/, which would send the
// refresh token with every request to the host, so the name carries no prefix; Secure,
// HttpOnly and SameSite=Strict still apply, and the CSRF guard covers what SameSite
// does not (same-site subdomains).
const (
	refreshCookieName = "tf_refresh"
	refreshCookiePath = "/v2/auth"
)

// errCSRF: a cookie-based call without X-Requested-With and without an allowed Origin
// (403 csrf_failed).
var errCSRF = errors.New("csrf check failed")

// registerV2 adds the v2 token routes (the others are shared, see Register), and the
// deprecation headers of /v1/* when API_V1_SUNSET is set.
func (h *Handler) registerV2(e *echo.Echo) {
	if !h.cfg.V1Sunset.IsZero() {
		// Before routing and every other middleware: every v1 answer carries the
		// headers, a 404, 405 or 429 of the global budget included.
		e.Pre(h.deprecateV1)
		e.Use(v1SuccessorLink(e))
	}
	auth, csrf := h.authenticate, h.csrfGuard
	e.POST("/v2/auth/login", h.loginV2, csrf)
	e.POST("/v2/auth/login/mfa", h.loginMFAV2, csrf)
	e.POST("/v2/auth/passkey/finish", h.finishPasskeyLoginV2, h.requireFlag(flags.Passkeys), csrf)
	e.POST("/v2/auth/otp/verify", h.verifyOTPV2, h.requireFlag(flags.OTPLogin), csrf)
	e.POST("/v2/auth/refresh", h.refreshV2, csrf)
	e.POST("/v2/auth/logout", h.logoutV2, csrf, auth)
}

// tokenPairV2View is a v2 token pair: the refresh token is in the cookie, never here.
type tokenPairV2View struct {
	AccessToken string            `json:"access_token"`
	TokenType   string            `json:"token_type"`
	ExpiresIn   int               `json:"expires_in"`
	User        accounts.UserView `json:"user"`
}

// renderPairV2 answers a pair the v2 way: the refresh token in the cookie, the rest in
// the body.
func (h *Handler) renderPairV2(c echo.Context, p account.TokenPair) error {
	h.setRefreshCookie(c, p.RefreshToken)
	v := accounts.ViewPair(p)
	return c.JSON(http.StatusOK, tokenPairV2View{AccessToken: v.AccessToken, TokenType: v.TokenType,
		ExpiresIn: v.ExpiresIn, User: v.User})
}

// loginV2: with MFA on, the answer is v1's challenge (no tokens, no cookie), finished
// at /v2/auth/login/mfa.
func (h *Handler) loginV2(c echo.Context) error {
	pair, err := h.loginPair(c)
	if err != nil {
		return err
	}
	if pair.MFARequired {
		return c.JSON(http.StatusOK, accounts.ViewMFARequired(pair))
	}
	return h.renderPairV2(c, pair)
}

func (h *Handler) loginMFAV2(c echo.Context) error {
	pair, err := h.loginMFAPair(c)
	if err != nil {
		return err
	}
	return h.renderPairV2(c, pair)
}

// refreshV2 rotates the refresh token of the cookie. A refresh_token in the body is
// ignored (the body is still held to the JSON rules). An invalid or reused token expires
// the cookie: it can never succeed again.
func (h *Handler) refreshV2(c echo.Context) error {
	if err := httpx.BindJSON(c, &struct{}{}); err != nil {
		h.metrics.refresh(err)
		return err
	}
	pair, err := h.svc.Refresh(c.Request().Context(), refreshCookie(c), client(c))
	h.metrics.refresh(err)
	if err != nil {
		if errors.Is(err, account.ErrInvalidRefreshToken) || errors.Is(err, account.ErrRefreshTokenReused) {
			expireRefreshCookie(c)
		}
		return err
	}
	return h.renderPairV2(c, pair)
}

// logoutV2 ends the caller's session (and the cookie's, when it is another of the
// caller's own, as v1 does with a body token) and expires the cookie.
func (h *Handler) logoutV2(c echo.Context) error {
	if err := httpx.BindJSON(c, &struct{}{}); err != nil {
		return err
	}
	if err := h.svc.Logout(c.Request().Context(), principal(c), refreshCookie(c)); err != nil {
		return err
	}
	expireRefreshCookie(c)
	return noContent(c)
}

// refreshCookie is the cookie's refresh token, "" when there is none.
func refreshCookie(c echo.Context) string {
	ck, err := c.Cookie(refreshCookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

// setRefreshCookie sets the refresh token for REFRESH_TOKEN_TTL, the idle lifetime of
// the session, renewed at each rotation like the session itself.
func (h *Handler) setRefreshCookie(c echo.Context, rt string) {
	ck := &http.Cookie{Name: refreshCookieName, Value: rt, Path: refreshCookiePath,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
	if ttl := h.cfg.RefreshTokenTTL; ttl >= time.Second {
		ck.MaxAge = int(ttl / time.Second)
		ck.Expires = time.Now().Add(ttl).UTC()
	}
	c.SetCookie(ck)
}

// expireRefreshCookie tells the browser to drop the cookie (Max-Age=0 and an Expires in
// the past, for clients that know only Expires).
func expireRefreshCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: refreshCookieName, Value: "", Path: refreshCookiePath,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		MaxAge: -1, Expires: time.Unix(0, 0).UTC()})
}

// csrfGuard protects the routes that read or set the refresh cookie. A browser sends
// X-Requested-With cross-origin only after a CORS preflight, which only the
// CORS_ALLOWED_ORIGINS pass, and a browser's Origin cannot be forged by a page; a
// request with neither (a form, a simple fetch from another site) is refused. A
// cross-site text/plain POST is refused earlier still by the JSON-only body policy
// (415).
func (h *Handler) csrfGuard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Request().Header
		if hd.Get(echo.HeaderXRequestedWith) != "" {
			return next(c)
		}
		if o := hd.Get(echo.HeaderOrigin); o != "" && slices.Contains(h.cfg.CORSAllowedOrigins, o) {
			return next(c)
		}
		return errCSRF
	}
}

// deprecateV1 marks every /v1 answer, errors included: Deprecation (the form "true":
// v1 is deprecated now) and Sunset (RFC 8594: the HTTP-date when v1 goes away).
func (h *Handler) deprecateV1(next echo.HandlerFunc) echo.HandlerFunc {
	sunset := h.cfg.V1Sunset.UTC().Format(http.TimeFormat)
	return func(c echo.Context) error {
		if strings.HasPrefix(c.Request().URL.Path, "/v1/") {
			hd := c.Response().Header()
			hd.Set("Deprecation", "true")
			hd.Set("Sunset", sunset)
		}
		return next(c)
	}
}

// v1SuccessorLink adds Link rel="successor-version" (RFC 5829) to the answers of a v1
// route that has a v2 twin. The twins are looked up among e's routes at the first
// request, once every route is registered.
func v1SuccessorLink(e *echo.Echo) echo.MiddlewareFunc {
	v2Routes := sync.OnceValue(func() map[string]bool {
		m := map[string]bool{}
		for _, r := range e.Routes() {
			if strings.HasPrefix(r.Path, "/v2/") {
				m[r.Method+" "+r.Path] = true
			}
		}
		return m
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			route, path := c.Path(), c.Request().URL.EscapedPath()
			if strings.HasPrefix(route, "/v1/") && strings.HasPrefix(path, "/v1/") &&
				v2Routes()[c.Request().Method+" /v2/"+route[len("/v1/"):]] {
				c.Response().Header().Set("Link", "</v2/"+path[len("/v1/"):]+`>; rel="successor-version"`)
			}
			return next(c)
		}
	}
}
