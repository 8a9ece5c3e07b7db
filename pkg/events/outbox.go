package events

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Event is one event to write to the outbox: its type (the subject) and its payload.
type Event struct {
	Subject string
	Payload any
}

type outboxInsert struct {
	bun.BaseModel `bun:"table:outbox"`

	ID      uuid.UUID       `bun:"id,pk,type:uuid"`
	Subject string          `bun:"subject"`
	Payload json.RawMessage `bun:"payload,type:jsonb"`
}

// Enqueue writes evs to the outbox through db, which should be the transaction of the
// change that caused them. Each row holds the whole envelope: its id is the row id, a
// UUIDv7, so the relay publishes in order; a "token" in a payload is sealed under that
// id with keys and never reaches the table.
func Enqueue(ctx context.Context, db bun.IDB, keys *keyring.Keyring, requestID string, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	now := time.Now()
	rows := make([]outboxInsert, len(evs))
	for i, ev := range evs {
		id := uuid.Must(uuid.NewV7())
		// The envelope keeps ctx's trace context, so the relay and the consumers
		// continue the trace of the request that caused the event.
		env, err := NewEnvelopeContext(ctx, keys, id.String(), ev.Subject, now, requestID, ev.Payload)
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.Subject, err)
		}
		b, err := json.Marshal(env)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", ev.Subject, err)
		}
		rows[i] = outboxInsert{ID: id, Subject: ev.Subject, Payload: b}
	}
	if _, err := db.NewInsert().Model(&rows).Exec(ctx); err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	return nil
}
