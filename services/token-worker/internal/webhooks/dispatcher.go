package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/uptrace/bun/dialect/pgdialect"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/webhook"
	"github.com/talentforge/auth/services/token-worker/internal/consumer"
)

// maxAnswer is how much of an endpoint's answer is read (and thrown away): enough to end
// a normal answer cleanly, too little for an endpoint to keep a worker busy.
const maxAnswer = 64 << 10

// userAgent is sent with every call.
const userAgent = "TalentForge-Webhooks/1"

// Config is the dispatcher's behaviour (the WORKER_WEBHOOK_* settings).
type Config struct {
	// Concurrency bounds the calls in flight in this process; EndpointConcurrency those
	// to one endpoint. Both are per process: N replicas may call one endpoint up to N ×
	// EndpointConcurrency times at once.
	Concurrency, EndpointConcurrency int
	// Timeout bounds one call, from connecting to the last byte read. A claimed delivery
	// is leased for twice that: a worker that dies mid-call holds it no longer.
	Timeout time.Duration
	// Schedule are the delays before the second, third... attempt; a delivery whose
	// len(Schedule)+1 attempts all failed is dead.
	Schedule []time.Duration
	// DisableAfter: a failure of an endpoint that has failed (with no success) for this
	// long disables it.
	DisableAfter time.Duration
	// PollInterval is how often due deliveries (and dead ones to dead-letter) are looked
	// for; deliveries this process fans out are claimed at once.
	PollInterval time.Duration
	// GaugeInterval is how often the pending gauge is read.
	GaugeInterval time.Duration
	// Drain bounds how long the calls in flight may finish at shutdown
	// (SHUTDOWN_TIMEOUT); a call still running then is cut, and its delivery is tried
	// again once its lease has passed.
	Drain time.Duration
	// AllowPrivate is WEBHOOK_ALLOW_PRIVATE_NETWORKS (webhook.Policy).
	AllowPrivate bool
}

// Lease is how long a claimed delivery is held: twice the call's timeout.
func (c Config) Lease() time.Duration { return 2 * c.Timeout }

// MaxAttempts is how many attempts a delivery gets.
func (c Config) MaxAttempts() int { return len(c.Schedule) + 1 }

// Dispatcher claims due deliveries and calls their endpoints.
type Dispatcher struct {
	db      *postgres.DB
	keys    *keyring.Keyring
	js      jetstream.JetStream
	streams *consumer.Streams
	ns      events.Namespace
	cfg     Config
	policy  webhook.Policy
	client  *http.Client
	m       *Metrics
	log     *zap.Logger

	wake     chan struct{}
	wakeDead chan struct{}

	mu       sync.Mutex
	inflight int
	busy     map[string]int // endpoint id -> calls in flight
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(d *Dispatcher) { d.log = l } }

// WithMetrics counts into m.
func WithMetrics(m *Metrics) Option { return func(d *Dispatcher) { d.m = m } }

