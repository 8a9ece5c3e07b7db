// Package consumer runs a durable JetStream pull consumer on the auth events stream:
// it creates the consumer idempotently, fetches as many events as it has free workers,
// keeps each in progress while it is handled, and acks, retries with backoff or
// dead-letters it according to the handler's error (see package retry).
package consumer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// Handler handles one event and returns its outcome ("sent", "recorded"...) or an error
// that package retry classifies.
type Handler func(ctx context.Context, ev events.Envelope) (outcome string, err error)

// Config is one durable consumer.
type Config struct {
	// Durable is the consumer's name on the stream, e.g. "token-worker-email".
	Durable string
	// Label names the consumer in metrics and logs, e.g. "email".
	Label string
	// Subject filters the stream (one subject, wildcards allowed); empty means every
	// event. One filter, not FilterSubjects: NATS Server 2.9 has no multi-subject filter.
	Subject string
	// Concurrency is how many events are handled at once.
	Concurrency int
	// MaxDeliver is how many deliveries an event gets before it is dead-lettered. Failures
	// that are the dependencies' fault (retry.ErrUnavailable) are not held against it,
	// up to twice that many: the server's own bound.
	MaxDeliver int
	// AckWait is how long the server waits for an answer before it delivers again; an
	// event being handled is kept in progress meanwhile.
	AckWait time.Duration
	// BackoffMin and BackoffMax bound the delay before a failed event's next delivery.
	BackoffMin, BackoffMax time.Duration
}

// Consumer is one durable pull consumer and its workers.
type Consumer struct {
	tracer  trace.Tracer
	js      jetstream.JetStream
	streams *Streams
	cfg     Config
	handle  Handler
	o       options
	ready   readiness
}

// New returns a consumer; Run creates it on the server and consumes. streams is shared
// by the process's consumers.
func New(js jetstream.JetStream, streams *Streams, cfg Config, handle Handler, opts ...Option) *Consumer {
	o := options{log: zap.NewNop(), fetchWait: 5 * time.Second, lagInterval: 15 * time.Second, drain: 20 * time.Second, retryWait: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.metrics == nil {
		o.metrics = NewMetrics(nil)
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	o.log = o.log.With(zap.String("consumer", cfg.Durable))
	c := &Consumer{tracer: otel.Tracer("github.com/talentforge/auth/services/token-worker/internal/consumer"), js: js, streams: streams, cfg: cfg, handle: handle, o: o}
	c.initReady()
	return c
}

// Run consumes until ctx ends, then lets the events being handled finish (within the
// drain time) and returns.
func (c *Consumer) Run(ctx context.Context) {
	defer c.stop()
	cons := c.ensure(ctx)
	if cons == nil {
		return
	}
	c.o.log.Info("consuming", zap.String("subject", c.cfg.Subject))
	var wg sync.WaitGroup
	wg.Go(func() { c.reportLag(ctx, cons) })

	// Handlers outlive ctx so shutdown does not cut an SMTP conversation in half.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	var handlers sync.WaitGroup
	slots := make(chan struct{}, c.cfg.Concurrency)
	for ctx.Err() == nil {
		if c.o.gate != nil && c.o.gate(ctx) != nil {
			break
		}
		n, ok := take(ctx, slots)
		if !ok {
			break
		}
		fctx, cancel := context.WithTimeout(ctx, c.o.fetchWait)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				got++
				handlers.Go(func() {
					defer func() { <-slots }()
					c.process(hctx, msg)
				})
			}
			err = batch.Error()
		}
		cancel()
		for ; got < n; got++ {
			<-slots
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			failures := c.fetched(err)
			c.o.log.Warn("fetch failed", zap.Error(err), zap.Int("failures", failures))
			if !sleep(ctx, retry.Backoff(failures, c.o.retryWait, 30*time.Second)) {
				break
			}
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) || failures%5 == 0 {
				if cons = c.ensure(ctx); cons == nil {
					break
				}
			}
			continue
		}
		c.fetched(nil)
	}

	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.o.drain):
		c.o.log.Warn("drain time over: cancelling the events still being handled")
		hcancel()
		<-done
	}
	wg.Wait()
	c.o.log.Info("stopped")
}

// take waits for one free slot, then takes every other free one.
func take(ctx context.Context, slots chan struct{}) (int, bool) {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	n := 1
	for n < cap(slots) {
		select {
		case slots <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
