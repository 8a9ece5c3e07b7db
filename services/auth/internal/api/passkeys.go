package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

// Passkeys: registration and management under /users/me/passkeys (Bearer), sign-in
// under /auth/passkey, and the second factor (/auth/login/mfa/passkey/begin, finished at
// /auth/login/mfa). Only the sign-in's finish differs between versions (v2: the refresh
// token in the cookie).

// registerPasskeys adds the passkey routes of version v shared by both versions; each
// answers 404 feature_disabled while the passkeys flag is off.
func (h *Handler) registerPasskeys(e *echo.Echo, v string) {
	auth, on := h.authenticate, h.requireFlag(flags.Passkeys)
	e.POST(v+"/users/me/passkeys/begin", h.beginPasskeyRegistration, on, auth)
	e.POST(v+"/users/me/passkeys/finish", h.finishPasskeyRegistration, on, auth)
	e.GET(v+"/users/me/passkeys", h.listPasskeys, on, auth)
	e.PATCH(v+"/users/me/passkeys/:id", h.renamePasskey, on, auth)
	e.DELETE(v+"/users/me/passkeys/:id", h.deletePasskey, on, auth)
	e.POST(v+"/auth/passkey/begin", h.beginPasskeyLogin, on)
	e.POST(v+"/auth/login/mfa/passkey/begin", h.beginPasskeyMFA, on)
}

// ceremonyView is a begin's answer: options for navigator.credentials.create or .get.
type ceremonyView struct {
	FlowID    string          `json:"flow_id"`
	PublicKey json.RawMessage `json:"publicKey"`
}

func renderCeremony(c echo.Context, cer account.Ceremony) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, ceremonyView{FlowID: cer.FlowID, PublicKey: cer.Options})
}

type passkeyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func viewPasskey(p account.Passkey) passkeyView {
	v := passkeyView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt.UTC()}
	if p.LastUsedAt != nil {
		at := p.LastUsedAt.UTC()
		v.LastUsedAt = &at
	}
	return v
}

func (h *Handler) beginPasskeyRegistration(c echo.Context) error {
	var req reauthRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	cer, err := h.svc.BeginPasskeyRegistration(c.Request().Context(), principal(c), req.CurrentPassword)
	if err != nil {
		return err
	}
	return renderCeremony(c, cer)
}

// finishRequest is a ceremony's finish: credential is the PublicKeyCredential as the
// browser's toJSON() gives it.
type finishRequest struct {
	FlowID     string          `json:"flow_id"`
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

func (r finishRequest) valid() bool {
	return r.FlowID != "" && len(r.Credential) > 0 && string(r.Credential) != "null"
}

func (h *Handler) finishPasskeyRegistration(c echo.Context) error {
	var req finishRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if !req.valid() {
		return account.ErrInvalidRequest
	}
	pk, err := h.svc.FinishPasskeyRegistration(c.Request().Context(), principal(c), req.FlowID, req.Name, req.Credential)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, viewPasskey(pk))
}

func (h *Handler) listPasskeys(c echo.Context) error {
	list, err := h.svc.ListPasskeys(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	out := make([]passkeyView, len(list))
	for i, p := range list {
		out[i] = viewPasskey(p)
	}
	return c.JSON(http.StatusOK, map[string][]passkeyView{"passkeys": out})
}

func (h *Handler) renamePasskey(c echo.Context) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	pk, err := h.svc.RenamePasskey(c.Request().Context(), principal(c), c.Param("id"), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewPasskey(pk))
}

func (h *Handler) deletePasskey(c echo.Context) error {
	var req reauthRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if err := h.svc.DeletePasskey(c.Request().Context(), principal(c), c.Param("id"), req.CurrentPassword); err != nil {
		return err
	}
	return noContent(c)
}

func (h *Handler) beginPasskeyLogin(c echo.Context) error {
	if err := httpx.BindJSON(c, &struct{}{}); err != nil {
		return err
	}
	cer, err := h.svc.BeginPasskeyLogin(c.Request().Context(), client(c))
	if err != nil {
		return err
	}
	return renderCeremony(c, cer)
}

func (h *Handler) finishPasskeyLogin(c echo.Context) error {
	pair, err := h.passkeyLoginPair(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewPair(pair))
}

func (h *Handler) finishPasskeyLoginV2(c echo.Context) error {
	pair, err := h.passkeyLoginPair(c)
	if err != nil {
		return err
	}
	return h.renderPairV2(c, pair)
}

func (h *Handler) passkeyLoginPair(c echo.Context) (account.TokenPair, error) {
	var req finishRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		h.metrics.login(err, false)
		return account.TokenPair{}, err
	}
	if !req.valid() {
		h.metrics.login(account.ErrInvalidRequest, false)
		return account.TokenPair{}, account.ErrInvalidRequest
	}
	pair, err := h.svc.FinishPasskeyLogin(c.Request().Context(), req.FlowID, req.Credential, client(c))
	h.metrics.login(err, false)
	return pair, err
}

func (h *Handler) beginPasskeyMFA(c echo.Context) error {
	var req struct {
		MFAToken string `json:"mfa_token"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if req.MFAToken == "" {
		return account.ErrInvalidRequest
	}
	cer, err := h.svc.BeginPasskeyMFA(c.Request().Context(), req.MFAToken, client(c))
	if err != nil {
		return err
	}
	return renderCeremony(c, cer)
}
