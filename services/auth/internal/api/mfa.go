package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

// loginMFARequest answers a pending login with a code, or with a passkey: the flow of
// /auth/login/mfa/passkey/begin and the browser's credential.
type loginMFARequest struct {
	MFAToken   string          `json:"mfa_token"`
	Code       string          `json:"code"`
	FlowID     string          `json:"flow_id"`
	Credential json.RawMessage `json:"credential"`
}

func (h *Handler) loginMFA(c echo.Context) error {
	pair, err := h.loginMFAPair(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewPair(pair))
}

// loginMFAPair is the second login step of both versions; they differ only in how they
// render the pair.
func (h *Handler) loginMFAPair(c echo.Context) (account.TokenPair, error) {
	var req loginMFARequest
	if err := httpx.BindJSON(c, &req); err != nil {
		h.metrics.login(err, false)
		return account.TokenPair{}, err
	}
	// Exactly one second factor: a code, or a whole passkey answer.
	byPasskey := finishRequest{FlowID: req.FlowID, Credential: req.Credential}.valid()
	if req.MFAToken == "" || (req.Code != "") == byPasskey {
		h.metrics.login(account.ErrInvalidRequest, false)
		return account.TokenPair{}, account.ErrInvalidRequest
	}
	if byPasskey {
		if err := h.flagOn(c, flags.Passkeys); err != nil {
			h.metrics.login(err, false)
			return account.TokenPair{}, err
		}
	}
	var pair account.TokenPair
	var err error
	if !byPasskey {
		pair, err = h.svc.LoginMFA(c.Request().Context(), req.MFAToken, req.Code, client(c))
	} else {
		pair, err = h.svc.LoginMFAPasskey(c.Request().Context(), req.MFAToken, req.FlowID, req.Credential, client(c))
	}
	h.metrics.login(err, false)
	return pair, err
}

type totpEnrolmentView struct {
	Secret      string `json:"secret"`
	OTPAuthURL  string `json:"otpauth_url"`
	QRPNGBase64 string `json:"qr_png_base64,omitempty"`
}

// reauthRequest is the optional re-authentication of a credential change: without
// it the session must have signed in within REAUTH_MAX_AGE.
type reauthRequest struct {
	CurrentPassword string `json:"current_password"`
}

func (h *Handler) enrolTOTP(c echo.Context) error {
	var req reauthRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	en, err := h.svc.EnrolTOTP(c.Request().Context(), principal(c), req.CurrentPassword)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, totpEnrolmentView{Secret: en.Secret, OTPAuthURL: en.URL, QRPNGBase64: en.QRPNGBase64})
}

type codeRequest struct {
	Code string `json:"code"`
	reauthRequest
}

func (h *Handler) confirmTOTP(c echo.Context) error {
	var req codeRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return account.ErrInvalidRequest
	}
	codes, err := h.svc.ConfirmTOTP(c.Request().Context(), principal(c), req.Code, req.CurrentPassword)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string][]string{"recovery_codes": codes})
}

func (h *Handler) disableTOTP(c echo.Context) error {
	var req codeRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return account.ErrInvalidRequest
	}
	if err := h.svc.DisableTOTP(c.Request().Context(), principal(c), req.Code, req.CurrentPassword); err != nil {
		return err
	}
	return noContent(c)
}
