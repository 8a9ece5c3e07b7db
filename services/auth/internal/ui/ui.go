// Package ui is the hosted UI: server-rendered pages under /ui/ for signing in, signing
// up, the email links and the account. Every page calls the same use cases as the API
// (account.Service), so the API's rules (enumeration, throttles, re-authentication) hold
// here too; errors are the API's (api.MapError), shown next to their field.
//
// A signed-in browser holds only an opaque session reference in its cookie
// (browser.Policy); the tokens of the session the UI opens are dropped. Forms carry a
// CSRF token matched against a __Host- cookie, and posts must come from our own origin.
// JavaScript is one file, for WebAuthn; the CSP allows nothing inline.
package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/api"
	"github.com/talentforge/auth/services/auth/internal/browser"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the pages need beyond the use cases.
type Config struct {
	Browser browser.Policy
	// ProductName heads every page (WEBAUTHN_RP_NAME).
	ProductName string
	// Flags hide the passkey buttons while passkeys are off; nil: every flow on.
	Flags *flags.Flags
	// OAuth lists and completes the oauth service's providers; nil: none offered.
	OAuth *OAuth
	// ReauthMaxAge is REAUTH_MAX_AGE, named on the account page.
	ReauthMaxAge time.Duration
	Logger       *zap.Logger
}

// Handler serves the pages.
type Handler struct {
	svc   *account.Service
	cfg   Config
	pages map[string]*template.Template
}

// New parses the templates; a broken template fails here, at start.
func New(svc *account.Service, cfg Config) (*Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ProductName == "" {
		cfg.ProductName = "TalentForge"
	}
	h := &Handler{svc: svc, cfg: cfg, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		h.pages[name] = t
	}
	return h, nil
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2 Jan 2006, 15:04 UTC")
	},
	// field is one labelled input of a form (the "field" template).
	"field": func(id, name, typ, label, value, err, hint, autocomplete string) fieldData {
		f := fieldData{ID: id, Name: name, Type: typ, Label: label, Value: value, Error: err, Hint: hint, Autocomplete: autocomplete}
		if autocomplete == "one-time-code" {
			f.Inputmode = "numeric"
		}
		return f
	},
	"device": device,
	// dataURI is a PNG we rendered ourselves (the TOTP QR code), shown under img-src data:.
	"dataURI": func(b64 string) template.URL { return template.URL("data:image/png;base64," + b64) },
}

type fieldData struct {
	ID, Name, Type, Label, Value, Error, Hint, Autocomplete, Inputmode string
}

// Register adds the routes on e.
func (h *Handler) Register(e *echo.Echo) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))
	e.GET("/ui/static/*", func(c echo.Context) error {
		// The URLs carry no version: an hour's cache, so a release's files reach every
		// browser within the hour (they change only with a release).
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(c.Response(), c.Request())
		return nil
	})
	g := []echo.MiddlewareFunc{h.pageHeaders, h.csrf, h.loadSession}
	e.GET("/ui", h.home, g...)
	e.GET("/ui/", h.home, g...)
	e.GET("/ui/login", h.loginPage, g...)
	e.POST("/ui/login", h.login, g...)
	e.POST("/ui/login/passkey/begin", h.beginPasskeyLogin, g...)
	e.POST("/ui/login/passkey", h.passkeyLogin, g...)
	e.GET("/ui/login/mfa", h.mfaPage, g...)
	e.POST("/ui/login/mfa", h.loginMFA, g...)
	e.POST("/ui/login/mfa/passkey/begin", h.beginPasskeyMFA, g...)
	e.POST("/ui/login/mfa/passkey", h.passkeyMFA, g...)
	e.GET("/ui/login/link", h.linkPage, g...)
	e.POST("/ui/login/link", h.sendLink, g...)
	e.POST("/ui/login/code", h.codeLogin, g...)
	e.GET("/ui/oauth/callback", h.oauthCallback, g...)
	e.POST("/ui/logout", h.logout, g...)
	e.GET("/ui/register", h.registerPage, g...)
	e.POST("/ui/register", h.register, g...)
	e.GET("/ui/verify-email", h.verifyEmailPage, g...)
	e.POST("/ui/verify-email", h.verifyEmail, g...)
	e.POST("/ui/verify-email/resend", h.resendVerification, g...)
	e.GET("/ui/forgot-password", h.forgotPage, g...)
	e.POST("/ui/forgot-password", h.forgot, g...)
	e.GET("/ui/reset-password", h.resetPage, g...)
	e.POST("/ui/reset-password", h.reset, g...)
	e.GET("/ui/magic-link", h.magicLinkPage, g...)
	e.POST("/ui/magic-link", h.magicLink, g...)

	a := append(g, h.requireSession)
	e.GET("/ui/account", h.accountPage, a...)
	e.POST("/ui/account/profile", h.updateProfile, a...)
	e.POST("/ui/account/sessions/:id/revoke", h.revokeSession, a...)
	e.POST("/ui/account/sessions/revoke-all", h.revokeAll, a...)
	e.POST("/ui/account/passkeys/begin", h.beginAddPasskey, a...)
	e.POST("/ui/account/passkeys", h.addPasskey, a...)
	e.POST("/ui/account/passkeys/:id/delete", h.deletePasskey, a...)
	e.POST("/ui/account/totp", h.enrolTOTP, a...)
	e.POST("/ui/account/totp/confirm", h.confirmTOTP, a...)
	e.POST("/ui/account/totp/disable", h.disableTOTP, a...)
}

