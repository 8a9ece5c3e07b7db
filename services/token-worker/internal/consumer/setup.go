package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// serverMaxDeliver is the server's bound: room for failures not held against an event.
func (c *Consumer) serverMaxDeliver() int { return 2 * c.cfg.MaxDeliver }

// ConsumerConfig is the durable consumer's configuration on the server. Retries are
// spaced by NakWithDelay rather than the consumer's BackOff list, because JetStream
// uses BackOff in place of AckWait, which would cut a slow first delivery short.
func (c *Consumer) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		Description:   "token-worker: " + c.cfg.Label,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    c.serverMaxDeliver(),
		FilterSubject: c.streams.ns.Subject(cmp.Or(c.cfg.Subject, events.SubjectAll)),
		MaxAckPending: max(1000, 4*c.cfg.Concurrency),
	}
}

// Ensure creates the events stream, the dead-letter stream and the consumer, or brings
// them to their configuration; safe from every replica at every start.
func (c *Consumer) Ensure(ctx context.Context) (jetstream.Consumer, error) {
	if err := c.streams.Ensure(ctx); err != nil {
		return nil, err
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.streams.ns.Stream(events.StreamName), c.ConsumerConfig())
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			c.streams.reset()
		}
		return nil, fmt.Errorf("ensure consumer %s: %w", c.cfg.Durable, err)
	}
	return cons, nil
}

// ensure retries Ensure until it works or ctx ends (NATS may be away at start).
func (c *Consumer) ensure(ctx context.Context) jetstream.Consumer {
	for n := 1; ; n++ {
		cons, err := c.Ensure(ctx)
		if err == nil {
			c.setUp(nil)
			return cons
		}
		if ctx.Err() != nil {
			return nil
		}
		c.setUp(err)
		c.o.log.Warn("cannot set up the consumer yet; retrying", zap.Error(err))
		if !sleep(ctx, retry.Backoff(n, c.o.retryWait, 30*time.Second)) {
			return nil
		}
	}
}
