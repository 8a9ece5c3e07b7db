package ui

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/services/auth/internal/account"
)

// accountData is the account page's.
type accountData struct {
	User     account.User
	Sessions []account.SessionView
	Passkeys []account.Passkey
	// TOTP is an enrolment waiting for its first code; RecoveryCodes are shown once,
	// right after it is confirmed.
	TOTP          *account.TOTPEnrolment
	RecoveryCodes []string
	ReauthMinutes int
	// Reauth: the session signed in longer ago than REAUTH_MAX_AGE, so credential changes
	// ask for the current password.
	Reauth bool
}

func (h *Handler) accountPage(c echo.Context) error {
	p := h.newPage(c, "Your account")
	p.Notice = notices[c.QueryParam("notice")]
	return h.renderAccount(c, http.StatusOK, p, nil)
}

// renderAccount shows the account page; more fills what a post just produced.
func (h *Handler) renderAccount(c echo.Context, status int, p *page, more func(*accountData)) error {
	pr, _ := signedIn(c)
	ctx := c.Request().Context()
	d := accountData{User: pr.User, ReauthMinutes: int(h.cfg.ReauthMaxAge.Minutes()),
		Reauth: time.Since(pr.AuthTime) > h.cfg.ReauthMaxAge-30*time.Second}
	var err error
	if d.Sessions, err = h.svc.ListSessions(ctx, pr); err != nil {
		return h.failErr(c, err)
	}
	if p.Passkeys {
		if d.Passkeys, err = h.svc.ListPasskeys(ctx, pr); err != nil && !errors.Is(err, account.ErrPasskeysOff) {
			return h.failErr(c, err)
		}
	}
	if more != nil {
		more(&d)
	}
	if _, ok := p.Values["name"]; !ok {
		p.Values["name"] = pr.User.Name
	}
	p.Data = d
	return h.render(c, status, "account", p)
}

func (h *Handler) updateProfile(c echo.Context) error {
	pr, _ := signedIn(c)
	if _, err := h.svc.UpdateName(c.Request().Context(), pr, c.FormValue("name")); err != nil {
		p := h.newPage(c, "Your account")
		p.Values["name"] = c.FormValue("name")
		return h.renderAccount(c, formError(c, p, err, map[string]string{"invalid_name": "name"}), p, nil)
	}
	return done(c, "/ui/account?notice=saved")
}

func (h *Handler) revokeSession(c echo.Context) error {
	pr, _ := signedIn(c)
	id := c.Param("id")
	if err := h.svc.RevokeSession(c.Request().Context(), pr, id); err != nil {
		p := h.newPage(c, "Your account")
		return h.renderAccount(c, formError(c, p, err, nil), p, nil)
	}
	if id == pr.SessionID {
		h.cfg.Browser.ClearSession(c.Response())
		return done(c, "/ui/login?notice=signed_out")
	}
	return done(c, "/ui/account?notice=session_ended")
}

func (h *Handler) revokeAll(c echo.Context) error {
	pr, _ := signedIn(c)
	if err := h.svc.LogoutAll(c.Request().Context(), pr); err != nil {
		return h.failErr(c, err)
	}
	h.cfg.Browser.ClearSession(c.Response())
	return done(c, "/ui/login?notice=signed_out")
}

func (h *Handler) beginAddPasskey(c echo.Context) error {
	if !h.passkeysOn(c) {
		return jsonError(c, account.ErrPasskeysOff)
	}
	var in struct {
		CurrentPassword string `json:"current_password"`
	}
	if err := c.Bind(&in); err != nil {
		return jsonError(c, account.ErrInvalidRequest)
	}
	pr, _ := signedIn(c)
	cer, err := h.svc.BeginPasskeyRegistration(c.Request().Context(), pr, in.CurrentPassword)
	if err != nil {
		return jsonError(c, err)
	}
	return c.JSON(http.StatusOK, ceremony{FlowID: cer.FlowID, PublicKey: cer.Options})
}

