package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/postgres"
)

// succeeded records a 2xx: the delivery is done and its endpoint healthy again. A
// delivery another claim took over since (the lease passed), or that was cancelled,
// is left as it is.
func (d *Dispatcher) succeeded(ctx context.Context, c claimed, status int) error {
	_, err := d.db.ExecContext(ctx, `WITH done AS (
			UPDATE webhook_deliveries SET status = 'succeeded', finished_at = now(), updated_at = now(), locked_until = NULL,
				last_status_code = ?
			WHERE id = ? AND status = 'pending' AND attempts = ?
			RETURNING endpoint_id
		)
		UPDATE webhook_endpoints e SET failing_since = NULL FROM done WHERE e.id = done.endpoint_id AND e.failing_since IS NOT NULL`,
		status, c.ID, c.Attempts)
	if err != nil {
		return fmt.Errorf("record delivery %s: %w", c.ID, err)
	}
	return nil
}

// failure is what recording a failed call did.
type failure struct {
	stale    bool          // the delivery was no longer this claim's: nothing recorded
	dead     bool          // that was its last attempt
	retryIn  time.Duration // else: when it is tried again
	disabled bool          // the endpoint was disabled now
	diedWith int64         // and this many pending deliveries (this one included, unless dead already) with it
}

// failed records a failed call, in one transaction: the delivery is tried again after
// Schedule[attempts-1], or is dead after its last attempt; the endpoint's failing_since
// starts (if it was healthy) and its last_error is set; and when it has been failing for
// DisableAfter, the endpoint is disabled (see disable).
func (d *Dispatcher) failed(ctx context.Context, c claimed, res result) (failure, error) {
	var f failure
	var status *int
	if res.status != 0 {
		status = &res.status
	}
	err := d.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		f = failure{}
		var (
			r   interface{ RowsAffected() (int64, error) }
			err error
		)
		if c.Attempts >= d.cfg.MaxAttempts() {
			f.dead = true
			r, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'dead', finished_at = now(), updated_at = now(),
					locked_until = NULL, last_status_code = ?, last_error = ?
				WHERE id = ? AND status = 'pending' AND attempts = ?`, status, res.err, c.ID, c.Attempts)
		} else {
			f.retryIn = d.cfg.Schedule[c.Attempts-1]
			r, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => ?), updated_at = now(),
					locked_until = NULL, last_status_code = ?, last_error = ?
				WHERE id = ? AND status = 'pending' AND attempts = ?`, f.retryIn.Seconds(), status, res.err, c.ID, c.Attempts)
		}
		if err != nil {
			return fmt.Errorf("record delivery %s: %w", c.ID, err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			f = failure{stale: true}
			return nil
		}
		if res.ours {
			return nil
		}
		var ep struct {
			URL          string    `bun:"url"`
			FailingSince time.Time `bun:"failing_since"`
			Overdue      bool      `bun:"overdue"`
		}
		err = tx.NewRaw(`UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()), last_error = ?
			WHERE id = ? AND deleted_at IS NULL AND disabled_at IS NULL
			RETURNING url, failing_since, failing_since <= now() - make_interval(secs => ?) AS overdue`,
			res.err, c.EndpointID, d.cfg.DisableAfter.Seconds()).Scan(ctx, &ep)
		if err != nil {
			if postgres.IsNoRows(err) {
				return nil // deleted or disabled meanwhile
			}
			return fmt.Errorf("record the failure of endpoint %s: %w", c.EndpointID, err)
		}
		if ep.Overdue {
			if f.disabled, f.diedWith, err = d.disable(ctx, tx, c.EndpointID, ep.URL, ep.FailingSince, res.err); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return failure{}, err
	}
	if f.disabled {
		// Counted once the transaction is in.
		d.m.disabled.Inc()
		d.m.deliveries.WithLabelValues(OutcomeDead).Add(float64(f.diedWith))
	}
	return f, nil
}

// disable turns off an endpoint that kept failing, within tx: disabled_at is set, its
// pending deliveries are dead (the dead-letter loop publishes them to AUTH_DEADLETTER
// once tx commits: nothing undelivered is lost), and every verified, enabled admin gets
// an auth.webhook.disabled event in the outbox (auth's relay publishes it; the email
// consumer mails the notice). It reports whether it disabled the endpoint (not when
// another worker did first) and how many deliveries it made dead.
func (d *Dispatcher) disable(ctx context.Context, tx bun.Tx, endpointID, url string, failingSince time.Time, lastError string) (bool, int64, error) {
	r, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET disabled_at = now() WHERE id = ? AND disabled_at IS NULL`, endpointID)
	if err != nil {
		return false, 0, fmt.Errorf("disable endpoint %s: %w", endpointID, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return false, 0, nil
	}
	r, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'dead', finished_at = now(), updated_at = now(), locked_until = NULL,
			last_error = coalesce(last_error, 'the endpoint was disabled')
		WHERE endpoint_id = ? AND status = 'pending'`, endpointID)
	if err != nil {
		return false, 0, fmt.Errorf("end the deliveries of endpoint %s: %w", endpointID, err)
	}
	dead, _ := r.RowsAffected()
	var admins []struct {
		ID    string `bun:"id"`
		Email string `bun:"email"`
		Name  string `bun:"name"`
	}
	if err := tx.NewRaw(`SELECT u.id, u.email, u.name FROM users u JOIN user_roles r ON r.user_id = u.id AND r.role = 'admin'
		WHERE u.email_verified_at IS NOT NULL AND u.disabled_at IS NULL ORDER BY u.id`).Scan(ctx, &admins); err != nil && !postgres.IsNoRows(err) {
		return false, 0, fmt.Errorf("list the admins: %w", err)
	}
	evs := make([]events.Event, len(admins))
	for i, a := range admins {
		evs[i] = events.Event{Subject: events.SubjectWebhookDisabled, Payload: events.WebhookDisabled{
			UserID: a.ID, Email: a.Email, Name: a.Name, WebhookID: endpointID, URL: url,
			FailingSince: failingSince.UTC(), LastError: lastError,
		}}
	}
	if err := events.Enqueue(ctx, tx, d.keys, "", evs...); err != nil {
		return false, 0, err
	}
	d.log.Warn("webhook endpoint disabled: it kept failing", zap.String("endpoint_id", endpointID),
		zap.Time("failing_since", failingSince), zap.String("last_error", lastError), zap.Int64("deliveries_dead", dead),
		zap.Int("admins_notified", len(admins)))
	return true, dead, nil
}
