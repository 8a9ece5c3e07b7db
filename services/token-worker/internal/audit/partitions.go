package audit

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/postgres"
)

// Partitions creates audit_log's monthly partitions ahead of time: the current month
// and the next few, at start and every day.
type Partitions struct {
	db       *postgres.DB
	ahead    int
	interval time.Duration
	now      func() time.Time
	log      *zap.Logger
}

// PartitionOption configures Partitions.
type PartitionOption func(*Partitions)

// WithMonthsAhead sets how many months past the current one get a partition (default 2).
func WithMonthsAhead(n int) PartitionOption { return func(p *Partitions) { p.ahead = n } }

// WithInterval sets how often the partitions are checked (default 24 h).
func WithInterval(d time.Duration) PartitionOption { return func(p *Partitions) { p.interval = d } }

// WithClock sets the clock that says which month it is.
func WithClock(now func() time.Time) PartitionOption { return func(p *Partitions) { p.now = now } }

// WithPartitionLogger sets the logger.
func WithPartitionLogger(l *zap.Logger) PartitionOption { return func(p *Partitions) { p.log = l } }

// NewPartitions returns the maintainer.
func NewPartitions(db *postgres.DB, opts ...PartitionOption) *Partitions {
	p := &Partitions{db: db, ahead: 2, interval: 24 * time.Hour, now: time.Now, log: zap.NewNop()}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// PartitionName is the partition of the month holding t: audit_log_yYYYYmMM.
func PartitionName(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("audit_log_y%04dm%02d", t.Year(), int(t.Month()))
}

// Ensure creates the partitions of the current month and the next ones. Entries of a
// month that went to the DEFAULT partition before its own existed are moved into it.
func (p *Partitions) Ensure(ctx context.Context) ([]string, error) {
	now := p.now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	var created []string
	for i := 0; i <= p.ahead; i++ {
		from := first.AddDate(0, i, 0)
		ok, err := p.ensure(ctx, from)
		if err != nil {
			return created, err
		}
		if ok {
			created = append(created, PartitionName(from))
		}
	}
	return created, nil
}

const boundFormat = "2006-01-02 15:04:05-07"

func (p *Partitions) ensure(ctx context.Context, from time.Time) (bool, error) {
	name := PartitionName(from)
	to := from.AddDate(0, 1, 0)
	var exists bool
	if err := p.db.QueryRowContext(ctx, "SELECT to_regclass(?) IS NOT NULL", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up partition %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("create partition %s: %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	// name, from and to come from the clock, never from input.
	lo, hi := from.Format(boundFormat), to.Format(boundFormat)
	for _, q := range []string{
		// One worker at a time; a second one finds the partition made.
		"SELECT pg_advisory_xact_lock(hashtext('audit_log_partitions'))",
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (LIKE audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)", name),
		// The attach takes this lock anyway; taken before the move, no entry of the month
		// can reach DEFAULT between the move and the attach (the consumer's inserts wait,
		// then land in the new partition). Without it a steady flow of entries failed the
		// attach on every retry.
		"LOCK TABLE audit_log_default IN ACCESS EXCLUSIVE MODE",
		// Rows of this month that the DEFAULT partition caught would block the attach.
		fmt.Sprintf(`WITH moved AS (DELETE FROM audit_log_default WHERE occurred_at >= '%s' AND occurred_at < '%s' RETURNING *)
			INSERT INTO %s SELECT * FROM moved`, lo, hi, name),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return false, fmt.Errorf("create partition %s: %w", name, err)
		}
	}
	var attached bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits
		WHERE inhrelid = ?::regclass AND inhparent = 'audit_log'::regclass)`, name).Scan(&attached); err != nil {
		return false, fmt.Errorf("create partition %s: %w", name, err)
	}
	if !attached {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE audit_log ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')", name, lo, hi)); err != nil {
			return false, fmt.Errorf("attach partition %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("create partition %s: %w", name, err)
	}
	return !attached, nil
}

// Run ensures the partitions now and every interval until ctx ends; a failure is
// retried within a minute (the DEFAULT partition holds entries meanwhile).
func (p *Partitions) Run(ctx context.Context) {
	for {
		wait := p.interval
		created, err := p.Ensure(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Warn("audit partitions not ensured; retrying", zap.Error(err))
			wait = min(wait, time.Minute)
		case len(created) > 0:
			p.log.Info("audit partitions created", zap.Strings("partitions", created))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