func (h *Handler) addPasskey(c echo.Context) error {
	pr, _ := signedIn(c)
	p := h.newPage(c, "Your account")
	if !h.passkeysOn(c) {
		return h.renderAccount(c, formError(c, p, account.ErrPasskeysOff, nil), p, nil)
	}
	_, err := h.svc.FinishPasskeyRegistration(c.Request().Context(), pr, c.FormValue("flow_id"),
		strings.TrimSpace(c.FormValue("name")), []byte(c.FormValue("credential")))
	if err != nil {
		p.Values["passkey_name"] = c.FormValue("name")
		return h.renderAccount(c, formError(c, p, err, map[string]string{"invalid_name": "passkey_name",
			"invalid_passkey": "passkey", "invalid_flow": "passkey"}), p, nil)
	}
	return done(c, "/ui/account?notice=passkey_added")
}

func (h *Handler) deletePasskey(c echo.Context) error {
	pr, _ := signedIn(c)
	if err := h.svc.DeletePasskey(c.Request().Context(), pr, c.Param("id"), c.FormValue("current_password")); err != nil {
		p := h.newPage(c, "Your account")
		return h.renderAccount(c, formError(c, p, err, map[string]string{"reauth_required": "passkey_remove",
			"invalid_credentials": "passkey_remove"}), p, nil)
	}
	return done(c, "/ui/account?notice=passkey_removed")
}

func (h *Handler) enrolTOTP(c echo.Context) error {
	pr, _ := signedIn(c)
	p := h.newPage(c, "Your account")
	en, err := h.svc.EnrolTOTP(c.Request().Context(), pr, c.FormValue("current_password"))
	if err != nil {
		return h.renderAccount(c, formError(c, p, err, map[string]string{"reauth_required": "totp_current_password",
			"invalid_credentials": "totp_current_password"}), p, nil)
	}
	// The enrolment is pending until its first code: shown on this answer only.
	return h.renderAccount(c, http.StatusOK, p, func(d *accountData) { d.TOTP = &en })
}

func (h *Handler) confirmTOTP(c echo.Context) error {
	pr, _ := signedIn(c)
	p := h.newPage(c, "Your account")
	codes, err := h.svc.ConfirmTOTP(c.Request().Context(), pr, strings.TrimSpace(c.FormValue("code")), c.FormValue("current_password"))
	if err != nil {
		status := formError(c, p, err, map[string]string{"invalid_mfa_code": "totp_code", "reauth_required": "totp_code"})
		// The pending secret is sealed server side and never shown twice: a wrong first
		// code gets a new enrolment to scan.
		return h.renderAccount(c, status, p, func(d *accountData) {
			if errors.Is(err, account.ErrWrongMFACode) {
				if en, rerr := h.svc.EnrolTOTP(c.Request().Context(), pr, c.FormValue("current_password")); rerr == nil {
					d.TOTP = &en
					p.Errors["totp_code"] = "That code is not right. Scan the new QR code and try again."
				}
			}
		})
	}
	p.Notice = "Two-step verification is on. Save these recovery codes now. They are shown only once."
	pr.User.MFAEnabled = true
	c.Set(userKey, pr)
	return h.renderAccount(c, http.StatusOK, p, func(d *accountData) { d.RecoveryCodes = codes; d.User.MFAEnabled = true })
}

func (h *Handler) disableTOTP(c echo.Context) error {
	pr, _ := signedIn(c)
	if err := h.svc.DisableTOTP(c.Request().Context(), pr, strings.TrimSpace(c.FormValue("code")), c.FormValue("current_password")); err != nil {
		p := h.newPage(c, "Your account")
		return h.renderAccount(c, formError(c, p, err, map[string]string{"invalid_mfa_code": "totp_off_code",
			"reauth_required": "totp_off_password", "invalid_credentials": "totp_off_password"}), p, nil)
	}
	return done(c, "/ui/account?notice=totp_off")
}
