package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/browser"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

func (h *Handler) home(c echo.Context) error {
	if _, ok := signedIn(c); ok {
		return done(c, "/ui/account")
	}
	return done(c, "/ui/login")
}

// loginData is the sign-in page's: the social providers.
type loginData struct {
	Providers []Provider
	Link      bool // sign-in by an emailed link or code is on
}

func (h *Handler) loginPage(c echo.Context) error {
	p := h.newPage(c, "Sign in")
	if _, ok := signedIn(c); ok && p.ReturnTo != "" {
		return c.Redirect(http.StatusSeeOther, p.ReturnTo)
	}
	p.Notice = notices[c.QueryParam("notice")]
	if e := c.QueryParam("error"); e != "" {
		p.FormError = oauthErrorMessage(e)
	}
	return h.renderLogin(c, http.StatusOK, p)
}

func (h *Handler) renderLogin(c echo.Context, status int, p *page) error {
	p.Data = loginData{Providers: h.cfg.OAuth.Providers(c.Request().Context(), h.cfg.Browser.PublicURL, p.ReturnTo),
		Link: h.otpOn(c) == nil}
	return h.render(c, status, "login", p)
}

func (h *Handler) otpOn(c echo.Context) error {
	if h.cfg.Flags == nil {
		return nil
	}
	return h.cfg.Flags.Check(c.Request().Context(), flags.OTPLogin)
}

func (h *Handler) linkPage(c echo.Context) error {
	p := h.newPage(c, "Sign in with an email")
	if err := h.otpOn(c); err != nil {
		return h.render(c, formError(c, p, err, nil), "login-link", p)
	}
	return h.render(c, http.StatusOK, "login-link", p)
}

// sendLink asks for an emailed sign-in link and code: the same answer whether or not the
// address has an account (the use case does the same work either way).
func (h *Handler) sendLink(c echo.Context) error {
	p := h.newPage(c, "Sign in with an email")
	p.Values["email"] = c.FormValue("email")
	if err := h.otpOn(c); err != nil {
		return h.render(c, formError(c, p, err, nil), "login-link", p)
	}
	if err := h.svc.RequestOTP(c.Request().Context(), c.FormValue("email"), "", client(c)); err != nil {
		return h.render(c, formError(c, p, err, map[string]string{"invalid_email": "email"}), "login-link", p)
	}
	p.Title = "Check your email"
	p.Notice = "If the address has an account, we sent it a sign-in link and code."
	p.Values["sent"] = "yes"
	return h.render(c, http.StatusAccepted, "login-link", p)
}

func (h *Handler) codeLogin(c echo.Context) error {
	p := h.newPage(c, "Check your email")
	p.Values["email"], p.Values["sent"] = c.FormValue("email"), "yes"
	if err := h.otpOn(c); err != nil {
		return h.render(c, formError(c, p, err, nil), "login-link", p)
	}
	pair, err := h.svc.VerifyOTP(c.Request().Context(), account.OTPAttempt{Email: c.FormValue("email"),
		Code: strings.TrimSpace(c.FormValue("code"))}, client(c))
	if err != nil {
		status := formError(c, p, err, map[string]string{"invalid_code": "code"})
		if errors.Is(err, account.ErrInvalidCode) {
			p.Errors["code"] = "That code is not right, or it expired. Try again or ask for a new one."
		}
		return h.render(c, status, "login-link", p)
	}
	return h.signIn(c, pair, p.ReturnTo)
}

func (h *Handler) login(c echo.Context) error {
	p := h.newPage(c, "Sign in")
	email := c.FormValue("email")
	p.Values["email"] = email
	pair, err := h.svc.Login(c.Request().Context(), email, c.FormValue("password"), client(c))
	if err != nil {
		status := formError(c, p, err, map[string]string{"invalid_email": "email"})
		if errors.Is(err, account.ErrEmailNotVerified) {
			p.Values["unverified"] = "yes"
		}
		return h.renderLogin(c, status, p)
	}
	return h.signIn(c, pair, p.ReturnTo)
}

