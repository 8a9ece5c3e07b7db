package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
	"github.com/talentforge/auth/services/auth/internal/flags"
)

// Feature flags: the admin routes that list and switch them, and the gate of the
// flows they turn off (404 feature_disabled, see MapError).

// registerFlags adds the admin routes of the flags of version v.
func (h *Handler) registerFlags(e *echo.Echo, v string) {
	adm := []echo.MiddlewareFunc{h.authenticate, requireRole(admin.RoleAdmin)}
	e.GET(v+"/admin/flags", h.adminListFlags, adm...)
	e.PUT(v+"/admin/flags/:name", h.adminSetFlag, adm...)
}

type flagView struct {
	Name        string `json:"name"`
	Enabled     bool   `json:"enabled"`
	Description string `json:"description"`
}

func viewFlag(f flags.Flag) flagView {
	return flagView{Name: f.Name, Enabled: f.Enabled, Description: f.Description}
}

func (h *Handler) adminListFlags(c echo.Context) error {
	if h.cfg.Flags == nil {
		return accounts.ErrUnavailable
	}
	list := h.cfg.Flags.List(c.Request().Context())
	out := make([]flagView, len(list))
	for i, f := range list {
		out[i] = viewFlag(f)
	}
	return c.JSON(http.StatusOK, map[string][]flagView{"flags": out})
}

func (h *Handler) adminSetFlag(c echo.Context) error {
	if h.cfg.Flags == nil {
		return accounts.ErrUnavailable
	}
	var req struct {
		Enabled json.RawMessage `json:"enabled"`
	}
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	// enabled is required and a boolean: anything else (absent, null, "true", 1) is
	// invalid_request, not a guess.
	var enabled bool
	switch {
	case bytes.Equal(req.Enabled, []byte("true")):
		enabled = true
	case bytes.Equal(req.Enabled, []byte("false")):
	default:
		return account.ErrInvalidRequest
	}
	p := principal(c)
	f, err := h.cfg.Flags.Set(c.Request().Context(), events.Actor{ActorID: p.UserID, ActorSessionID: p.SessionID},
		c.Param("name"), enabled)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewFlag(f))
}

// flagOn is nil when the flag is on (or the service has no flags: every flow on), else
// the *flags.DisabledError that answers 404 feature_disabled.
func (h *Handler) flagOn(c echo.Context, name string) error {
	if h.cfg.Flags == nil {
		return nil
	}
	return h.cfg.Flags.Check(c.Request().Context(), name)
}

// requireFlag answers 404 feature_disabled while the flag is off, before anything else
// of the route runs (authentication included: the flow is not there).
func (h *Handler) requireFlag(name string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := h.flagOn(c, name); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// offeredFactors are the second factors a login answer offers: the use case's, less
// webauthn while the passkeys flag is off.
func (h *Handler) offeredFactors(c echo.Context, factors []string) []string {
	if len(factors) == 0 || h.flagOn(c, flags.Passkeys) == nil {
		return factors
	}
	return slices.DeleteFunc(slices.Clone(factors), func(f string) bool { return f == "webauthn" })
}
