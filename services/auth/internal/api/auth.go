package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
)

// Request bodies hold only what a client may set: no roles, ids, verification or
// timestamps, whatever the case of the keys a client sends.
type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (h *Handler) register(c echo.Context) error {
	var req credentials
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	res, err := h.svc.Register(c.Request().Context(), req.Email, req.Password, req.Name, client(c))
	if err != nil {
		return err
	}
	if res.Pending {
		return c.JSON(http.StatusAccepted, map[string]string{"status": "verification_pending"})
	}
	return c.JSON(http.StatusCreated, accounts.ViewUser(res.User))
}

func (h *Handler) login(c echo.Context) error {
	pair, err := h.loginPair(c)
	if err != nil {
		return err
	}
	if pair.MFARequired {
		return c.JSON(http.StatusOK, accounts.ViewMFARequired(pair))
	}
	return c.JSON(http.StatusOK, accounts.ViewPair(pair))
}

// loginPair is the login of both versions: bind, check, sign in. v1 and v2 differ only
// in how they render the pair.
func (h *Handler) loginPair(c echo.Context) (account.TokenPair, error) {
	var req credentials
	if err := httpx.BindJSON(c, &req); err != nil {
		h.metrics.login(err, false)
		return account.TokenPair{}, err
	}
	if req.Email == "" || req.Password == "" {
		h.metrics.login(account.ErrInvalidRequest, false)
		return account.TokenPair{}, account.ErrInvalidRequest
	}
	pair, err := h.svc.Login(c.Request().Context(), req.Email, req.Password, client(c))
	h.metrics.login(err, pair.MFARequired)
	pair.MFAFactors = h.offeredFactors(c, pair.MFAFactors)
	return pair, err
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (h *Handler) refresh(c echo.Context) error {
	var req refreshRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		h.metrics.refresh(err)
		return err
	}
	pair, err := h.svc.Refresh(c.Request().Context(), req.RefreshToken, client(c))
	h.metrics.refresh(err)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewPair(pair))
}

func (h *Handler) logout(c echo.Context) error {
	var req refreshRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if err := h.svc.Logout(c.Request().Context(), principal(c), req.RefreshToken); err != nil {
		return err
	}
	return noContent(c)
}

func (h *Handler) logoutAll(c echo.Context) error {
	if err := h.svc.LogoutAll(c.Request().Context(), principal(c)); err != nil {
		return err
	}
	return noContent(c)
}

// verify is Traefik's ForwardAuth target: 200 with identity headers, 403 when a
// required role is missing.
func (h *Handler) verify(c echo.Context) error {
	p := principal(c)
	if role := c.QueryParam("role"); role != "" && !p.HasRole(role) {
		return account.ErrForbidden
	}
	if perm := c.QueryParam("permission"); perm != "" && !p.HasPermission(perm) {
		return account.ErrForbidden
	}
	// Canonical names set in place: the gateway asks this for every request it passes.
	hd := c.Response().Header()
	hd["X-Auth-User-Id"] = []string{p.UserID}
	hd["X-Auth-Email"] = []string{p.User.Email}
	hd["X-Auth-Roles"] = []string{strings.Join(p.User.Roles, ",")}
	hd["X-Auth-Session-Id"] = []string{p.SessionID}
	h.setClaimHeaders(hd, p.Claims)
	return c.NoContent(http.StatusOK)
}

type tokenRequest struct {
	Token string `json:"token"`
}

func (h *Handler) verifyEmail(c echo.Context) error {
	var req tokenRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	u, err := h.svc.VerifyEmail(c.Request().Context(), req.Token, client(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewUser(u))
}

type emailRequest struct {
	Email string `json:"email"`
}

func (h *Handler) resendVerification(c echo.Context) error {
	var req emailRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if err := h.svc.ResendVerification(c.Request().Context(), req.Email, client(c)); err != nil {
		return err
	}
	return accepted(c)
}

func (h *Handler) forgotPassword(c echo.Context) error {
	var req emailRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if err := h.svc.ForgotPassword(c.Request().Context(), req.Email, client(c)); err != nil {
		return err
	}
	return accepted(c)
}

func accepted(c echo.Context) error {
	return c.JSON(http.StatusAccepted, map[string]string{"status": "accepted"})
}

type resetRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (h *Handler) resetPassword(c echo.Context) error {
	var req resetRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if err := h.svc.ResetPassword(c.Request().Context(), req.Token, req.Password); err != nil {
		return err
	}
	return noContent(c)
}
