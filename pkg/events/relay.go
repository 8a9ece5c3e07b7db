package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/metrics"
	"github.com/talentforge/auth/pkg/natsx"
	"github.com/talentforge/auth/pkg/postgres"
)

// Relay publishes the transactional outbox to JetStream. Each row's payload is an
// Envelope; it is published unchanged on the subject Type with Nats-Msg-Id = ID, then
// marked sent and its payload cleared. Any number of relays (one per replica) may run
// against one database: rows are claimed with FOR UPDATE SKIP LOCKED, so two relays
// never publish one row at the same time, and a relay that dies mid-batch loses its
// locks with its connection, so no row is stuck. A row published whose commit then
// fails is published again and the stream drops it as a duplicate (DuplicateWindow).
type Relay struct {
	db  *postgres.DB
	js  jetstream.JetStream
	log *zap.Logger
	o   relayOptions

	tracer    trace.Tracer
	published prometheus.Counter
	failures  prometheus.Counter
	pending   prometheus.Gauge
	oldest    prometheus.Gauge

	health relayHealth // see Healthy
}

type relayOptions struct {
	batch          int
	poll           time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	publishTimeout time.Duration
	batchTimeout   time.Duration
	countEvery     time.Duration
	reg            prometheus.Registerer
	ns             Namespace
}

// RelayOption tunes a Relay.
type RelayOption func(*relayOptions)

// WithBatchSize sets how many rows one batch claims (default 100).
func WithBatchSize(n int) RelayOption {
	return func(o *relayOptions) {
		if n > 0 {
			o.batch = n
		}
	}
}

// WithPollInterval sets how long Run sleeps when the outbox is empty (default 200 ms).
func WithPollInterval(d time.Duration) RelayOption {
	return func(o *relayOptions) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithBackoff sets the first and the longest wait after a failure (defaults 500 ms and
// 30 s), for Run while NATS fails and for each row that could not be published. Each
// wait doubles the last one and is jittered to between half and all of it.
func WithBackoff(base, max time.Duration) RelayOption {
	return func(o *relayOptions) {
		if base > 0 && max >= base {
			o.backoffBase, o.backoffMax = base, max
		}
	}
}

// WithNamespace publishes into the stream and subjects of ns (NATS_NAMESPACE).
func WithNamespace(ns Namespace) RelayOption { return func(o *relayOptions) { o.ns = ns } }

// WithPublishTimeout bounds the wait for one PubAck (default 5 s).
func WithPublishTimeout(d time.Duration) RelayOption {
	return func(o *relayOptions) {
		if d > 0 {
			o.publishTimeout = d
		}
	}
}

// WithMetrics registers outbox_published_total, outbox_publish_failures_total and the
// outbox_pending and outbox_oldest_pending_age_seconds gauges on reg (a *metrics.Registry works). Relays of one process may
// share a registry: the second one reuses the first one's collectors.
func WithMetrics(reg prometheus.Registerer) RelayOption {
	return func(o *relayOptions) { o.reg = reg }
}

// NewRelay builds a relay over the outbox table of db; Run or PublishPending drive it.
func NewRelay(db *postgres.DB, js jetstream.JetStream, log *zap.Logger, opts ...RelayOption) *Relay {
	o := relayOptions{
		batch:          100,
		poll:           200 * time.Millisecond,
		backoffBase:    500 * time.Millisecond,
		backoffMax:     30 * time.Second,
		publishTimeout: 5 * time.Second,
		countEvery:     15 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	// A batch stops publishing after this long; its transaction lives a little longer.
	o.batchTimeout = 30*time.Second + o.publishTimeout
	if log == nil {
		log = zap.NewNop()
	}
	r := &Relay{
		db: db, js: js, log: log.Named("outbox"), o: o,
		tracer: otel.Tracer("github.com/talentforge/auth/pkg/events"),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_published_total", Help: "Outbox events published to JetStream (a duplicate ack counts).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_publish_failures_total", Help: "Outbox publish attempts that failed; the row is retried with backoff.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_pending", Help: "Outbox events not yet published, as last counted.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_oldest_pending_age_seconds", Help: "Age of the oldest outbox event not yet published, as last counted (0: none).",
		}),
	}
	if o.reg != nil {
		r.published = metrics.Register(o.reg, r.published)
		r.failures = metrics.Register(o.reg, r.failures)
		r.pending = metrics.Register(o.reg, r.pending)
		r.oldest = metrics.Register(o.reg, r.oldest)
	}
	return r
}

// Start runs Run in the background until ctx ends or stop is called; stop waits for
// the batch in flight, so call it before closing NATS and PostgreSQL.
func (r *Relay) Start(ctx context.Context) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	return func() error { cancel(); <-done; return nil }
}

