package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/talentforge/auth/pkg/accounts"

	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/webhooks"
)

var _ webhooks.Store = (*Webhooks)(nil)

// Webhooks is the PostgreSQL store of webhook endpoints (the token-worker writes the
// deliveries and the health columns).
type Webhooks struct {
	users *Users
}

// NewWebhooks returns the store; events go through the users store's outbox.
func NewWebhooks(users *Users) *Webhooks { return &Webhooks{users: users} }

// endpointRow is a webhook_endpoints row as the admin API reads it.
type endpointRow struct {
	ID                string     `bun:"id"`
	URL               string     `bun:"url"`
	Events            []string   `bun:"events,array"`
	Description       string     `bun:"description"`
	CreatedAt         time.Time  `bun:"created_at"`
	DisabledAt        *time.Time `bun:"disabled_at"`
	FailingSince      *time.Time `bun:"failing_since"`
	LastError         *string    `bun:"last_error"`
	PreviousExpiresAt *time.Time `bun:"previous_expires_at"`
}

const endpointColumns = `id, url, events, description, created_at, disabled_at, failing_since, last_error, previous_expires_at`

func (r endpointRow) endpoint() webhooks.Endpoint {
	e := webhooks.Endpoint{ID: r.ID, URL: r.URL, Events: r.Events, Description: r.Description, CreatedAt: r.CreatedAt.UTC(),
		DisabledAt: utc(r.DisabledAt), FailingSince: utc(r.FailingSince), PreviousExpiresAt: utc(r.PreviousExpiresAt)}
	if r.LastError != nil {
		e.LastError = *r.LastError
	}
	return e
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Create inserts the endpoint. Creations take turns (a transaction lock) so the count
// of live endpoints holds under a burst.
func (s *Webhooks) Create(ctx context.Context, e webhooks.Endpoint, secret json.RawMessage, max int, ev account.Event) (webhooks.Endpoint, error) {
	var row endpointRow
	err := s.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints'))`).Exec(ctx); err != nil {
			return fmt.Errorf("lock endpoints: %w", accounts.Unavailable(err))
		}
		var live int
		if err := tx.NewRaw(`SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL`).Scan(ctx, &live); err != nil {
			return fmt.Errorf("count endpoints: %w", accounts.Unavailable(err))
		}
		if live >= max {
			return webhooks.ErrTooManyEndpoints
		}
		if err := tx.NewRaw(`INSERT INTO webhook_endpoints (id, url, events, description, secret_sealed)
			VALUES (?, ?, ?, ?, ?) RETURNING `+endpointColumns,
			e.ID, e.URL, pgdialect.Array(e.Events), e.Description, string(secret)).Scan(ctx, &row); err != nil {
			return fmt.Errorf("insert endpoint: %w", accounts.Unavailable(err))
		}
		return s.users.enqueue(ctx, tx, ev)
	})
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	return row.endpoint(), nil
}

// List returns the live endpoints, oldest first.
func (s *Webhooks) List(ctx context.Context) ([]webhooks.Endpoint, error) {
	var rows []endpointRow
	if err := s.users.DB().NewRaw(`SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE deleted_at IS NULL ORDER BY created_at, id`).Scan(ctx, &rows); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("list endpoints: %w", accounts.Unavailable(err))
	}
	out := make([]webhooks.Endpoint, len(rows))
	for i, r := range rows {
		out[i] = r.endpoint()
	}
	return out, nil
}