// NewDispatcher returns the dispatcher. keys (EVENT_KEYS) open the endpoints' secrets
// and seal nothing else; js and streams publish dead letters to AUTH_DEADLETTER in
// namespace ns.
func NewDispatcher(db *postgres.DB, keys *keyring.Keyring, js jetstream.JetStream, streams *consumer.Streams, ns events.Namespace,
	cfg Config, opts ...Option) *Dispatcher {
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.EndpointConcurrency = min(max(cfg.EndpointConcurrency, 1), cfg.Concurrency)
	cfg.PollInterval = cmpOr(cfg.PollInterval, time.Second)
	cfg.GaugeInterval = cmpOr(cfg.GaugeInterval, 15*time.Second)
	cfg.Timeout = cmpOr(cfg.Timeout, 10*time.Second)
	cfg.Drain = cmpOr(cfg.Drain, 20*time.Second)
	policy := webhook.Policy{AllowPrivate: cfg.AllowPrivate}
	d := &Dispatcher{db: db, keys: keys, js: js, streams: streams, ns: ns, cfg: cfg, policy: policy,
		client: policy.Client(cfg.Timeout), log: zap.NewNop(),
		wake: make(chan struct{}, 1), wakeDead: make(chan struct{}, 1), busy: map[string]int{}}
	for _, o := range opts {
		o(d)
	}
	if d.m == nil {
		d.m = NewMetrics(nil)
	}
	return d
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Wake makes the dispatcher look for due deliveries now (Fanout calls it).
func (d *Dispatcher) Wake() { signal(d.wake) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx ends, then lets the calls in flight finish (within
// Config.Drain) and returns.
func (d *Dispatcher) Run(ctx context.Context) {
	var loops sync.WaitGroup
	loops.Go(func() { d.deadLetterLoop(ctx) })
	loops.Go(func() { d.gaugeLoop(ctx) })

	// Calls outlive ctx, so a shutdown does not cut a call that is about to end.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var calls sync.WaitGroup
	failures := 0
	for ctx.Err() == nil {
		free := d.free()
		if free > 0 {
			batch, err := d.claim(ctx, free)
			switch {
			case err != nil && ctx.Err() == nil:
				failures++
				if failures == 1 || failures%30 == 0 {
					d.log.Warn("cannot claim webhook deliveries; retrying", zap.Error(err), zap.Int("failures", failures))
				}
			case err == nil:
				failures = 0
			}
			for _, c := range batch {
				calls.Go(func() {
					defer d.done(c.EndpointID)
					d.deliver(cctx, c)
				})
			}
			if err == nil && len(batch) == free {
				continue // perhaps more are due: claim again once a call ends
			}
		}
		t := time.NewTimer(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-t.C:
		}
		t.Stop()
	}

	ended := make(chan struct{})
	go func() { calls.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(d.cfg.Drain):
		d.log.Warn("drain time over: cutting the webhook calls still in flight; their deliveries are tried again after their lease")
		cancel()
		<-ended
	}
	loops.Wait()
}

// free is how many more calls may start.
func (d *Dispatcher) free() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Concurrency - d.inflight
}

// done frees a call's slots and wakes the loop: a delivery may wait for them.
func (d *Dispatcher) done(endpoint string) {
	d.mu.Lock()
	d.inflight--
	if d.busy[endpoint]--; d.busy[endpoint] <= 0 {
		delete(d.busy, endpoint)
	}
	d.mu.Unlock()
	d.Wake()
}

// claimed is one claimed delivery and what its call needs of its endpoint.
type claimed struct {
	ID         string  `bun:"id"`
	EndpointID string  `bun:"endpoint_id"`
	EventID    string  `bun:"event_id"`
	EventType  string  `bun:"event_type"`
	Body       string  `bun:"body"`
	Attempts   int     `bun:"attempts"`
	URL        string  `bun:"url"`
	Secret     string  `bun:"secret_sealed"`
	Previous   *string `bun:"previous_secret_sealed"` // only while it still signs
}

// claim takes up to n due deliveries, at most EndpointConcurrency in flight per
// endpoint (those of this process counted), oldest due first, each endpoint's own
// oldest first: one statement that locks the rows it takes (SKIP LOCKED: replicas
// claiming at once take different ones), leases them for Config.Lease and counts the
// attempt.
func (d *Dispatcher) claim(ctx context.Context, n int) ([]claimed, error) {
	d.mu.Lock()
	ids, counts := make([]string, 0, len(d.busy)), make([]int, 0, len(d.busy))
	for id, c := range d.busy {
		ids, counts = append(ids, id), append(counts, c)
	}
	d.mu.Unlock()
	var rows []claimed
	err := d.db.NewRaw(`WITH due AS (
			SELECT x.id FROM webhook_endpoints e
			LEFT JOIN unnest(?::uuid[], ?::int[]) AS busy (endpoint_id, calls) ON busy.endpoint_id = e.id
			CROSS JOIN LATERAL (
				SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
				WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now()
					AND (d.locked_until IS NULL OR d.locked_until <= now())
				ORDER BY d.next_attempt_at
				LIMIT greatest(? - coalesce(busy.calls, 0), 0)
				FOR UPDATE SKIP LOCKED
			) x
			WHERE e.deleted_at IS NULL AND e.disabled_at IS NULL
			ORDER BY x.next_attempt_at
			LIMIT ?
		)
		UPDATE webhook_deliveries d SET attempts = d.attempts + 1, locked_until = now() + make_interval(secs => ?), updated_at = now()
		FROM due, webhook_endpoints e
		WHERE d.id = due.id AND e.id = d.endpoint_id
		RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.attempts, e.url, e.secret_sealed::text AS secret_sealed,
			CASE WHEN e.previous_expires_at > now() THEN e.previous_secret_sealed::text END AS previous_secret_sealed`,
		pgdialect.Array(ids), pgdialect.Array(counts), d.cfg.EndpointConcurrency, n, d.cfg.Lease().Seconds()).Scan(ctx, &rows)
	if err != nil && !postgres.IsNoRows(err) {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	d.mu.Lock()
	for _, c := range rows {
		d.inflight++
		d.busy[c.EndpointID]++
	}
	d.mu.Unlock()
	return rows, nil
}

// result is what one call came to.
type result struct {
	status int    // the answer's status; 0 without one
	err    string // "" on success: the short reason of a failure, never the answer's body
	// ours: the failure is the worker's (a secret it cannot open), not the endpoint's:
	// the delivery is retried but the endpoint's health is left alone.
	ours bool
	// cut: the call was cut by the shutdown; nothing is recorded, the lease passes.
	cut bool
}

// deliver makes one attempt of c and records its result.
func (d *Dispatcher) deliver(ctx context.Context, c claimed) {
	log := d.log.With(zap.String("delivery_id", c.ID), zap.String("endpoint_id", c.EndpointID), zap.String("webhook_id", c.EventID),
		zap.String("type", c.EventType), zap.Int("attempt", c.Attempts))
	start := time.Now()
	res := d.call(ctx, c)
	if res.cut {
		log.Warn("webhook call cut by the shutdown: tried again once its lease passes")
		return
	}
	outcome := OutcomeSucceeded
	if res.err != "" {
		outcome = OutcomeFailed
	}
	d.m.duration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())

	// The result is recorded even while shutting down: the call happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if res.err == "" {
		d.m.deliveries.WithLabelValues(OutcomeSucceeded).Inc()
		if err := d.succeeded(rctx, c, res.status); err != nil {
			log.Error("cannot record a delivered webhook: it is sent again after its lease", zap.Error(err))
		}
		log.Debug("webhook delivered", zap.Int("status", res.status))
		return
	}
	d.m.deliveries.WithLabelValues(OutcomeFailed).Inc()
	f, err := d.failed(rctx, c, res)
	if err != nil {
		log.Error("cannot record a failed webhook call: it is tried again after its lease", zap.Error(err), zap.String("reason", res.err))
		return
	}
	switch {
	case f.stale:
		log.Info("webhook call failed after its delivery was taken over, ended or cancelled", zap.String("reason", res.err))
	case f.dead:
		d.m.deliveries.WithLabelValues(OutcomeDead).Inc()
		log.Warn("webhook delivery given up after its last attempt: dead-lettered", zap.String("reason", res.err))
	default:
		log.Info("webhook call failed; trying again later", zap.String("reason", res.err), zap.Duration("in", f.retryIn))
	}
	if f.dead || f.disabled {
		signal(d.wakeDead)
	}
}

// call sends c's body to its endpoint, signed for this attempt.
func (d *Dispatcher) call(ctx context.Context, c claimed) result {
	u, err := d.policy.ParseURL(c.URL)
	if err != nil {
		return result{err: reasonPolicy}
	}
	secrets, err := d.secrets(c)
	if err != nil {
		d.log.Error("cannot open a webhook endpoint's signing secret", zap.String("endpoint_id", c.EndpointID), zap.Error(err))
		return result{err: "the signing secret cannot be opened (EVENT_KEYS)", ours: true}
	}
	body := []byte(c.Body)
	ts := time.Now()
	sig, err := webhook.Sign(secrets, c.EventID, ts, body)
	if err != nil {
		return result{err: "the signing secret is not valid", ours: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return result{err: reasonPolicy}
	}
	webhook.SetHeaders(req.Header, c.EventID, ts, sig)
	req.Header.Set("User-Agent", userAgent)
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return result{cut: true}
		}
		return result{err: reason(err, d.cfg.Timeout)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return result{status: code}
	case code >= 300 && code < 400:
		return result{status: code, err: fmt.Sprintf("HTTP %d (redirects are not followed)", code)}
	default:
		return result{status: code, err: fmt.Sprintf("HTTP %d", code)}
	}
}

// secrets opens the endpoint's current secret and, during a rotation, the previous one.
func (d *Dispatcher) secrets(c claimed) ([]string, error) {
	out := make([]string, 0, 2)
	for _, raw := range []*string{&c.Secret, c.Previous} {
		if raw == nil {
			continue
		}
		var s keyring.Sealed
		if err := json.Unmarshal([]byte(*raw), &s); err != nil {
			return nil, fmt.Errorf("decode the sealed secret: %w", err)
		}
		b, err := d.keys.Open(s, c.EndpointID)
		if err != nil {
			return nil, err
		}
		out = append(out, string(b))
	}
	return out, nil
}