// Run publishes until ctx ends: a batch right after a batch that published something,
// the poll interval after an empty one, and a growing jittered backoff (up to 30 s)
// while NATS or PostgreSQL fails. It first makes sure the stream exists (EnsureStream),
// retrying until it does: NATS may be down when the service starts, and the outbox
// keeps every event meanwhile. It makes sure again after any failed batch.
func (r *Relay) Run(ctx context.Context) {
	var (
		failures    int
		streamReady bool
		counted     time.Time
	)
	for ctx.Err() == nil {
		wait := r.o.poll
		if !streamReady {
			ectx, cancel := context.WithTimeout(ctx, r.o.publishTimeout)
			_, err := r.o.ns.EnsureStream(ectx, r.js)
			cancel()
			if err != nil {
				failures++
				r.health.record(ctx, err)
				wait = r.backoff(failures)
				r.log.Warn("cannot ensure the event stream; retrying", zap.Error(err),
					zap.Int("failures", failures), zap.Duration("retry_in", wait))
				sleep(ctx, wait)
				continue
			}
			streamReady = true
		}
		n, err := r.PublishPending(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = r.backoff(failures)
			// The stream may be gone (a NATS that lost its store, a deleted stream):
			// make sure of it again before the next batch; cheap when it is there.
			streamReady = false
			r.log.Warn("outbox relay failed; retrying", zap.Error(err), zap.Int("published", n),
				zap.Int("failures", failures), zap.Duration("retry_in", wait))
		case n > 0:
			failures, wait = 0, 0
		default:
			failures = 0
		}
		if time.Since(counted) >= r.o.countEvery && ctx.Err() == nil {
			counted = time.Now()
			if _, err := r.Pending(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("count pending outbox rows", zap.Error(err))
			}
		}
		sleep(ctx, wait)
	}
}

