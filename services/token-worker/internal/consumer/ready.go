package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// NotReadyAfter is how many fetches in a row must fail before Ready reports the consumer
// not ready. A single failure is a blip (a server restarting, a leader moving) that
// the next fetch usually gets past; with the fetch retry backoff (1 s, doubled each
// time) the third failure in a row comes about 3 s after the first.
const NotReadyAfter = 3

// errNotStarted is what Ready says before Run first tried to set the consumer up.
var errNotStarted = errors.New("not started")

// readiness is what Ready reports, kept by Run: whether the consumer is set up on the
// server (Ensure succeeded), and how many fetches in a row failed.
type readiness struct {
	mu       sync.Mutex
	setUpErr error // nil once Ensure succeeded; errNotStarted before the first try
	fetchErr error // the last fetch failure, nil after a fetch that worked
	failures int   // fetch failures in a row
	stopped  bool
}

// Ready reports whether the consumer is consuming: nil once it is set up on the server
// and its fetches work, an error naming why not while Ensure has not succeeded yet
// ("not set up: ..."), while NotReadyAfter or more fetches in a row failed ("fetch
// failing: ..."), and once Run returned ("stopped"). It is the consumer's check on
// /readyz and sets token_worker_consumer_ready.
func (c *Consumer) Ready(context.Context) error {
	c.ready.mu.Lock()
	defer c.ready.mu.Unlock()
	return c.readyErr()
}

// readyErr is Ready with c.ready.mu held.
func (c *Consumer) readyErr() error {
	r := &c.ready
	switch {
	case r.stopped:
		return fmt.Errorf("consumer %s: stopped", c.cfg.Durable)
	case r.setUpErr != nil:
		return fmt.Errorf("consumer %s: not set up: %w", c.cfg.Durable, r.setUpErr)
	case r.failures >= NotReadyAfter:
		return fmt.Errorf("consumer %s: fetch failing (%d times in a row): %w", c.cfg.Durable, r.failures, r.fetchErr)
	}
	return nil
}

// markReady applies change to the state and sets the gauge from the outcome.
func (c *Consumer) markReady(change func(r *readiness)) {
	c.ready.mu.Lock()
	defer c.ready.mu.Unlock()
	change(&c.ready)
	v := 0.0
	if c.readyErr() == nil {
		v = 1
	}
	c.o.metrics.ready.WithLabelValues(c.cfg.Label).Set(v)
}

// setUp records the outcome of one Ensure: nil makes the consumer set up; an error
// makes it not set up until an Ensure works again.
func (c *Consumer) setUp(err error) {
	c.markReady(func(r *readiness) { r.setUpErr, r.stopped = err, false })
}

// fetched records the outcome of one fetch and returns the failures in a row (Run's
// backoff): nil (events or none in the wait) resets them.
func (c *Consumer) fetched(err error) (failures int) {
	c.markReady(func(r *readiness) {
		if err == nil {
			r.failures, r.fetchErr = 0, nil
		} else {
			r.failures++
			r.fetchErr = err
		}
		failures = r.failures
	})
	return failures
}

// stop records that Run returned: the consumer consumes no more.
func (c *Consumer) stop() { c.markReady(func(r *readiness) { r.stopped = true }) }

// initReady is the state of a new consumer: not set up, not ready (the gauge is 0 from
// the start, so an alert on it sees a consumer that never gets set up).
func (c *Consumer) initReady() { c.markReady(func(r *readiness) { r.setUpErr = errNotStarted }) }
