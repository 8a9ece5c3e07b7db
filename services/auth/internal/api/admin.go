package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
)

func requireRole(role string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !principal(c).HasRole(role) {
				return account.ErrForbidden
			}
			return next(c)
		}
	}
}

// limitParam is the limit query parameter of a listing: 0 (the default) when absent,
// admin.ErrInvalidLimit when not a positive integer (the use case bounds it above).
func limitParam(c echo.Context) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, admin.ErrInvalidLimit
	}
	return n, nil
}

type userPage struct {
	Users      []accounts.UserView `json:"users"`
	NextCursor *string             `json:"next_cursor"`
}

func (h *Handler) adminListUsers(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	page, err := h.admin.ListUsers(c.Request().Context(), limit, c.QueryParam("cursor"), c.QueryParam("email"))
	if err != nil {
		return err
	}
	out := userPage{Users: make([]accounts.UserView, len(page.Users))}
	for i, u := range page.Users {
		out.Users[i] = accounts.ViewUser(u)
	}
	if page.Next != nil {
		cur := admin.EncodeCursor(*page.Next)
		out.NextCursor = &cur
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handler) adminGetUser(c echo.Context) error {
	u, err := h.admin.User(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewUser(u))
}

type rolesRequest struct {
	Roles *[]string `json:"roles"`
}

func (h *Handler) adminSetRoles(c echo.Context) error {
	var req rolesRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if req.Roles == nil {
		return account.ErrInvalidRequest
	}
	u, err := h.admin.SetRoles(c.Request().Context(), principal(c), c.Param("id"), *req.Roles)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, accounts.ViewUser(u))
}

func (h *Handler) adminDisable(c echo.Context) error {
	if err := h.admin.Disable(c.Request().Context(), principal(c), c.Param("id")); err != nil {
		return err
	}
	return noContent(c)
}

func (h *Handler) adminEnable(c echo.Context) error {
	if err := h.admin.Enable(c.Request().Context(), principal(c), c.Param("id")); err != nil {
		return err
	}
	return noContent(c)
}

type roleView struct {
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at"`
}

func viewRole(r admin.Role) roleView {
	perms := r.Permissions
	if perms == nil {
		perms = []string{}
	}
	return roleView{Name: r.Name, Permissions: perms, CreatedAt: r.CreatedAt.UTC()}
}

func (h *Handler) adminListRoles(c echo.Context) error {
	roles, err := h.admin.Roles(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]roleView, len(roles))
	for i, r := range roles {
		out[i] = viewRole(r)
	}
	return c.JSON(http.StatusOK, map[string]any{"roles": out})
}

type createRoleRequest struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
}

func (h *Handler) adminCreateRole(c echo.Context) error {
	var req createRoleRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	r, err := h.admin.CreateRole(c.Request().Context(), principal(c), req.Name, req.Permissions)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, viewRole(r))
}

func (h *Handler) adminDeleteRole(c echo.Context) error {
	if err := h.admin.DeleteRole(c.Request().Context(), principal(c), c.Param("name")); err != nil {
		return err
	}
	return noContent(c)
}
