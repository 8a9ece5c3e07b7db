// Package api is the oauth service's HTTP surface (API.md, "oauth service"): thin
// handlers over the signin use cases.
package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/services/oauth/internal/flow"
	"github.com/talentforge/auth/services/oauth/internal/providers"
	"github.com/talentforge/auth/services/oauth/internal/signin"
)

// BindingCookie binds a flow to the browser that started it (login CSRF): the callback
// is refused without it. SameSite=Lax so it rides the provider's top-level redirect back.
//
// The __Host- prefix makes browsers accept it only with Secure, Path=/ and no Domain,
// from the host itself: a sibling subdomain cannot toss in a binding of its own (nor
// one scoped to a longer path that would be sent first). Only this exact name is read;
// a cookie under any other name (the old tf_oauth_binding included) is no binding.
// Secure is always set: browsers keep Secure cookies from http://localhost (a secure
// context), and app.New refuses a plain-http callback base on any other host.
const BindingCookie = "__Host-tf_oauth_binding"

// The one table from use-case errors to answers, ending with the account core's
// (unauthorized, account_disabled, not_found, unavailable).
var errorTable = append(httpx.ErrorTable{
	{Err: signin.ErrUnknownProvider, Resp: httpx.NewError(http.StatusNotFound, "unknown_provider", "No such provider is configured.")},
	{Err: signin.ErrInvalidRedirect, Resp: httpx.NewError(http.StatusBadRequest, "invalid_redirect", "redirect_to is not in the allowlist.")},
	{Err: signin.ErrInvalidState, Resp: httpx.NewError(http.StatusBadRequest, "invalid_state", "The sign-in state is unknown, used or expired.")},
	{Err: signin.ErrInvalidCode, Resp: httpx.NewError(http.StatusBadRequest, "invalid_code", "The code is invalid, used or expired.")},
	{Err: signin.ErrIdentityTaken, Resp: httpx.NewError(http.StatusConflict, "identity_taken", "This provider is already linked to an account.")},
	{Err: signin.ErrLastLoginMethod, Resp: httpx.NewError(http.StatusConflict, "last_login_method", "This is the account's last way to sign in.")},
	{Err: providers.ErrUnavailable, Resp: httpx.NewError(http.StatusServiceUnavailable, "provider_unavailable", "The provider cannot be reached; try again later.")},
}, accounts.Errors...)

// MapError turns a use-case error into an answer; the server calls it for every route.
func MapError(err error) error { return errorTable.Map(err) }

// Handler serves the routes.
type Handler struct {
	svc *signin.Service
	// limiter and budget cap each client IP's calls (RATE_LIMIT_GLOBAL): every
	// authorize writes a state to Redis, so an unbounded caller could fill it.
	limiter    *ratelimit.Limiter
	budget     ratelimit.Limit
	ipv6Prefix int
}

// Config is what the handler needs besides the use cases.
type Config struct {
	// Limiter nil turns the per-IP budget off (RATE_LIMIT_ENABLED=false).
	Limiter *ratelimit.Limiter
	Budget  ratelimit.Limit
	// IPv6Prefix keys IPv6 clients by this prefix (RATE_LIMIT_IPV6_PREFIX), as auth does.
	IPv6Prefix int
}

// New returns the handler.
func New(svc *signin.Service, cfg Config) *Handler {
	return &Handler{svc: svc, limiter: cfg.Limiter, budget: cfg.Budget, ipv6Prefix: cfg.IPv6Prefix}
}

// Register adds the routes to e.
func (h *Handler) Register(e *echo.Echo) {
	g := e.Group("/v1/oauth", h.limit)
	g.GET("/providers", h.providers)
	g.POST("/token", h.token)
	g.GET("/identities", h.identities, h.authenticate)
	g.DELETE("/identities/:provider", h.unlink, h.authenticate)
	g.GET("/:provider/authorize", h.authorize)
	g.GET("/:provider/callback", h.callback)
	g.POST("/:provider/link", h.link, h.authenticate)
}

const principalKey = "principal"

