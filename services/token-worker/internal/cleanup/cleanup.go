// Package cleanup deletes what nobody needs any more: verification and reset tokens that
// expired or were used, outbox rows published longer ago than the retention, email
// ledger rows older than any redelivery can be, and webhook deliveries finished longer
// ago than their retention.
package cleanup

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/postgres"
)

// Result counts the rows one pass deleted, by table.
type Result map[string]int64

type options struct {
	outboxRetention  time.Duration
	sentRetention    time.Duration
	webhookRetention time.Duration
	interval         time.Duration
	batch            int
	log              *zap.Logger
	deleted          *prometheus.CounterVec
}

// Option configures a Cleaner.
type Option func(*options)

// WithOutboxRetention keeps published outbox rows this long (default 7 days).
func WithOutboxRetention(d time.Duration) Option { return func(o *options) { o.outboxRetention = d } }

// WithSentEmailsRetention keeps email ledger rows this long (default 30 days); it must
// outlast the events stream's MaxAge, or a late redelivery could send twice.
func WithSentEmailsRetention(d time.Duration) Option {
	return func(o *options) { o.sentRetention = d }
}

// WithWebhookRetention keeps finished webhook deliveries (succeeded, dead, cancelled) this
// long after they finished (default 30 days); a dead one is kept until it is in
// AUTH_DEADLETTER whatever its age.
func WithWebhookRetention(d time.Duration) Option { return func(o *options) { o.webhookRetention = d } }

// WithInterval sets the time between passes (default 1 h).
func WithInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithBatch bounds the rows one DELETE removes, so no pass holds long locks (default 1000).
func WithBatch(n int) Option { return func(o *options) { o.batch = n } }

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics registers token_worker_cleanup_deleted_total on reg.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) {
		o.deleted = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_worker_cleanup_deleted_total", Help: "Rows the clean-up deleted, by table.",
		}, []string{"table"})
		reg.MustRegister(o.deleted)
	}
}

// Cleaner runs the clean-up.
type Cleaner struct {
	db *postgres.DB
	o  options
}

// New returns a cleaner.
func New(db *postgres.DB, opts ...Option) *Cleaner {
	o := options{outboxRetention: 7 * 24 * time.Hour, sentRetention: 30 * 24 * time.Hour, webhookRetention: 30 * 24 * time.Hour, interval: time.Hour, batch: 1000, log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	return &Cleaner{db: db, o: o}
}

// RunOnce deletes everything due, in batches.
func (c *Cleaner) RunOnce(ctx context.Context) (Result, error) {
	res := Result{}
	jobs := []struct {
		table, where string
		args         []any
	}{
		{"one_time_tokens", "expires_at < now() OR used_at IS NOT NULL", nil},
		{"outbox", "published_at IS NOT NULL AND published_at < now() - make_interval(secs => ?)", []any{c.o.outboxRetention.Seconds()}},
		{"sent_emails", "created_at < now() - make_interval(secs => ?)", []any{c.o.sentRetention.Seconds()}},
		{"webhook_deliveries", "finished_at < now() - make_interval(secs => ?) AND (status <> 'dead' OR dead_lettered_at IS NOT NULL)",
			[]any{c.o.webhookRetention.Seconds()}},
	}
	for _, j := range jobs {
		// The table names and conditions are constants of this file.
		q := fmt.Sprintf("DELETE FROM %[1]s WHERE ctid IN (SELECT ctid FROM %[1]s WHERE %[2]s LIMIT %[3]d)", j.table, j.where, c.o.batch)
		for {
			r, err := c.db.ExecContext(ctx, q, j.args...)
			if err != nil {
				return res, fmt.Errorf("clean up %s: %w", j.table, err)
			}
			n, _ := r.RowsAffected()
			res[j.table] += n
			if c.o.deleted != nil {
				c.o.deleted.WithLabelValues(j.table).Add(float64(n))
			}
			if n < int64(c.o.batch) {
				break
			}
		}
	}
	return res, nil
}

// Run cleans up now and every interval until ctx ends.
func (c *Cleaner) Run(ctx context.Context) {
	for {
		res, err := c.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			c.o.log.Warn("clean-up failed; retrying at the next pass", zap.Error(err))
		case err == nil:
			c.o.log.Info("clean-up done", zap.Int64("tokens", res["one_time_tokens"]), zap.Int64("outbox", res["outbox"]),
				zap.Int64("sent_emails", res["sent_emails"]), zap.Int64("webhook_deliveries", res["webhook_deliveries"]))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.o.interval):
		}
	}
}
