// Package api is the auth service's HTTP surface: thin echo handlers that bind, call one
// use case and render. Routes and codes follow API.md to the letter.
package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
	"github.com/talentforge/auth/services/auth/internal/browser"
	"github.com/talentforge/auth/services/auth/internal/flags"
	"github.com/talentforge/auth/services/auth/internal/webhooks"
)

// Handler serves the v1 routes.
type Handler struct {
	svc     *account.Service
	admin   *admin.Service
	jwks    func() ([]byte, error)
	cfg     Config
	metrics *Metrics
}

// Config is what the handlers need beyond the use cases.
type Config struct {
	Issuer     string // PUBLIC_URL
	JWKSMaxAge time.Duration
	// CORSAllowedOrigins are the browser origins whose Origin header passes the CSRF
	// guard of the v2 cookie routes (CORS_ALLOWED_ORIGINS).
	CORSAllowedOrigins []string
	// RefreshTokenTTL is the Max-Age of the v2 refresh cookie (REFRESH_TOKEN_TTL).
	RefreshTokenTTL time.Duration
	// V1Sunset, when not zero, makes v1 answers carry Deprecation and Sunset (API_V1_SUNSET).
	V1Sunset time.Time
	// ClaimHeaders are the access-token claims ForwardAuth passes on as headers
	// (VERIFY_CLAIM_HEADERS; claimheaders.go).
	ClaimHeaders []config.ClaimHeader
	// Flags are the feature flags: the admin routes switch them, and the routes of a
	// flow that is off answer 404 feature_disabled. Nil: every flow on (the flag routes 503).
	Flags *flags.Flags
	// Webhooks is the admin API's webhook endpoints.
	Webhooks *webhooks.Service
	// Browser is the hosted UI's cookie and return_to policy: ForwardAuth accepts its
	// session cookie and sends browsers without a session to its sign-in page.
	Browser browser.Policy
	// Metrics is where the business metrics (metrics.go) are registered: the service's
	// registry. Nil counts them without exporting them.
	Metrics prometheus.Registerer
}

// New returns the handlers.
func New(svc *account.Service, adm *admin.Service, jwks func() ([]byte, error), cfg Config) *Handler {
	if cfg.JWKSMaxAge == 0 {
		cfg.JWKSMaxAge = 5 * time.Minute
	}
	return &Handler{svc: svc, admin: adm, jwks: jwks, cfg: cfg, metrics: NewMetrics(cfg.Metrics)}
}

// Register adds every route on e.
func (h *Handler) Register(e *echo.Echo) {
	e.GET("/.well-known/jwks.json", h.jwksDoc)
	e.GET("/.well-known/openid-configuration", h.openIDConfiguration)

	// No group middleware: echo would register catch-all routes for a group's
	// middleware, turning 405 answers into 404. The global per-IP budget runs for
	// every route of the API but the probes and ForwardAuth from the server's
	// middleware chain.
	e.Use(h.globalLimit, h.countThrottled)

	// One set of handlers serves both versions; only the routes that carry a refresh
	// token differ (v1: in the body, below; v2: in a cookie, v2.go), and v2's errors are
	// problem+json, rendered by the server for every path under /v2.
	for _, v := range []string{"/v1", "/v2"} {
		h.registerShared(e, v)
	}
	auth := h.authenticate
	e.POST("/v1/auth/login", h.login)
	e.POST("/v1/auth/login/mfa", h.loginMFA)
	e.POST("/v1/auth/refresh", h.refresh)
	e.POST("/v1/auth/logout", h.logout, auth)
	e.POST("/v1/auth/passkey/finish", h.finishPasskeyLogin, h.requireFlag(flags.Passkeys))
	e.POST("/v1/auth/otp/verify", h.verifyOTP, h.requireFlag(flags.OTPLogin))
	h.registerV2(e)
}

