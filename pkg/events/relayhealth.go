package events

import (
	"context"
	"fmt"
	"sync"
)

// RelayUnhealthyAfter is how many attempts in a row to reach JetStream (a stream
// ensure, or a batch stopped by a publish that got no PubAck) must fail before
// Relay.Healthy reports the relay unhealthy: one failure is a blip the next attempt,
// a second or so later, usually gets past.
const RelayUnhealthyAfter = 3

// relayHealth is what Healthy reports: the relay's attempts to reach JetStream in a
// row that failed, and the last failure.
type relayHealth struct {
	mu       sync.Mutex
	failures int
	err      error
}

// record notes the outcome of one attempt to reach JetStream: nil when JetStream
// answered (the stream was ensured, a PubAck came back, or the stream rejected an event
// it had read), the error otherwise. Nothing is recorded when ctx ended: a shutdown
// is no failure of NATS.
func (h *relayHealth) record(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.failures, h.err = 0, nil
		return
	}
	h.failures++
	h.err = err
}

// Healthy reports whether the relay can publish: an error once RelayUnhealthyAfter or
// more attempts in a row to reach JetStream failed (NATS down, JetStream disabled or
// not answering, the stream missing and impossible to create), nil otherwise and
// before the relay tried anything (a relay that is not running has nothing to say;
// the NATS connection has its own check). It stays failed until an attempt works:
// Run retries with a backoff of at most 30 s (WithBackoff), so a JetStream that came
// back is seen within that.
//
// It is the services' `nats` readiness check, next to the connection status: a NATS
// whose TCP connection is up but whose JetStream answers no PubAck must not look
// ready, since no event leaves the outbox. Errors from PostgreSQL (claiming or marking
// rows) do not count here; the `postgres` check reports those.
func (r *Relay) Healthy(context.Context) error {
	h := &r.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failures >= RelayUnhealthyAfter {
		return fmt.Errorf("outbox relay cannot publish to JetStream (%d attempts in a row failed): %w", h.failures, h.err)
	}
	return nil
}
