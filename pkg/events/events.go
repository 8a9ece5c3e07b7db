// Package events is the event contract between the services: one JSON envelope, one
// subject per event type under auth.>, one JetStream stream, and sealed fields for
// secrets (verification and reset tokens) so they never rest in plaintext.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Envelope is every event on the wire and in the outbox. The NATS subject equals Type,
// and the JetStream message id (Nats-Msg-Id) equals ID, so a republished event is
// dropped by the stream's duplicate window.
type Envelope struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	UserID     string    `json:"user_id,omitempty"`  // the user the event is about
	ActorID    string    `json:"actor_id,omitempty"` // who caused it, when not the user
	RequestID  string    `json:"request_id,omitempty"`
	// Traceparent and Tracestate are the W3C trace context of the request that wrote
	// the event (SetTraceContext), so the relay's publish and the consumers' processing
	// join that request's trace although the event waited in the outbox. Optional.
	Traceparent string          `json:"traceparent,omitempty"`
	Tracestate  string          `json:"tracestate,omitempty"`
	Payload     json.RawMessage `json:"payload"`
}

// The stream that carries every event.
const (
	StreamName = "AUTH_EVENTS"
	SubjectAll = "auth.>"
	// MaxAge bounds how long an event waits for a consumer that is down.
	MaxAge = 7 * 24 * time.Hour
	// DuplicateWindow is how long JetStream remembers message ids: a relay that
	// publishes the same outbox row twice within it is answered "duplicate".
	DuplicateWindow = 10 * time.Minute
)

// StreamConfig is the stream's explicit configuration.
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "auth platform events; see docs/events.md",
		Subjects:    []string{SubjectAll},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      MaxAge,
		MaxBytes:    1 << 30,
		// A full stream refuses new events rather than dropping unconsumed ones: the
		// outbox keeps them and the relay retries with backoff.
		Discard:    jetstream.DiscardNew,
		Duplicates: DuplicateWindow,
	}
}

// EnsureStream creates the stream or brings it to StreamConfig; safe to call from
// every replica at every start.
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, StreamConfig())
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	return s, nil
}
