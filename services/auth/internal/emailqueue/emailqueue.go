// Package emailqueue runs the processor of accepted forgot-password and resend requests
// (account.Service.ProcessEmailRequest): the answer to those routes only stores the
// request, and this loop, in every auth replica, sends what it asks for afterwards.
//
// A request is handled at once by the replica that accepted it: the answer hands its id
// over with a non-blocking channel send (Wake). A poll every second claims the requests
// that are due, those of a replica that stopped right after answering (after
// store.EmailRequestTakeover) and those whose last attempt failed, so a request accepted
// is never lost, and with several replicas each one is handled once (the claim is FOR
// UPDATE SKIP LOCKED; the email and the request's deletion commit together).
package emailqueue

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/talentforge/auth/services/auth/internal/account"
)

// Handler processes, expires and counts requests: account.Service.
type Handler interface {
	ProcessEmailRequest(ctx context.Context, id string) (account.EmailRequest, account.EmailOutcome, bool, error)
	ExpireEmailRequests(ctx context.Context, maxAge time.Duration) (int, error)
	PendingEmailRequests(ctx context.Context) (int, time.Duration, error)
}

var _ Handler = (*account.Service)(nil)

// Processor is the loop; New builds it, Start runs it.
type Processor struct {
	wake chan string
	log  *zap.Logger
	o    options

	processed map[account.EmailKind]map[account.EmailOutcome]prometheus.Counter
	failures  prometheus.Counter
	expired   prometheus.Counter
	pending   prometheus.Gauge
	oldest    prometheus.Gauge
}

type options struct {
	poll      time.Duration
	batch     int
	queue     int
	maxAge    time.Duration
	houseKeep time.Duration
	drain     time.Duration
	reg       prometheus.Registerer
}

// Option tunes a Processor.
type Option func(*options)

// WithPollInterval sets how often the due requests are claimed (default 1 s).
func WithPollInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithMaxAge sets how old a request may grow before it is dropped unsent (default 24 h,
// the verification link's lifetime).
func WithMaxAge(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.maxAge = d
		}
	}
}

// WithMetrics registers auth_email_requests_total{kind,outcome},
// auth_email_request_failures_total, auth_email_requests_expired_total and the gauges
// auth_email_requests_pending and auth_email_requests_oldest_pending_age_seconds on reg.
func WithMetrics(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

var (
	kinds    = []account.EmailKind{account.EmailForgot, account.EmailResend}
	outcomes = []account.EmailOutcome{account.EmailSent, account.EmailNoAccount, account.EmailNotNeeded, account.EmailBudgetSpent}
)

// New builds a processor; Wake may be called before it runs (the wakes wait, up to 1024).
func New(log *zap.Logger, opts ...Option) *Processor {
	o := options{poll: time.Second, batch: 100, queue: 1024, maxAge: 24 * time.Hour, houseKeep: 15 * time.Second,
		drain: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = zap.NewNop()
	}
	processed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_email_requests_total",
		Help: "Forgot-password and resend requests processed, by kind and outcome (sent, no_account, not_needed, budget_spent).",
	}, []string{"kind", "outcome"})
	p := &Processor{
		wake: make(chan string, o.queue), log: log.Named("email_requests"), o: o,
		processed: map[account.EmailKind]map[account.EmailOutcome]prometheus.Counter{},
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auth_email_request_failures_total",
			Help: "Attempts to process an email request that failed (Redis or PostgreSQL); the request is retried with backoff.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "auth_email_requests_expired_total", Help: "Email requests dropped unsent after the maximum age.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "auth_email_requests_pending", Help: "Email requests accepted and not yet processed, as last counted.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "auth_email_requests_oldest_pending_age_seconds",
			Help: "Age of the oldest email request not yet processed, as last counted (0: none).",
		}),
	}
	if o.reg != nil {
		o.reg.MustRegister(processed, p.failures, p.expired, p.pending, p.oldest)
	}
	for _, k := range kinds {
		p.processed[k] = map[account.EmailOutcome]prometheus.Counter{}
		for _, out := range outcomes {
			p.processed[k][out] = processed.WithLabelValues(string(k), string(out))
		}
	}
	return p
}