// registerShared adds the routes whose handlers are the same in every version.
func (h *Handler) registerShared(e *echo.Echo, v string) {
	auth := h.authenticate
	e.POST(v+"/auth/register", h.register)
	e.POST(v+"/auth/logout-all", h.logoutAll, auth)
	// ForwardAuth: outside the global budget, its invalid answers on their own (verifyLimit).
	// A browser (the hosted UI's session cookie) passes as a bearer token does; one
	// without a session is sent to sign in (browserSignIn).
	e.GET(v+"/auth/verify", h.verify, h.browserSignIn, h.verifyLimit, h.authenticateGateway)
	e.POST(v+"/auth/email/verify", h.verifyEmail)
	e.POST(v+"/auth/email/resend", h.resendVerification)
	e.POST(v+"/auth/password/forgot", h.forgotPassword)
	e.POST(v+"/auth/password/reset", h.resetPassword)

	e.GET(v+"/users/me", h.me, auth)
	e.PATCH(v+"/users/me", h.updateMe, auth)
	e.POST(v+"/users/me/password", h.changePassword, auth)
	e.GET(v+"/users/me/sessions", h.listSessions, auth)
	e.DELETE(v+"/users/me/sessions/:id", h.revokeSession, auth)
	e.POST(v+"/users/me/mfa/totp", h.enrolTOTP, auth)
	e.POST(v+"/users/me/mfa/totp/confirm", h.confirmTOTP, auth)
	e.DELETE(v+"/users/me/mfa/totp", h.disableTOTP, auth)
	h.registerPasskeys(e, v)
	h.registerOTP(e, v)

	// A live session whose live roles hold admin.
	adm := []echo.MiddlewareFunc{auth, requireRole(admin.RoleAdmin)}
	e.GET(v+"/admin/users", h.adminListUsers, adm...)
	e.GET(v+"/admin/users/:id", h.adminGetUser, adm...)
	e.PUT(v+"/admin/users/:id/roles", h.adminSetRoles, adm...)
	e.POST(v+"/admin/users/:id/disable", h.adminDisable, adm...)
	e.POST(v+"/admin/users/:id/enable", h.adminEnable, adm...)
	e.GET(v+"/admin/roles", h.adminListRoles, adm...)
	e.POST(v+"/admin/roles", h.adminCreateRole, adm...)
	e.DELETE(v+"/admin/roles/:name", h.adminDeleteRole, adm...)
	h.registerWebhooks(e, v)
	h.registerFlags(e, v)
}

// globalLimit spends the client's global budget on every API route but the probes
// and ForwardAuth (GET /v1/auth/verify and /v2/auth/verify), which the gateway asks
// for every protected request of every service: one busy client or office NAT must not
// lose the whole platform to a budget meant for the public routes (see verifyLimit).
func (h *Handler) globalLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Path() {
		case "/healthz", "/readyz", "/metrics":
			return next(c)
		case "/v1/auth/verify", "/v2/auth/verify":
			if c.Request().Method == http.MethodGet {
				return next(c)
			}
		}
		if err := h.svc.CheckGlobal(c.Request().Context(), client(c)); err != nil {
			var limited *account.RateLimitedError
			if errors.As(err, &limited) {
				h.metrics.throttled[purposeGlobal].Inc()
			}
			return err
		}
		return next(c)
	}
}

// verifyLimit wraps ForwardAuth's authentication: a valid token with a live session
// spends no budget (its one Redis round trip is the session's), an answer of 401 (no
// token, a bad one, a dead session) spends one event of the client's verify_invalid
// budget, and is 429 once that is spent. A stranger guessing tokens thus drains only
// their own budget, never the global one nor a valid token's. Redis errors fail closed
// (503), as on every limited route.
func (h *Handler) verifyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if !errors.Is(err, account.ErrUnauthenticated) {
			return err
		}
		if lerr := h.svc.CheckVerifyInvalid(c.Request().Context(), client(c)); lerr != nil {
			return lerr
		}
		return err
	}
}

const principalKey = "principal"

// authenticate requires a Bearer access token whose session is live.
func (h *Handler) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, ok := httpx.Bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return account.ErrUnauthenticated
		}
		p, err := h.svc.Authenticate(c.Request().Context(), raw)
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// authenticateGateway is authenticate for ForwardAuth: without an Authorization header,
// the hosted UI's session cookie is checked instead, with the same live checks. Only
// this route reads the cookie: no other route can be driven by a cross-site request.
func (h *Handler) authenticateGateway(next echo.HandlerFunc) echo.HandlerFunc {
	bearer := h.authenticate(next)
	return func(c echo.Context) error {
		req := c.Request()
		if req.Header.Get(echo.HeaderAuthorization) != "" {
			return bearer(c)
		}
		ref := h.cfg.Browser.Session(req)
		if ref == "" {
			return account.ErrUnauthenticated
		}
		p, err := h.svc.AuthenticateBrowser(req.Context(), ref)
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// browserSignIn answers a browser navigation that ForwardAuth could not authenticate
// with 302 to the hosted UI's sign-in page, coming back to the URL it asked for when
// that is a host the session cookie reaches; API clients, and any other URL, get the 401.
func (h *Handler) browserSignIn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		req := c.Request()
		if !errors.Is(err, account.ErrUnauthenticated) || !browser.WantsHTML(req) || req.Header.Get(echo.HeaderAuthorization) != "" {
			return err
		}
		back := browser.Forwarded(req)
		if back == "" || !h.cfg.Browser.Gateway(back) {
			return err
		}
		return c.Redirect(http.StatusFound, h.cfg.Browser.LoginURL(back))
	}
}

func principal(c echo.Context) account.Principal {
	p, _ := c.Get(principalKey).(account.Principal)
	return p
}

func client(c echo.Context) account.Client {
	ua := c.Request().UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	return account.Client{IP: c.RealIP(), UserAgent: ua}
}

func noContent(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
