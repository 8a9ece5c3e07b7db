// Package sentmail is the store of sent_emails, the ledger that makes sending
// idempotent: a row is claimed ('sending') before the SMTP conversation and marked 'sent'
// after it, so a redelivered event finds 'sent' and sends nothing.
package sentmail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/token-worker/internal/retry"
)

// Result is what a claim found.
type Result int

// The outcomes of Claim.
const (
	// Claimed: the caller holds the email and sends it.
	Claimed Result = iota
	// Done: the email was sent (or suppressed) already; send nothing.
	Done
	// Capped: the recipient reached the per-address cap; the email is recorded as
	// suppressed and is not sent.
	Capped
	// Busy: another attempt holds the email right now.
	Busy
)

func (r Result) String() string {
	return [...]string{"claimed", "done", "capped", "busy"}[r]
}

// Claim is one attempt at sending an email.
type Claim struct {
	EventID   string
	Kind      string
	Recipient string
	// Attempt identifies this attempt; another attempt's claim younger than the lease
	// makes this one Busy.
	Attempt string
	// Cap is the most emails one recipient is sent per hour; 0 means no cap.
	Cap int
}

// Ledger is the sent_emails table.
type Ledger struct {
	db    *postgres.DB
	lease time.Duration
}

// New returns the ledger. lease is how long a claim keeps other attempts away: longer
// than one SMTP conversation, about the consumer's ack wait.
func New(db *postgres.DB, lease time.Duration) *Ledger { return &Ledger{db: db, lease: lease} }

// Normalize is the form recipients are counted under.
func Normalize(addr string) string { return strings.ToLower(strings.TrimSpace(addr)) }

// Claim takes the email of c.EventID for this attempt, or says why not. The per-address
// cap is checked under a lock on the recipient, so parallel workers cannot both slip
// under it.
func (l *Ledger) Claim(ctx context.Context, c Claim) (Result, error) {
	eventID, err := uuid.Parse(c.EventID)
	if err != nil {
		return 0, retry.Permanent(fmt.Errorf("event id %q is not a uuid", c.EventID))
	}
	attempt, err := uuid.Parse(c.Attempt)
	if err != nil {
		return 0, fmt.Errorf("attempt id %q is not a uuid", c.Attempt)
	}
	rcpt := Normalize(c.Recipient)
	var res Result
	err = l.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sent_emails:' || ?, 0))`, rcpt); err != nil {
			return fmt.Errorf("lock recipient: %w", err)
		}
		var row struct {
			State     string
			ClaimedBy uuid.NullUUID
			Fresh     bool
		}
		err := tx.NewRaw(`SELECT state, claimed_by, updated_at > now() - make_interval(secs => ?) AS fresh
			FROM sent_emails WHERE event_id = ? FOR UPDATE`, l.lease.Seconds(), eventID).Scan(ctx, &row)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return l.insert(ctx, tx, eventID, attempt, c, rcpt, &res)
		case err != nil:
			return fmt.Errorf("read sent email: %w", err)
		case row.State != "sending":
			res = Done
			return nil
		case row.ClaimedBy.Valid && row.ClaimedBy.UUID != attempt && row.Fresh:
			res = Busy
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sent_emails SET claimed_by = ?, attempts = attempts + 1, updated_at = now()
			WHERE event_id = ?`, attempt, eventID); err != nil {
			return fmt.Errorf("claim sent email: %w", err)
		}
		res = Claimed
		return nil
	})
	if err != nil {
		return 0, retry.DB(fmt.Errorf("claim email %s: %w", c.EventID, err))
	}
	return res, nil
}

func (l *Ledger) insert(ctx context.Context, tx bun.Tx, eventID, attempt uuid.UUID, c Claim, rcpt string, res *Result) error {
	state, claimedBy, attempts := "sending", uuid.NullUUID{UUID: attempt, Valid: true}, 1
	if c.Cap > 0 {
		var n int
		if err := tx.NewRaw(`SELECT count(*) FROM sent_emails
			WHERE recipient = ? AND created_at > now() - interval '1 hour' AND state IN ('sending', 'sent')`, rcpt).Scan(ctx, &n); err != nil {
			return fmt.Errorf("count recent emails: %w", err)
		}
		if n >= c.Cap {
			state, claimedBy, attempts = "capped", uuid.NullUUID{}, 0
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sent_emails (event_id, kind, recipient, state, claimed_by, attempts)
		VALUES (?, ?, ?, ?, ?, ?)`, eventID, c.Kind, rcpt, state, claimedBy, attempts); err != nil {
		return fmt.Errorf("record sent email: %w", err)
	}
	*res = Claimed
	if state == "capped" {
		*res = Capped
	}
	return nil
}

// MarkSent records that the relay accepted the email.
func (l *Ledger) MarkSent(ctx context.Context, eventID string) error {
	if _, err := l.db.ExecContext(ctx, `UPDATE sent_emails SET state = 'sent', sent_at = now(), updated_at = now(), claimed_by = NULL
		WHERE event_id = ?`, eventID); err != nil {
		return retry.DB(fmt.Errorf("mark email %s sent: %w", eventID, err))
	}
	return nil
}

// Release gives up this attempt's claim after a failed send, so the next delivery of
// the event need not wait for the lease.
func (l *Ledger) Release(ctx context.Context, eventID, attempt string) error {
	if _, err := l.db.ExecContext(ctx, `UPDATE sent_emails SET claimed_by = NULL, updated_at = now()
		WHERE event_id = ? AND claimed_by = ? AND state = 'sending'`, eventID, attempt); err != nil {
		return retry.DB(fmt.Errorf("release email %s: %w", eventID, err))
	}
	return nil
}

// Recorder is the part of the ledger that records how a claimed send ended.
type Recorder interface {
	MarkSent(ctx context.Context, eventID string) error
	Release(ctx context.Context, eventID, attempt string) error
}

var _ Recorder = (*Ledger)(nil)

// How hard Deliver tries to record a message the relay or provider accepted.
const (
	markAttempts = 5
	markWait     = 500 * time.Millisecond
)

// Deliver runs send for the message of eventID that attempt claimed, and records how it
// ended: a failed send releases the claim for the next attempt (a failed release is only
// logged: the lease frees it later); an accepted one is marked sent even if ctx ended
// meanwhile, and tried hard, since an unrecorded message goes again on redelivery.
func Deliver(ctx context.Context, l Recorder, eventID, attempt string, log *zap.Logger, send func(context.Context) error) error {
	if err := send(ctx); err != nil {
		if rerr := l.Release(context.WithoutCancel(ctx), eventID, attempt); rerr != nil {
			log.Warn("release the claim of a failed send", zap.String("event_id", eventID), zap.Error(rerr))
		}
		return err
	}
	mctx := context.WithoutCancel(ctx)
	var err error
	for i := 1; ; i++ {
		err = l.MarkSent(mctx, eventID)
		if err == nil || i == markAttempts {
			return err
		}
		time.Sleep(markWait * time.Duration(i))
	}
}