// backoff is the wait before retry number n (n ≥ 1): base·2^(n-1) capped at max, then
// jittered to [½, 1] of that.
func (r *Relay) backoff(n int) time.Duration {
	d := r.o.backoffMax
	if n < 32 {
		if b := r.o.backoffBase << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Pending counts the rows not yet published and sets the outbox_pending gauge, and
// outbox_oldest_pending_age_seconds to the age of the oldest of them (0 when none): a
// backlog that only grows older is a stuck relay even while it stays small.
func (r *Relay) Pending(ctx context.Context) (int64, error) {
	var (
		n   int64
		age float64
	)
	if err := r.db.NewRaw(`SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
		FROM outbox WHERE published_at IS NULL`).Scan(ctx, &n, &age); err != nil {
		return 0, fmt.Errorf("outbox: count pending: %w", err)
	}
	r.pending.Set(float64(n))
	r.oldest.Set(max(age, 0))
	return n, nil
}

type outboxRow struct {
	ID      uuid.UUID       `bun:"id"`
	Subject string          `bun:"subject"`
	Payload json.RawMessage `bun:"payload"`
}

// PublishPending publishes one batch of due rows and returns how many it published.
// In one transaction it claims up to the batch size of rows (oldest first, skipping
// rows another relay holds), publishes each and waits for its PubAck (a duplicate ack
// counts as published), marks the published rows sent with their payload cleared, and
// gives each row that failed one more attempt and a later next_attempt_at.
//
// A row the stream rejects (an API error) fails alone. Any other error (NATS down, a
// PubAck timeout, no stream) stops the batch: the rest of it fails too, unpublished,
// and the error is returned, as it is when every row of the batch failed.
func (r *Relay) PublishPending(ctx context.Context) (int, error) {
	// The transaction must outlive a cancelled ctx, so the rows already published are
	// still marked sent; publishing itself stops with ctx.
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.batchTimeout+10*time.Second)
	defer cancel()
	tx, err := r.db.BeginTx(txCtx, nil)
	if err != nil {
		return 0, fmt.Errorf("outbox: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var rows []outboxRow
	if err := tx.NewRaw(`SELECT id, subject, payload FROM outbox
		WHERE published_at IS NULL AND next_attempt_at <= now()
		ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, r.o.batch).Scan(txCtx, &rows); err != nil {
		return 0, fmt.Errorf("outbox: claim: %w", err)
	}
	if len(rows) == 0 {
		// Nothing to publish, and JetStream answered the last attempt (a failure makes
		// Run ensure the stream before the next batch).
		r.health.record(ctx, nil)
		return 0, nil
	}

	pubCtx, cancelPub := context.WithTimeout(ctx, r.o.batchTimeout)
	defer cancelPub()
	var (
		sent, failed []uuid.UUID
		stop         error // the error that stopped the batch
		lastErr      error
	)
	for _, row := range rows {
		if stop != nil {
			failed = append(failed, row.ID)
			continue
		}
		err := r.publish(pubCtx, row)
		if err == nil {
			sent = append(sent, row.ID)
			continue
		}
		failed = append(failed, row.ID)
		r.failures.Inc()
		lastErr = fmt.Errorf("publish %s %s: %w", row.Subject, row.ID, err)
		var api *jetstream.APIError
		if errors.As(err, &api) {
			r.log.Warn("the stream rejected an event; it is retried with backoff",
				zap.String("id", row.ID.String()), zap.String("subject", row.Subject), zap.Error(err))
			continue
		}
		stop = lastErr
	}
	r.health.record(ctx, stop) // nil: JetStream answered every row (a PubAck or a rejection)

	if len(sent) > 0 {
		if _, err := tx.NewRaw(`UPDATE outbox SET published_at = now(), payload = '{}'::jsonb WHERE id IN (?)`,
			bun.List(sent)).Exec(txCtx); err != nil {
			return 0, fmt.Errorf("outbox: mark sent: %w", err)
		}
	}
	if ctx.Err() != nil {
		failed = nil // shutting down: the rows not published were not really tried
	}
	if len(failed) > 0 {
		// attempts on the right-hand side is the value before this update.
		if _, err := tx.NewRaw(`UPDATE outbox SET attempts = attempts + 1,
			next_attempt_at = clock_timestamp() + make_interval(secs => least(?::float8, ?::float8 * power(2, least(attempts, 30)))
				* (0.5 + random() * 0.5))
			WHERE id IN (?)`, r.o.backoffMax.Seconds(), r.o.backoffBase.Seconds(), bun.List(failed)).Exec(txCtx); err != nil {
			return 0, fmt.Errorf("outbox: reschedule: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("outbox: commit: %w", err)
	}
	r.published.Add(float64(len(sent)))
	switch {
	case stop != nil:
		return len(sent), stop
	case len(sent) == 0:
		return 0, lastErr
	}
	return len(sent), nil
}

// publish sends one row and waits for its PubAck. Its producer span is a child of the
// trace context the envelope was written with (the request's), and goes with the
// message in its traceparent header, so the consumers' spans join that trace.
func (r *Relay) publish(ctx context.Context, row outboxRow) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.publishTimeout)
	defer cancel()
	ctx, span := r.tracer.Start(envelopeTraceContext(ctx, row.Payload), "send "+row.Subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(row.Subject),
			semconv.MessagingMessageID(row.ID.String()),
		))
	defer span.End()
	msg := &nats.Msg{Subject: r.o.ns.Subject(row.Subject), Data: row.Payload, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, row.ID.String())
	natsx.InjectTrace(ctx, msg)
	ack, err := r.js.PublishMsg(ctx, msg)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		return err
	}
	if ack.Duplicate {
		r.log.Debug("the stream already had the event", zap.String("id", row.ID.String()))
	}
	return nil
}