// Delete marks the endpoint deleted and cancels its pending deliveries, so nothing
// more is sent to it once this commits.
func (s *Webhooks) Delete(ctx context.Context, id string, ev func(webhooks.Endpoint) account.Event) error {
	return s.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var row endpointRow
		err := tx.NewRaw(`UPDATE webhook_endpoints SET deleted_at = now() WHERE id = ? AND deleted_at IS NULL
			RETURNING `+endpointColumns, id).Scan(ctx, &row)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete endpoint: %w", accounts.Unavailable(err))
		}
		if _, err := tx.NewRaw(`UPDATE webhook_deliveries SET status = 'cancelled', finished_at = now(), updated_at = now(),
			next_attempt_at = now() WHERE endpoint_id = ? AND status = 'pending'`, id).Exec(ctx); err != nil {
			return fmt.Errorf("cancel deliveries: %w", accounts.Unavailable(err))
		}
		return s.users.enqueue(ctx, tx, ev(row.endpoint()))
	})
}

// Rotate swaps in the new secret; the one it replaces signs until expires.
func (s *Webhooks) Rotate(ctx context.Context, id string, secret json.RawMessage, expires time.Time, ev account.Event) (webhooks.Endpoint, error) {
	return s.update(ctx, `secret_sealed = ?, previous_secret_sealed = secret_sealed, previous_expires_at = ?`,
		[]any{string(secret), expires}, id, ev)
}

// Enable clears the worker's disabling.
func (s *Webhooks) Enable(ctx context.Context, id string, ev account.Event) (webhooks.Endpoint, error) {
	return s.update(ctx, `disabled_at = NULL, failing_since = NULL`, nil, id, ev)
}

// update sets columns of a live endpoint and records ev, in one transaction.
func (s *Webhooks) update(ctx context.Context, set string, args []any, id string, ev account.Event) (webhooks.Endpoint, error) {
	var row endpointRow
	err := s.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewRaw(`UPDATE webhook_endpoints SET `+set+` WHERE id = ? AND deleted_at IS NULL RETURNING `+endpointColumns,
			append(args, id)...).Scan(ctx, &row)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update endpoint: %w", accounts.Unavailable(err))
		}
		return s.users.enqueue(ctx, tx, ev)
	})
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	return row.endpoint(), nil
}

type deliveryRow struct {
	ID             string     `bun:"id"`
	EventID        string     `bun:"event_id"`
	EventType      string     `bun:"event_type"`
	Status         string     `bun:"status"`
	Attempts       int        `bun:"attempts"`
	LastStatusCode *int       `bun:"last_status_code"`
	LastError      *string    `bun:"last_error"`
	NextAttemptAt  time.Time  `bun:"next_attempt_at"`
	CreatedAt      time.Time  `bun:"created_at"`
	FinishedAt     *time.Time `bun:"finished_at"`
}

// Deliveries lists the endpoint's newest deliveries; account.ErrNotFound for no live
// endpoint.
func (s *Webhooks) Deliveries(ctx context.Context, id string, limit int) ([]webhooks.Delivery, error) {
	var exists bool
	if err := s.users.DB().NewRaw(`SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ? AND deleted_at IS NULL)`, id).
		Scan(ctx, &exists); err != nil {
		return nil, fmt.Errorf("find endpoint: %w", accounts.Unavailable(err))
	}
	if !exists {
		return nil, account.ErrNotFound
	}
	var rows []deliveryRow
	if err := s.users.DB().NewRaw(`SELECT id, event_id, event_type, status, attempts, last_status_code, last_error,
		next_attempt_at, created_at, finished_at FROM webhook_deliveries WHERE endpoint_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, id, limit).Scan(ctx, &rows); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("list deliveries: %w", accounts.Unavailable(err))
	}
	out := make([]webhooks.Delivery, len(rows))
	for i, r := range rows {
		d := webhooks.Delivery{ID: r.ID, EventID: r.EventID, EventType: r.EventType, Status: r.Status, Attempts: r.Attempts,
			LastStatusCode: r.LastStatusCode, CreatedAt: r.CreatedAt.UTC(), FinishedAt: utc(r.FinishedAt)}
		if r.LastError != nil {
			d.LastError = *r.LastError
		}
		if r.Status == "pending" {
			d.NextAttemptAt = utc(&r.NextAttemptAt)
		}
		out[i] = d
	}
	return out, nil
}
