package consumer

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
)

type options struct {
	log         *zap.Logger
	metrics     *Metrics
	gate        func(context.Context) error
	beforeAck   func(context.Context, events.Envelope) error
	fetchWait   time.Duration
	lagInterval time.Duration
	drain       time.Duration
	retryWait   time.Duration
}

// Option configures a Consumer.
type Option func(*options)

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics counts events, dead letters and lag into m.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithGate makes every fetch wait for gate: events are not taken while what they need
// (the relay, the database) is known to be down, so they keep their deliveries.
func WithGate(gate func(context.Context) error) Option { return func(o *options) { o.gate = gate } }

// WithBeforeAck runs fn after an event was handled and before it is acked; when fn
// returns an error the event is left unacked, as if the process died there. For tests.
func WithBeforeAck(fn func(context.Context, events.Envelope) error) Option {
	return func(o *options) { o.beforeAck = fn }
}

// WithFetchWait bounds how long one fetch waits for events (default 5 s).
func WithFetchWait(d time.Duration) Option { return func(o *options) { o.fetchWait = d } }

// WithLagInterval sets how often the consumer's lag is read (default 15 s).
func WithLagInterval(d time.Duration) Option { return func(o *options) { o.lagInterval = d } }

// WithDrain bounds how long events being handled may finish on shutdown (default 20 s).
func WithDrain(d time.Duration) Option { return func(o *options) { o.drain = d } }
