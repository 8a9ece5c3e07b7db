// Package events is the event contract between the services: one JSON envelope, one
// subject per event type under auth.>, one JetStream stream, and sealed fields for
// secrets (verification and reset tokens) so they never rest in plaintext.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

// Namespace keeps one deployment's JetStream names apart from another's on a shared
// NATS server (NATS_NAMESPACE): stream names get "_" + it appended and subjects get it
// and "." prepended, so staging and production, or parallel test runs, can share a
// server without an account of their own. The empty namespace is the default layout:
// stream AUTH_EVENTS, subjects auth.>. The envelope's Type never carries it.
type Namespace string

// ParseNamespace checks a NATS_NAMESPACE value: empty, or 1 to 32 letters, digits,
// dashes and underscores (a stream name may not hold dots or wildcards, a subject
// token may not hold spaces).
func ParseNamespace(s string) (Namespace, error) {
	if len(s) > 32 {
		return "", fmt.Errorf("%q is longer than 32 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", fmt.Errorf("%q may hold only letters, digits, dashes and underscores", s)
		}
	}
	return Namespace(s), nil
}

// Stream names the stream base (e.g. StreamName) in this namespace.
func (n Namespace) Stream(base string) string {
	if n == "" {
		return base
	}
	return base + "_" + string(n)
}

// Subject is the subject an event type (or a subject pattern) has in this namespace.
func (n Namespace) Subject(eventType string) string {
	if n == "" {
		return eventType
	}
	return string(n) + "." + eventType
}

// Type is the event type a subject of this namespace carries; ok is false for a
// subject outside the namespace.
func (n Namespace) Type(subject string) (eventType string, ok bool) {
	if n == "" {
		return subject, true
	}
	return strings.CutPrefix(subject, string(n)+".")
}

// StreamConfig is the events stream's explicit configuration in this namespace.
func (n Namespace) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.Stream(StreamName),
		Description: "auth platform events; see docs/events.md",
		Subjects:    []string{n.Subject(SubjectAll)},
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
func (n Namespace) EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	cfg := n.StreamConfig()
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}
