package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
)

func (h *Handler) me(c echo.Context) error {
	u, err := h.svc.Me(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewUser(u))
}

type updateMeRequest struct {
	Name *string `json:"name"`
}

func (h *Handler) updateMe(c echo.Context) error {
	var req updateMeRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	if req.Name == nil {
		return h.me(c) // nothing this route may change was sent
	}
	u, err := h.svc.UpdateName(c.Request().Context(), p, *req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewUser(u))
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (h *Handler) changePassword(c echo.Context) error {
	var req changePasswordRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if err := h.svc.ChangePassword(c.Request().Context(), principal(c), req.CurrentPassword, req.NewPassword); err != nil {
		return err
	}
	return noContent(c)
}

func (h *Handler) listSessions(c echo.Context) error {
	list, err := h.svc.ListSessions(c.Request().Context(), principal(c))
	if err != nil {
		return err
	}
	out := make([]sessionView, len(list))
	for i, s := range list {
		out[i] = sessionView{ID: s.ID, CreatedAt: s.CreatedAt.UTC(), LastUsedAt: s.LastUsedAt.UTC(), IP: s.IP,
			UserAgent: s.UserAgent, Current: s.Current}
	}
	return c.JSON(http.StatusOK, map[string]any{"sessions": out})
}

func (h *Handler) revokeSession(c echo.Context) error {
	if err := h.svc.RevokeSession(c.Request().Context(), principal(c), c.Param("id")); err != nil {
		return err
	}
	return noContent(c)
}
