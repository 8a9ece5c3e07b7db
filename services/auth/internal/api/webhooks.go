package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/webhook"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
	"github.com/talentforge/auth/services/auth/internal/webhooks"
)

// registerWebhooks adds the admin routes of webhook endpoints of version v.
func (h *Handler) registerWebhooks(e *echo.Echo, v string) {
	adm := []echo.MiddlewareFunc{h.authenticate, requireRole(admin.RoleAdmin)}
	e.POST(v+"/admin/webhooks", h.createWebhook, adm...)
	e.GET(v+"/admin/webhooks", h.listWebhooks, adm...)
	e.DELETE(v+"/admin/webhooks/:id", h.deleteWebhook, adm...)
	e.POST(v+"/admin/webhooks/:id/rotate-secret", h.rotateWebhookSecret, adm...)
	e.POST(v+"/admin/webhooks/:id/enable", h.enableWebhook, adm...)
	e.GET(v+"/admin/webhooks/:id/deliveries", h.listWebhookDeliveries, adm...)
}

type webhookView struct {
	ID          string     `json:"id"`
	URL         string     `json:"url"`
	Events      []string   `json:"events"`
	Description string     `json:"description"`
	CreatedAt   time.Time  `json:"created_at"`
	DisabledAt  *time.Time `json:"disabled_at"`
	// FailingSince and LastError tell how its deliveries go (null: healthy).
	FailingSince *time.Time `json:"failing_since"`
	LastError    *string    `json:"last_error"`
	// PreviousSecretExpiresAt: during a rotation, when the old secret stops signing.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

// webhookSecretView is an answer that shows a secret, once.
type webhookSecretView struct {
	webhookView
	Secret string `json:"secret"`
}

func viewWebhook(e webhooks.Endpoint) webhookView {
	v := webhookView{ID: e.ID, URL: e.URL, Events: e.Events, Description: e.Description, CreatedAt: e.CreatedAt,
		DisabledAt: e.DisabledAt, FailingSince: e.FailingSince, PreviousSecretExpiresAt: e.PreviousExpiresAt}
	if e.LastError != "" {
		v.LastError = &e.LastError
	}
	return v
}

type createWebhookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

func (h *Handler) createWebhook(c echo.Context) error {
	var req createWebhookRequest
	if err := httpx.BindJSON(c, &req); err != nil {
		return err
	}
	if req.URL == "" {
		return account.ErrInvalidRequest
	}
	created, err := h.cfg.Webhooks.Create(c.Request().Context(), principal(c), req.URL, req.Events, req.Description)
	if errors.Is(err, webhook.ErrInvalidURL) {
		// The policy's reason is ours (never the URL): which rule refused it.
		_, reason, _ := strings.Cut(err.Error(), webhook.ErrInvalidURL.Error()+": ")
		return httpx.NewError(http.StatusBadRequest, "invalid_url", "The URL is refused: "+reason+".")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, webhookSecretView{webhookView: viewWebhook(created.Endpoint), Secret: created.Secret})
}

func (h *Handler) listWebhooks(c echo.Context) error {
	list, err := h.cfg.Webhooks.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := struct {
		Webhooks []webhookView `json:"webhooks"`
	}{Webhooks: make([]webhookView, len(list))}
	for i, e := range list {
		out.Webhooks[i] = viewWebhook(e)
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handler) deleteWebhook(c echo.Context) error {
	if err := h.cfg.Webhooks.Delete(c.Request().Context(), principal(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handler) rotateWebhookSecret(c echo.Context) error {
	if err := httpx.BindJSON(c, &struct{}{}); err != nil {
		return err
	}
	rotated, err := h.cfg.Webhooks.Rotate(c.Request().Context(), principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, webhookSecretView{webhookView: viewWebhook(rotated.Endpoint), Secret: rotated.Secret})
}

func (h *Handler) enableWebhook(c echo.Context) error {
	e, err := h.cfg.Webhooks.Enable(c.Request().Context(), principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewWebhook(e))
}

type deliveryView struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	CreatedAt      time.Time  `json:"created_at"`
	FinishedAt     *time.Time `json:"finished_at"`
}

func (h *Handler) listWebhookDeliveries(c echo.Context) error {
	limit, err := limitParam(c)
	if err != nil {
		return err
	}
	list, err := h.cfg.Webhooks.Deliveries(c.Request().Context(), c.Param("id"), limit)
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []deliveryView `json:"deliveries"`
	}{Deliveries: make([]deliveryView, len(list))}
	for i, d := range list {
		v := deliveryView{ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status, Attempts: d.Attempts,
			LastStatusCode: d.LastStatusCode, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, FinishedAt: d.FinishedAt}
		if d.LastError != "" {
			v.LastError = &d.LastError
		}
		out.Deliveries[i] = v
	}
	return c.JSON(http.StatusOK, out)
}
