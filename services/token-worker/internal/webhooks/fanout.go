// Package webhooks delivers the auth events to the webhook endpoints admins register
// (auth's admin API writes webhook_endpoints): a JetStream consumer of its own fans each
// event out into one webhook_deliveries row per subscribed endpoint (Fanout), and a
// dispatcher claims the due rows and calls the endpoints, Standard Webhooks style, with
// retries, dead letters and the disabling of an endpoint that keeps failing
// (Dispatcher).
package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/token-worker/internal/redact"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// ConsumerName is the durable consumer that fans the events out.
const ConsumerName = "token-worker-webhooks"

// Outcomes of Fanout.Handle (token_worker_events_consumed_total{consumer="webhooks"}).
const (
	// OutcomeQueued: one delivery row or more was written.
	OutcomeQueued = "queued"
	// OutcomeNone: no live endpoint subscribes to the event (or a redelivery found its
	// rows written).
	OutcomeNone = "none"
)

// Body is the body every attempt of ev's deliveries sends, fixed when the event is fanned
// out (Standard Webhooks): {"type", "timestamp" (occurred_at, RFC 3339 UTC), "data" (the
// payload without its secrets and digests: redact.External)}.
func Body(ev events.Envelope) ([]byte, error) {
	data, err := redact.External(ev.Payload)
	if err != nil {
		return nil, retry.Permanent(fmt.Errorf("decode %s payload: %w", ev.Type, err))
	}
	return json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{ev.Type, ev.OccurredAt.UTC().Format(time.RFC3339Nano), data})
}

// Fanout is the consumer's handler: one delivery per live endpoint subscribed to the
// event's type.
type Fanout struct {
	db   *postgres.DB
	wake func()
}

// NewFanout returns the handler; wake (may be nil) tells the process's dispatcher that
// deliveries were written, so it need not wait for its next poll.
func NewFanout(db *postgres.DB, wake func()) *Fanout {
	if wake == nil {
		wake = func() {}
	}
	return &Fanout{db: db, wake: wake}
}

// Handle writes ev's deliveries, in one statement whatever the number of endpoints: an
// event no endpoint wants costs that one indexed query. An endpoint takes part when it
// is neither deleted nor disabled and was created no later than the event occurred, so
// a new endpoint gets the events that occur after the admin call that made it, never an
// older event the consumer reads late. A redelivered event writes nothing new (one row
// per endpoint and event).
func (f *Fanout) Handle(ctx context.Context, ev events.Envelope) (string, error) {
	id, err := uuid.Parse(ev.ID)
	if err != nil {
		return "", retry.Permanent(fmt.Errorf("event id %q is not a uuid", ev.ID))
	}
	body, err := Body(ev)
	if err != nil {
		return "", err
	}
	res, err := f.db.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body)
		SELECT gen_random_uuid(), e.id, ?, ?, ? FROM webhook_endpoints e
		WHERE e.deleted_at IS NULL AND e.disabled_at IS NULL AND e.created_at <= ? AND ? = ANY (e.events)
		ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
		id, ev.Type, string(body), ev.OccurredAt.UTC(), ev.Type)
	if err != nil {
		return "", retry.DB(fmt.Errorf("write the webhook deliveries of %s: %w", ev.ID, err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return OutcomeNone, nil
	}
	f.wake()
	return OutcomeQueued, nil
}
