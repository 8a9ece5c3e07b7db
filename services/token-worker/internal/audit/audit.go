// Package audit writes every auth event to the audit_log table (partitioned by month,
// see partitions.go), without the secrets an event may carry.
package audit

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

// OutcomeRecorded is the outcome of a written (or already written) event.
const OutcomeRecorded = "recorded"

// Entry is one row of audit_log.
type Entry struct {
	ID         uuid.UUID
	Type       string
	OccurredAt time.Time
	UserID     uuid.NullUUID
	ActorID    uuid.NullUUID
	RequestID  string
	Payload    json.RawMessage
}

// Store is the audit_log table.
type Store struct{ db *postgres.DB }

// NewStore returns the store.
func NewStore(db *postgres.DB) *Store { return &Store{db: db} }

// Insert writes e; an entry already there (a redelivery) is left as it is.
func (s *Store) Insert(ctx context.Context, e Entry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (id, type, occurred_at, user_id, actor_id, request_id, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		e.ID, e.Type, e.OccurredAt.UTC(), e.UserID, e.ActorID, e.RequestID, string(e.Payload))
	if err != nil {
		return retry.DB(fmt.Errorf("write audit entry %s: %w", e.ID, err))
	}
	return nil
}

// ForUser returns a user's entries, newest first (the query the index serves).
func (s *Store) ForUser(ctx context.Context, userID string, limit int) ([]Entry, error) {
	var rows []struct {
		ID         uuid.UUID
		Type       string
		OccurredAt time.Time
		UserID     uuid.NullUUID
		ActorID    uuid.NullUUID
		RequestID  string
		Payload    string
	}
	if err := s.db.NewRaw(`SELECT id, type, occurred_at, user_id, actor_id, request_id, payload::text AS payload FROM audit_log
		WHERE user_id = ? ORDER BY occurred_at DESC, id DESC LIMIT ?`, userID, limit).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read audit entries of %s: %w", userID, err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = Entry{ID: r.ID, Type: r.Type, OccurredAt: r.OccurredAt, UserID: r.UserID, ActorID: r.ActorID,
			RequestID: r.RequestID, Payload: json.RawMessage(r.Payload)}
	}
	return out, nil
}

// Inserter writes entries.
type Inserter interface {
	Insert(ctx context.Context, e Entry) error
}

var _ Inserter = (*Store)(nil)

// Recorder is the audit use case: one event in, one entry out.
type Recorder struct{ store Inserter }

// NewRecorder returns the recorder.
func NewRecorder(store Inserter) *Recorder { return &Recorder{store: store} }

// Handle records ev. The payload loses every secret field first (see Scrub).
func (r *Recorder) Handle(ctx context.Context, ev events.Envelope) (string, error) {
	id, err := uuid.Parse(ev.ID)
	if err != nil {
		return "", retry.Permanent(fmt.Errorf("event id %q is not a uuid", ev.ID))
	}
	payload, err := Scrub(ev.Payload)
	if err != nil {
		return "", retry.Permanent(fmt.Errorf("decode %s payload: %w", ev.Type, err))
	}
	userID := ev.UserID
	if userID == "" {
		var p struct {
			UserID string `json:"user_id"`
		}
		_ = json.Unmarshal(ev.Payload, &p)
		userID = p.UserID
	}
	e := Entry{ID: id, Type: ev.Type, OccurredAt: ev.OccurredAt, UserID: nullUUID(userID), ActorID: nullUUID(ev.ActorID),
		RequestID: ev.RequestID, Payload: payload}
	if err := r.store.Insert(ctx, e); err != nil {
		return "", err
	}
	return OutcomeRecorded, nil
}

func nullUUID(s string) uuid.NullUUID {
	u, err := uuid.Parse(s)
	return uuid.NullUUID{UUID: u, Valid: err == nil && s != ""}
}

// Scrub returns the payload without secrets (redact.Payload: the rule the webhook
// bodies share): any field, at any depth, whose name is a token, a sealed value, a
// password, a secret, a hash or a one-time code. The audit log never holds one.
func Scrub(raw json.RawMessage) (json.RawMessage, error) { return redact.Payload(raw) }