// pageHeaders sets the pages' CSP (the API's default-src 'none' would block the
// stylesheet); form-action also names the return_to's origin, as Chromium applies it to
// the redirect after a post.
func (h *Handler) pageHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		formAction := "'self'"
		if rt := h.cfg.Browser.ReturnTo(c.FormValue("return_to")); rt != "" {
			if o := browser.OriginOf(rt); o != "" && o != h.cfg.Browser.Origin() {
				formAction += " " + o
			}
		}
		if h.cfg.OAuth != nil {
			if o := browser.OriginOf(h.cfg.OAuth.base); o != "" && o != h.cfg.Browser.Origin() {
				formAction += " " + o
			}
		}
		hd := c.Response().Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action "+formAction+"; base-uri 'none'; frame-ancestors 'none'")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		// Not the API's no-referrer: under it Chromium posts forms with "Origin: null",
		// which the CSRF check must refuse. same-origin still sends nothing elsewhere.
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Vary", "Cookie")
		return next(c)
	}
}

const (
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	csrfKey    = "ui.csrf"
	userKey    = "ui.principal"
)

// csrf gives every browser a random token in a __Host- cookie, rendered into each form,
// and refuses a post whose token does not match it or that comes from another origin.
// The cookie cannot be set by a sibling host (__Host-), and a cross-site page can
// neither read it nor the token in our pages.
func (h *Handler) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		tok := ""
		if ck, err := req.Cookie(browser.CSRFCookie); err == nil && len(ck.Value) == 43 {
			tok = ck.Value
		}
		if req.Method == http.MethodPost {
			sent := req.Header.Get(csrfHeader)
			if sent == "" {
				sent = c.FormValue(csrfField)
			}
			if tok == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(tok)) != 1 || !h.sameOrigin(req) {
				return h.fail(c, http.StatusForbidden, "csrf_failed",
					"This form has expired or did not come from this site. Reload the page and try again.")
			}
		}
		if tok == "" {
			tok = randomToken()
			browser.SetHostCookie(c.Response(), browser.CSRFCookie, tok, 0)
		}
		c.Set(csrfKey, tok)
		return next(c)
	}
}

// sameOrigin checks the browser's own account of where a post comes from, when it gives
// one: Origin must be PUBLIC_URL's, and Sec-Fetch-Site same-origin.
func (h *Handler) sameOrigin(req *http.Request) bool {
	if o := req.Header.Get("Origin"); o != "" && !strings.EqualFold(o, h.cfg.Browser.Origin()) {
		return false
	}
	site := req.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin"
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loadSession reads the session cookie; a cookie that no longer names a live session is
// removed. A store error is not a sign-out: the page answers 503.
func (h *Handler) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ref := h.cfg.Browser.Session(c.Request())
		if ref != "" {
			p, err := h.svc.AuthenticateBrowser(c.Request().Context(), ref)
			switch {
			case err == nil:
				c.Set(userKey, p)
			case errors.Is(err, account.ErrUnauthenticated):
				h.cfg.Browser.ClearSession(c.Response())
			default:
				return h.failErr(c, err)
			}
		}
		return next(c)
	}
}

func (h *Handler) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := signedIn(c); !ok {
			return c.Redirect(http.StatusSeeOther, h.cfg.Browser.LoginURL(c.Request().URL.RequestURI()))
		}
		return next(c)
	}
}

func signedIn(c echo.Context) (account.Principal, bool) {
	p, ok := c.Get(userKey).(account.Principal)
	return p, ok
}

func client(c echo.Context) account.Client {
	ua := c.Request().UserAgent()
	if len(ua) > 512 {
		ua = ua[:512]
	}
	return account.Client{IP: c.RealIP(), UserAgent: ua}
}

// page is what every template sees.
type page struct {
	Title, Product, CSRF string
	SignedIn             bool
	Email                string
	// FormError and Notice are the banners; Errors the messages per field name.
	FormError, Notice string
	Errors            map[string]string
	// Values are the fields as the user typed them (never a password).
	Values   map[string]string
	ReturnTo string
	Passkeys bool // the passkeys flow is on
	Data     any
}

func (h *Handler) newPage(c echo.Context, title string) *page {
	p := &page{Title: title, Product: h.cfg.ProductName, Errors: map[string]string{}, Values: map[string]string{}}
	p.CSRF, _ = c.Get(csrfKey).(string)
	if pr, ok := signedIn(c); ok {
		p.SignedIn, p.Email = true, pr.User.Email
	}
	p.ReturnTo = h.cfg.Browser.ReturnTo(c.QueryParam("return_to"))
	if c.Request().Method == http.MethodPost {
		p.ReturnTo = h.cfg.Browser.ReturnTo(c.FormValue("return_to"))
	}
	p.Passkeys = h.passkeysOn(c)
	return p
}