// limit spends one event of the client IP's budget; Redis down fails closed (503).
func (h *Handler) limit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if h.limiter == nil {
			return next(c)
		}
		d, err := h.limiter.Allow(c.Request().Context(), "oauth:ip:"+ratelimit.ClientKey(c.RealIP(), h.ipv6Prefix), h.budget)
		if err != nil {
			return err
		}
		if !d.Allowed {
			return &httpx.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
				Message: "Too many requests. Try again later.", Header: d.Headers()}
		}
		return next(c)
	}
}

func (h *Handler) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, ok := httpx.Bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return MapError(signin.ErrUnauthorized)
		}
		p, err := h.svc.Authenticate(c.Request().Context(), raw)
		if err != nil {
			return err
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func principal(c echo.Context) signin.Principal {
	p, _ := c.Get(principalKey).(signin.Principal)
	return p
}

func client(c echo.Context) signin.Client {
	ua := c.Request().UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	return signin.Client{IP: c.RealIP(), UserAgent: ua}
}

type providerView struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
}

func (h *Handler) providers(c echo.Context) error {
	out := []providerView{}
	for _, p := range h.svc.Providers() {
		out = append(out, providerView{Name: p.Name, DisplayName: p.DisplayName})
	}
	return c.JSON(http.StatusOK, map[string]any{"providers": out})
}

// bindingCookie is the binding cookie holding value for maxAge seconds (-1 expires it):
// the attributes a __Host- cookie needs, on setting and on clearing alike.
func bindingCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: BindingCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
}

func (h *Handler) setBinding(c echo.Context, value string) {
	c.SetCookie(bindingCookie(value, int(flow.StateTTL/time.Second)))
}

func (h *Handler) authorize(c echo.Context) error {
	st, err := h.svc.Authorize(c.Request().Context(), c.Param("provider"), c.QueryParam("redirect_to"), nil)
	if err != nil {
		return err
	}
	if !st.Failed {
		h.setBinding(c, st.Binding)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.Redirect(http.StatusFound, st.URL)
}

func (h *Handler) callback(c echo.Context) error {
	var binding string
	if ck, err := c.Cookie(BindingCookie); err == nil {
		binding = ck.Value
	}
	to, err := h.svc.Callback(c.Request().Context(), c.Param("provider"), c.QueryParams(), binding, client(c))
	// The binding is spent either way.
	c.SetCookie(bindingCookie("", -1))
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	// The one-time code must not leak to the app's third parties through Referer.
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return c.Redirect(http.StatusFound, to)
}

func (h *Handler) token(c echo.Context) error {
	var req struct {
		Code string `json:"code"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	p, err := h.svc.Token(c.Request().Context(), req.Code)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	if p.MFARequired {
		// As auth's login answers it: finish at POST /v1/auth/login/mfa.
		return c.JSON(http.StatusOK, accounts.ViewMFARequired(p))
	}
	return c.JSON(http.StatusOK, accounts.ViewPair(p))
}

func (h *Handler) link(c echo.Context) error {
	var req struct {
		RedirectTo string `json:"redirect_to"`
	}
	if c.Request().ContentLength != 0 {
		if err := httpx.BindJSON(c, &req); err != nil {
			return err
		}
	}
	if q := c.QueryParam("redirect_to"); q != "" {
		req.RedirectTo = q
	}
	st, err := h.svc.StartLink(c.Request().Context(), principal(c), c.Param("provider"), req.RedirectTo)
	if err != nil {
		return err
	}
	h.setBinding(c, st.Binding)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, map[string]string{"authorize_url": st.URL})
}

type identityView struct {
	Provider string    `json:"provider"`
	Subject  string    `json:"subject"`
	Email    string    `json:"email"`
	LinkedAt time.Time `json:"linked_at"`
}

func (h *Handler) identities(c echo.Context) error {
	ids, err := h.svc.Identities(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	out := make([]identityView, len(ids))
	for i, id := range ids {
		out[i] = identityView{Provider: id.Provider, Subject: id.Subject, Email: id.Email, LinkedAt: id.LinkedAt.UTC()}
	}
	return c.JSON(http.StatusOK, map[string]any{"identities": out})
}

func (h *Handler) unlink(c echo.Context) error {
	if err := h.svc.Unlink(c.Request().Context(), principal(c), c.Param("provider"), client(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
