// Package consumer runs a durable JetStream pull consumer on the auth events stream:
// it creates the consumer idempotently, fetches as many events as it has free workers,
// keeps each in progress while it is handled, and acks, retries with backoff or
// dead-letters it according to the handler's error (see package retry).
package consumer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/natsx"
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

// Streams sets up the events stream and the dead-letter stream once per process, for
// all its consumers (concurrent stream updates and consumer creations race in the
// server).
type Streams struct {
	js   jetstream.JetStream
	ns   events.Namespace
	mu   sync.Mutex
	done bool
}

// NewStreams returns the set-up of the streams of namespace ns (NATS_NAMESPACE) on js.
func NewStreams(js jetstream.JetStream, ns events.Namespace) *Streams {
	return &Streams{js: js, ns: ns}
}

// Ensure creates both streams or brings them to their configuration, unless done already.
func (s *Streams) Ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	if _, err := s.ns.EnsureStream(ctx, s.js); err != nil {
		return err
	}
	if err := EnsureDeadLetterStream(ctx, s.js, s.ns); err != nil {
		return err
	}
	s.done = true
	return nil
}

// reset makes the next Ensure set the streams up again (they went missing).
func (s *Streams) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = false
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

// process handles one delivery and answers the server.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		c.o.log.Error("message without metadata: terminated", zap.Error(err))
		_ = msg.Term()
		return
	}
	delivery := int(meta.NumDelivered)
	ev, err := decode(msg, c.streams.ns)
	ctx, span := c.startSpan(ctx, msg, ev, delivery)
	defer span.End()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "undecodable event")
		// An event that cannot be read is dead-lettered under its subject's type, not
		// its envelope's: the subject is what the stream vouches for.
		typ, _ := c.streams.ns.Type(msg.Subject())
		c.deadLetter(ctx, msg, meta, events.Envelope{Type: typ}, err)
		return
	}
	log := logging.WithTrace(ctx, c.o.log.With(zap.String("event_id", ev.ID), zap.String("type", ev.Type), zap.Int("delivery", delivery)))

	outcome, err := c.handleInProgress(ctx, msg, ev)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "handler failed")
	} else if span.IsRecording() && outcome != "" {
		span.SetAttributes(attribute.String("token_worker.outcome", outcome))
	}
	if err == nil {
		if c.o.beforeAck != nil {
			if herr := c.o.beforeAck(ctx, ev); herr != nil {
				log.Warn("left unacked by the before-ack hook", zap.Error(herr))
				return
			}
		}
		if aerr := msg.Ack(); aerr != nil {
			// The server delivers it again; the handler is idempotent.
			log.Warn("ack failed", zap.Error(aerr))
		}
		if outcome == "" {
			outcome = "ok"
		}
		c.o.metrics.consumed.WithLabelValues(c.cfg.Label, ev.Type, outcome).Inc()
		log.Debug("event handled", zap.String("outcome", outcome))
		return
	}

	permanent := errors.Is(err, retry.ErrPermanent)
	unavailable := errors.Is(err, retry.ErrUnavailable)
	switch {
	case permanent,
		!unavailable && delivery >= c.cfg.MaxDeliver,
		delivery >= c.serverMaxDeliver():
		c.deadLetter(ctx, msg, meta, ev, err)
	default:
		delay := retry.Backoff(delivery, c.cfg.BackoffMin, c.cfg.BackoffMax)
		result := "retry"
		if unavailable {
			result = "unavailable"
		}
		c.o.metrics.consumed.WithLabelValues(c.cfg.Label, ev.Type, result).Inc()
		log.Warn("event failed; retrying", zap.Error(err), zap.Duration("in", delay), zap.Bool("unavailable", unavailable))
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak failed: the server redelivers after the ack wait", zap.Error(nerr))
		}
	}
}

// startSpan starts the consumer span of one delivery: a child of the trace context in
// the message's headers (the relay's publish span), or, for a message published
// without one, of the envelope's own (the request that wrote the event). The handler
// runs under it, so its SMTP and PostgreSQL spans join the trace.
func (c *Consumer) startSpan(ctx context.Context, msg jetstream.Msg, ev events.Envelope, delivery int) (context.Context, trace.Span) {
	ctx = natsx.ExtractTrace(ctx, msg.Headers())
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = ev.TraceContext(ctx)
	}
	typ, _ := c.streams.ns.Type(msg.Subject()) // span names stay the same in every namespace
	ctx, span := c.tracer.Start(ctx, "process "+typ, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(msg.Subject()),
			semconv.MessagingConsumerGroupName(c.cfg.Durable),
			semconv.MessagingMessageID(ev.ID),
			attribute.Int("messaging.nats.delivery_count", delivery),
		)
	}
	return ctx, span
}

// handleInProgress runs the handler and tells the server it is still at work meanwhile,
// so a slow relay does not get the event delivered twice at once.
func (c *Consumer) handleInProgress(ctx context.Context, msg jetstream.Msg, ev events.Envelope) (outcome string, err error) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(max(c.cfg.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return c.handle(ctx, ev)
}

// decode reads the envelope; an event that cannot be read is dead-lettered at once.
func decode(msg jetstream.Msg, ns events.Namespace) (events.Envelope, error) {
	var ev events.Envelope
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		return ev, retry.Permanent(fmt.Errorf("decode envelope: %w", err))
	}
	if _, err := uuid.Parse(ev.ID); err != nil {
		return ev, retry.Permanent(fmt.Errorf("envelope id %q is not a uuid", ev.ID))
	}
	if typ, ok := ns.Type(msg.Subject()); !ok || ev.Type != typ {
		return ev, retry.Permanent(fmt.Errorf("envelope type %q differs from its subject %q", ev.Type, msg.Subject()))
	}
	if ev.OccurredAt.IsZero() {
		if meta, err := msg.Metadata(); err == nil {
			ev.OccurredAt = meta.Timestamp
		}
	}
	return ev, nil
}

// reportLag publishes how far the consumer is behind until ctx ends.
func (c *Consumer) reportLag(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(c.o.lagInterval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := cons.Info(ictx)
		cancel()
		if err == nil {
			c.o.metrics.pending.WithLabelValues(c.cfg.Label).Set(float64(info.NumPending))
			c.o.metrics.ackPending.WithLabelValues(c.cfg.Label).Set(float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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

// Metrics are the consumers' counters, shared by every consumer of the process.
type Metrics struct {
	consumed    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	pending     *prometheus.GaugeVec
	ackPending  *prometheus.GaugeVec
	ready       *prometheus.GaugeVec
}

// NewMetrics builds the metrics and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_worker_events_consumed_total",
			Help: "Event deliveries handled, by consumer, event type and result (sent, duplicate, capped, recorded, retry, unavailable, dead_letter...).",
		}, []string{"consumer", "type", "result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_worker_dead_letters_total", Help: "Events moved to the dead-letter stream, by consumer and event type.",
		}, []string{"consumer", "type"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_worker_consumer_pending", Help: "Consumer lag: events on the stream not yet delivered to the consumer.",
		}, []string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_worker_consumer_ack_pending", Help: "Events delivered to the consumer and not yet acknowledged.",
		}, []string{"consumer"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "token_worker_consumer_ready", Help: "1 while the consumer is set up on the stream and its fetches work, else 0 (see /readyz).",
		}, []string{"consumer"}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.deadLetters, m.pending, m.ackPending, m.ready)
	}
	return m
}

// natsHeader builds the dead letter's headers.
func natsHeader(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