func (h *Handler) passkeysOn(c echo.Context) bool {
	return h.cfg.Flags == nil || h.cfg.Flags.Check(c.Request().Context(), flags.Passkeys) == nil
}

func (h *Handler) render(c echo.Context, status int, name string, p *page) error {
	t, ok := h.pages[name]
	if !ok {
		return errors.New("ui: no template " + name)
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		return err
	}
	return c.HTML(status, b.String())
}

// fail renders a page that only says what went wrong.
func (h *Handler) fail(c echo.Context, status int, code, msg string) error {
	p := h.newPage(c, "Something went wrong")
	p.FormError = msg
	p.Data = code
	return h.render(c, status, "error", p)
}

// failErr renders err as the API would answer it: its status, its code, a message for
// people. Server faults keep their detail in the log.
func (h *Handler) failErr(c echo.Context, err error) error {
	e := apiError(c, err)
	if e.Status >= 500 {
		logging.From(c.Request().Context(), h.cfg.Logger).Error("ui: request failed", zap.Error(err))
	}
	return h.fail(c, e.Status, e.Code, message(e))
}

// apiError is the API's answer to err, with its headers (Retry-After) applied.
func apiError(c echo.Context, err error) *httpx.Error {
	var e *httpx.Error
	if !errors.As(api.MapError(err), &e) {
		e = httpx.ErrInternal
	}
	for k, v := range e.Header {
		if k != "Www-Authenticate" {
			c.Response().Header()[k] = v
		}
	}
	if e.Status >= 500 && e.Code != "overloaded" && e.Code != "unavailable" {
		return &httpx.Error{Status: e.Status, Code: e.Code, Message: "Something went wrong on our side. Try again in a moment."}
	}
	return e
}

// messages are the pages' wording for the API's codes where its own is written for
// developers; every other code shows the API's message.
var messages = map[string]string{
	"invalid_credentials": "The email or password is incorrect.",
	"invalid_mfa_code":    "That code is not right. Try again.",
	"reauth_required":     "Enter your current password to make this change.",
	"invalid_token":       "This link is invalid, already used or expired. Ask for a new one.",
	"invalid_code":        "This link is invalid, already used or expired. Ask for a new one.",
	"email_not_verified":  "Verify your email address first: follow the link we sent you.",
	"account_disabled":    "This account is disabled.",
	"invalid_passkey":     "The passkey could not be verified. Try again or use your password.",
	"invalid_flow":        "The passkey request expired. Try again.",
	"feature_disabled":    "This option is turned off.",
	"mfa_already_enabled": "Two-step verification is already on.",
}

// notices are the banners a redirect after a post names (?notice=): fixed sentences, so
// a link cannot put words of its own on our pages.
var notices = map[string]string{
	"signed_out":       "You are signed out.",
	"password_changed": "Your password was changed. Sign in with the new one.",
	"verified":         "Your email address is verified. You can sign in.",
	"created":          "Your account is ready. You can sign in.",
	"saved":            "Saved.",
	"passkey_added":    "Passkey added.",
	"passkey_removed":  "Passkey removed.",
	"session_ended":    "That session is signed out.",
	"totp_off":         "Two-step verification is off.",
}

func message(e *httpx.Error) string {
	if m, ok := messages[e.Code]; ok {
		return m
	}
	return e.Message
}

// formError puts err on the page: next to field when given and err is about it, else as
// the banner. It returns the status to answer.
func formError(c echo.Context, p *page, err error, fields map[string]string) int {
	e := apiError(c, err)
	if f, ok := fields[e.Code]; ok {
		p.Errors[f] = message(e)
	} else {
		p.FormError = message(e)
	}
	return e.Status
}

// done redirects after a successful post (303: the browser GETs the next page).
func done(c echo.Context, to string) error { return c.Redirect(http.StatusSeeOther, to) }

// signIn gives the browser the session pair opened, drops the pair's tokens, and sends it
// on: to the second factor's page when one is due.
func (h *Handler) signIn(c echo.Context, pair account.TokenPair, returnTo string) error {
	if pair.MFARequired {
		v := pair.MFAToken + "|" + strings.Join(pair.MFAFactors, ",")
		browser.SetHostCookie(c.Response(), browser.MFACookie, v, 5*time.Minute)
		to := "/ui/login/mfa"
		if returnTo != "" {
			to += "?return_to=" + url.QueryEscape(returnTo)
		}
		return done(c, to)
	}
	ref, err := h.svc.BindBrowser(c.Request().Context(), pair)
	if err != nil {
		return h.failErr(c, err)
	}
	h.cfg.Browser.SetSession(c.Response(), ref)
	browser.SetHostCookie(c.Response(), browser.MFACookie, "", -1)
	if returnTo == "" {
		returnTo = "/ui/account"
	}
	return done(c, returnTo)
}