// ceremony is a passkey ceremony's options as the JavaScript takes them.
type ceremony struct {
	FlowID    string          `json:"flow_id"`
	PublicKey json.RawMessage `json:"publicKey"`
}

// jsonError answers the JavaScript with the API's error body.
func jsonError(c echo.Context, err error) error {
	e := apiError(c, err)
	return c.JSON(e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": message(e)}})
}

func (h *Handler) beginPasskeyLogin(c echo.Context) error {
	if !h.passkeysOn(c) {
		return jsonError(c, account.ErrPasskeysOff)
	}
	cer, err := h.svc.BeginPasskeyLogin(c.Request().Context(), client(c))
	if err != nil {
		return jsonError(c, err)
	}
	return c.JSON(http.StatusOK, ceremony{FlowID: cer.FlowID, PublicKey: cer.Options})
}

func (h *Handler) passkeyLogin(c echo.Context) error {
	p := h.newPage(c, "Sign in")
	if !h.passkeysOn(c) {
		formError(c, p, account.ErrPasskeysOff, nil)
		return h.renderLogin(c, http.StatusNotFound, p)
	}
	pair, err := h.svc.FinishPasskeyLogin(c.Request().Context(), c.FormValue("flow_id"), []byte(c.FormValue("credential")), client(c))
	if err != nil {
		return h.renderLogin(c, formError(c, p, err, nil), p)
	}
	return h.signIn(c, pair, p.ReturnTo)
}

// pendingMFA is the second factor's step, from its cookie: the MFA token and the factors
// the account may answer with.
func pendingMFA(c echo.Context) (token string, factors []string) {
	ck, err := c.Request().Cookie(browser.MFACookie)
	if err != nil {
		return "", nil
	}
	token, list, _ := strings.Cut(ck.Value, "|")
	return token, strings.Split(list, ",")
}

type mfaData struct{ Passkey bool }

func (h *Handler) mfaPage(c echo.Context) error {
	p := h.newPage(c, "Two-step verification")
	return h.renderMFA(c, http.StatusOK, p)
}

func (h *Handler) renderMFA(c echo.Context, status int, p *page) error {
	tok, factors := pendingMFA(c)
	if tok == "" {
		p.FormError = "Your sign-in took too long. Sign in again."
		return h.renderLogin(c, http.StatusUnauthorized, p)
	}
	withPasskey := false
	for _, f := range factors {
		withPasskey = withPasskey || f == "webauthn"
	}
	p.Data = mfaData{Passkey: withPasskey && p.Passkeys}
	return h.render(c, status, "mfa", p)
}

func (h *Handler) loginMFA(c echo.Context) error {
	p := h.newPage(c, "Two-step verification")
	tok, _ := pendingMFA(c)
	pair, err := h.svc.LoginMFA(c.Request().Context(), tok, strings.TrimSpace(c.FormValue("code")), client(c))
	if err != nil {
		return h.mfaFailed(c, p, err)
	}
	return h.signIn(c, pair, p.ReturnTo)
}

// mfaFailed shows a refused second factor; once the step itself is over (expired or
// burnt) the browser starts again from the password.
func (h *Handler) mfaFailed(c echo.Context, p *page, err error) error {
	status := formError(c, p, err, map[string]string{"invalid_mfa_code": "code"})
	return h.renderMFA(c, status, p)
}

func (h *Handler) beginPasskeyMFA(c echo.Context) error {
	if !h.passkeysOn(c) {
		return jsonError(c, account.ErrPasskeysOff)
	}
	tok, _ := pendingMFA(c)
	cer, err := h.svc.BeginPasskeyMFA(c.Request().Context(), tok, client(c))
	if err != nil {
		return jsonError(c, err)
	}
	return c.JSON(http.StatusOK, ceremony{FlowID: cer.FlowID, PublicKey: cer.Options})
}

func (h *Handler) passkeyMFA(c echo.Context) error {
	p := h.newPage(c, "Two-step verification")
	if !h.passkeysOn(c) {
		return h.mfaFailed(c, p, account.ErrPasskeysOff)
	}
	tok, _ := pendingMFA(c)
	pair, err := h.svc.LoginMFAPasskey(c.Request().Context(), tok, c.FormValue("flow_id"), []byte(c.FormValue("credential")), client(c))
	if err != nil {
		return h.mfaFailed(c, p, err)
	}
	return h.signIn(c, pair, p.ReturnTo)
}

func (h *Handler) logout(c echo.Context) error {
	if pr, ok := signedIn(c); ok {
		if err := h.svc.Logout(c.Request().Context(), pr, ""); err != nil {
			return h.failErr(c, err)
		}
	}
	h.cfg.Browser.ClearSession(c.Response())
	return done(c, "/ui/login?notice=signed_out")
}

func (h *Handler) registerPage(c echo.Context) error {
	return h.render(c, http.StatusOK, "register", h.newPage(c, "Create account"))
}

func (h *Handler) register(c echo.Context) error {
	p := h.newPage(c, "Create account")
	name, email := c.FormValue("name"), c.FormValue("email")
	p.Values["name"], p.Values["email"] = name, email
	res, err := h.svc.Register(c.Request().Context(), email, c.FormValue("password"), name, client(c))
	if err != nil {
		status := formError(c, p, err, map[string]string{"invalid_email": "email", "email_taken": "email",
			"weak_password": "password", "invalid_name": "name"})
		return h.render(c, status, "register", p)
	}
	if res.Pending {
		return h.checkEmail(c, "We sent a link to confirm your address. Follow it to finish creating your account.")
	}
	return done(c, "/ui/login?notice=created")
}

// checkEmail is the answer of every request that sends an email: the same whether or
// not the address has an account.
func (h *Handler) checkEmail(c echo.Context, msg string) error {
	p := h.newPage(c, "Check your email")
	p.Notice = msg
	return h.render(c, http.StatusAccepted, "check-email", p)
}

// tokenPage is a page for an emailed link: it shows a button rather than acting on the
// GET, so that a mail scanner that follows the link does not spend it.
func (h *Handler) tokenPage(c echo.Context, title, name string) error {
	p := h.newPage(c, title)
	p.Values["token"] = c.QueryParam("token")
	if p.Values["token"] == "" {
		p.FormError = messages["invalid_token"]
		return h.render(c, http.StatusBadRequest, name, p)
	}
	return h.render(c, http.StatusOK, name, p)
}

func (h *Handler) verifyEmailPage(c echo.Context) error {
	return h.tokenPage(c, "Verify your email", "verify-email")
}

func (h *Handler) verifyEmail(c echo.Context) error {
	p := h.newPage(c, "Verify your email")
	p.Values["token"] = c.FormValue("token")
	if _, err := h.svc.VerifyEmail(c.Request().Context(), c.FormValue("token"), client(c)); err != nil {
		return h.render(c, formError(c, p, err, nil), "verify-email", p)
	}
	p = h.newPage(c, "Email verified")
	p.Notice = "Your email address is verified."
	return h.render(c, http.StatusOK, "verified", p)
}

func (h *Handler) resendVerification(c echo.Context) error {
	if err := h.svc.ResendVerification(c.Request().Context(), c.FormValue("email"), client(c)); err != nil {
		p := h.newPage(c, "Sign in")
		p.Values["email"] = c.FormValue("email")
		return h.renderLogin(c, formError(c, p, err, nil), p)
	}
	return h.checkEmail(c, "If the address has an account waiting for verification, we sent it a new link.")
}

func (h *Handler) forgotPage(c echo.Context) error {
	return h.render(c, http.StatusOK, "forgot-password", h.newPage(c, "Reset your password"))
}

func (h *Handler) forgot(c echo.Context) error {
	if err := h.svc.ForgotPassword(c.Request().Context(), c.FormValue("email"), client(c)); err != nil {
		p := h.newPage(c, "Reset your password")
		p.Values["email"] = c.FormValue("email")
		return h.render(c, formError(c, p, err, map[string]string{"invalid_email": "email"}), "forgot-password", p)
	}
	return h.checkEmail(c, "If the address has an account, we sent it a link to choose a new password. The link works for an hour.")
}

func (h *Handler) resetPage(c echo.Context) error {
	return h.tokenPage(c, "Choose a new password", "reset-password")
}

func (h *Handler) reset(c echo.Context) error {
	p := h.newPage(c, "Choose a new password")
	p.Values["token"] = c.FormValue("token")
	if err := h.svc.ResetPassword(c.Request().Context(), c.FormValue("token"), c.FormValue("password")); err != nil {
		return h.render(c, formError(c, p, err, map[string]string{"weak_password": "password"}), "reset-password", p)
	}
	// Every session ended with the reset, this browser's too.
	h.cfg.Browser.ClearSession(c.Response())
	p = h.newPage(c, "Password changed")
	p.SignedIn = false
	p.Notice = "Your password was changed and every session was signed out."
	return h.render(c, http.StatusOK, "password-changed", p)
}

func (h *Handler) magicLinkPage(c echo.Context) error {
	return h.tokenPage(c, "Sign in", "magic-link")
}

func (h *Handler) magicLink(c echo.Context) error {
	p := h.newPage(c, "Sign in")
	p.Values["token"] = c.FormValue("token")
	if err := h.otpOn(c); err != nil {
		return h.render(c, formError(c, p, err, nil), "magic-link", p)
	}
	pair, err := h.svc.VerifyOTP(c.Request().Context(), account.OTPAttempt{Token: c.FormValue("token")}, client(c))
	if err != nil {
		return h.render(c, formError(c, p, err, nil), "magic-link", p)
	}
	return h.signIn(c, pair, p.ReturnTo)
}

// oauthCallback completes a social sign-in: the oauth service sent the browser here with
// a one-time code (or an error), which is exchanged server to server for the session.
func (h *Handler) oauthCallback(c echo.Context) error {
	p := h.newPage(c, "Sign in")
	if e := c.QueryParam("error"); e != "" || h.cfg.OAuth == nil {
		p.FormError = oauthErrorMessage(e)
		return h.renderLogin(c, http.StatusBadRequest, p)
	}
	ans, err := h.cfg.OAuth.Exchange(c.Request().Context(), c.QueryParam("code"))
	if err != nil {
		p.FormError = oauthErrorMessage("exchange_failed")
		return h.renderLogin(c, http.StatusBadRequest, p)
	}
	if ans.MFARequired {
		return h.signIn(c, account.TokenPair{MFARequired: true, MFAToken: ans.MFAToken, MFAFactors: ans.MFAFactors}, p.ReturnTo)
	}
	pr, err := h.svc.Authenticate(c.Request().Context(), ans.AccessToken)
	if err != nil {
		if errors.Is(err, account.ErrUnauthenticated) {
			p.FormError = oauthErrorMessage("exchange_failed")
			return h.renderLogin(c, http.StatusBadRequest, p)
		}
		return h.failErr(c, err)
	}
	return h.signIn(c, account.TokenPair{User: pr.User, SessionID: pr.SessionID}, p.ReturnTo)
}

func oauthErrorMessage(code string) string {
	switch code {
	case "access_denied":
		return "Sign-in with the provider was cancelled."
	case "email_taken", "identity_taken":
		return "An account with this email address exists. Sign in with your password, then link the provider from your account."
	case "email_not_verified":
		return "The provider has not verified your email address."
	}
	return "Sign-in with the provider did not succeed. Try again."
}