// Wake hands this replica's processor a request just stored; it never blocks: with the
// queue full the request waits for the poll.
func (p *Processor) Wake(id string) {
	select {
	case p.wake <- id:
	default:
	}
}

// Start runs Run in the background until ctx ends or stop is called; stop waits for the
// request in flight and the wakes already queued (for up to 5 s), so call it before
// closing PostgreSQL and Redis.
func (p *Processor) Start(ctx context.Context, h Handler) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx, h) }()
	return func() error { cancel(); <-done; return nil }
}

// Run processes until ctx ends: each woken request at once, the due ones every poll
// interval, and every 15 s the expired ones are dropped and the waiting ones counted.
func (p *Processor) Run(ctx context.Context, h Handler) {
	tick := time.NewTicker(p.o.poll)
	defer tick.Stop()
	var kept time.Time
	for {
		select {
		case <-ctx.Done():
			p.drain(ctx, h)
			return
		case id := <-p.wake:
			p.one(ctx, h, id)
		case <-tick.C:
			// Expired requests go first, so the first round of a replica starting with
			// requests older than the maximum age waiting never sends them.
			if time.Since(kept) >= p.o.houseKeep {
				kept = time.Now()
				p.HouseKeep(ctx, h)
			}
			p.ProcessDue(ctx, h)
		}
	}
}

// ProcessDue claims and processes due requests until none is left (at most one batch),
// and returns how many it processed.
func (p *Processor) ProcessDue(ctx context.Context, h Handler) int {
	n := 0
	for n < p.o.batch && ctx.Err() == nil {
		if !p.one(ctx, h, "") {
			break
		}
		n++
	}
	return n
}

// one processes the request id (id empty: the one due the longest); it reports whether
// it claimed one that it could process.
func (p *Processor) one(ctx context.Context, h Handler, id string) bool {
	r, outcome, claimed, err := h.ProcessEmailRequest(ctx, id)
	if err != nil {
		if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
			p.failures.Inc()
			fields := []zap.Field{zap.Error(err)}
			if claimed {
				fields = append(fields, zap.String("request_id", r.RequestID), zap.String("kind", string(r.Kind)),
					zap.Int("attempts", r.Attempts+1), zap.String("ip", r.IP), zap.String("user_agent", r.UserAgent))
			}
			p.log.Warn("email request not processed; retried later", fields...)
		}
		return false
	}
	if !claimed {
		return false
	}
	if c, ok := p.processed[r.Kind][outcome]; ok {
		c.Inc()
	}
	p.log.Debug("email request processed", zap.String("request_id", r.RequestID), zap.String("kind", string(r.Kind)),
		zap.String("outcome", string(outcome)), zap.Duration("waited", time.Since(r.CreatedAt)))
	return true
}

// drain processes the wakes already queued when the loop stops, so a replica shutting
// down leaves no request it accepted to the takeover; what it cannot finish in time is.
func (p *Processor) drain(ctx context.Context, h Handler) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.o.drain)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case id := <-p.wake:
			p.one(ctx, h, id)
		default:
			return
		}
	}
}

// HouseKeep drops the requests older than the maximum age (auth_email_requests_expired_total)
// and counts the ones waiting (the gauges auth_email_requests_pending and
// auth_email_requests_oldest_pending_age_seconds); Run calls it every 15 s.
func (p *Processor) HouseKeep(ctx context.Context, h Handler) {
	if n, err := h.ExpireEmailRequests(ctx, p.o.maxAge); err != nil {
		if ctx.Err() == nil {
			p.log.Warn("drop expired email requests", zap.Error(err))
		}
	} else if n > 0 {
		p.expired.Add(float64(n))
		p.log.Warn("dropped email requests older than the maximum age, unsent", zap.Int("requests", n),
			zap.Duration("max_age", p.o.maxAge))
	}
	n, oldest, err := h.PendingEmailRequests(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("count email requests", zap.Error(err))
		}
		return
	}
	p.pending.Set(float64(n))
	p.oldest.Set(oldest.Seconds())
}
