package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/services/auth/internal/account"
)

var _ account.EmailRequests = (*EmailRequests)(nil)

// EmailRequestTakeover is how long the replica that accepted a request has it to itself
// (its processor is woken in process and normally handles it within milliseconds); after
// that any replica's poll may claim it: the accepting one stopped right after answering,
// or missed the wake. Tests that play a stopped replica move next_attempt_at instead of
// waiting.
const EmailRequestTakeover = 10 * time.Second

// A failed attempt puts the request off by 1 s, doubling with each attempt, at most 5 min.
const (
	emailRetryBase = time.Second
	emailRetryMax  = 5 * time.Minute
)

// EmailRequests is the queue of accepted forgot-password and resend requests, the table
// email_requests. The address is sealed under the event keys with the row id bound, like
// an event's token, so the table never holds an address anyone typed in clear.
type EmailRequests struct {
	users *Users
}

// NewEmailRequests returns the queue; it seals with the event keys of users and writes
// tokens and events through it.
func NewEmailRequests(users *Users) *EmailRequests { return &EmailRequests{users: users} }

type emailRequestRow struct {
	bun.BaseModel `bun:"table:email_requests"`

	ID            uuid.UUID      `bun:"id,pk,type:uuid"`
	Kind          string         `bun:"kind"`
	EmailSealed   keyring.Sealed `bun:"email_sealed,type:jsonb"`
	IP            string         `bun:"ip"`
	UserAgent     string         `bun:"user_agent"`
	RequestID     string         `bun:"request_id"`
	Traceparent   string         `bun:"traceparent"`
	Tracestate    string         `bun:"tracestate"`
	CreatedAt     time.Time      `bun:"created_at"`
	Attempts      int            `bun:"attempts"`
	NextAttemptAt time.Time      `bun:"next_attempt_at"`
}

func (r emailRequestRow) request() account.EmailRequest {
	return account.EmailRequest{ID: r.ID.String(), Kind: account.EmailKind(r.Kind), IP: r.IP, UserAgent: r.UserAgent,
		RequestID: r.RequestID, CreatedAt: r.CreatedAt, Attempts: r.Attempts}
}

// text makes s storable in a text column: valid UTF-8 (a header cut at 512 bytes may end
// in half a character) without NUL.
func text(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
}

// AddEmailRequest stores r with one INSERT, the same statement for every address, with
// ctx's request id and trace context; the request is this replica's for
// EmailRequestTakeover.
func (q *EmailRequests) AddEmailRequest(ctx context.Context, r account.EmailRequest) (string, error) {
	id := uuid.Must(uuid.NewV7())
	sealed, err := q.users.keys.Seal([]byte(r.Email), id.String())
	if err != nil {
		return "", err
	}
	var trace events.Envelope
	trace.SetTraceContext(ctx)
	row := emailRequestRow{
		ID: id, Kind: string(r.Kind), EmailSealed: sealed, IP: text(r.IP), UserAgent: text(r.UserAgent),
		RequestID: text(logging.RequestID(ctx)), Traceparent: trace.Traceparent, Tracestate: trace.Tracestate,
	}
	_, err = q.users.DB().NewInsert().Model(&row).ExcludeColumn("created_at", "attempts").
		Value("next_attempt_at", "now() + make_interval(secs => ?)", EmailRequestTakeover.Seconds()).
		Exec(ctx)
	if err != nil {
		return "", fmt.Errorf("insert email request: %w", err)
	}
	return id.String(), nil
}

// errNothingToClaim ends a claim that found no row.
var errNothingToClaim = errors.New("no email request to claim")

// ProcessEmailRequest claims the request id, or with id empty the one whose
// next_attempt_at passed the longest ago, with FOR UPDATE SKIP LOCKED: a request another
// processor holds is skipped, and one whose processor died is free again once its
// connection is gone. In the same transaction it opens the address, loads its account,
// calls handle, writes what handle returns and deletes the request, so the token, its
// event and the deletion commit together or not at all. After a failure the request is
// put off (attempts + 1, next_attempt_at 1 s doubling up to 5 min later); an address
// sealed under a key this replica lacks fails the same way, and is left for a replica
// that has it until it expires.
func (q *EmailRequests) ProcessEmailRequest(ctx context.Context, id string, handle account.EmailRequestHandler) (account.EmailRequest, bool, error) {
	var row emailRequestRow
	var r account.EmailRequest
	claimed := false
	err := q.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sel := tx.NewSelect().Model(&row).For("UPDATE SKIP LOCKED").Limit(1)
		if id != "" {
			uid, err := uuid.Parse(id)
			if err != nil {
				return errNothingToClaim
			}
			sel = sel.Where("id = ?", uid)
		} else {
			sel = sel.Where("next_attempt_at <= now()").Order("next_attempt_at")
		}
		if err := sel.Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errNothingToClaim
			}
			return fmt.Errorf("claim email request: %w", err)
		}
		claimed, r = true, row.request()
		email, err := q.users.keys.Open(row.EmailSealed, row.ID.String())
		if err != nil {
			return fmt.Errorf("open the address of email request %s (key %q): %w", row.ID, row.EmailSealed.KID, err)
		}
		r.Email = string(email)
		var owner *account.User
		by := "u.email = ?"
		if r.Kind == account.SMSOTP {
			by = "u.phone = ?" // the request's "address" is a number
		}
		switch u, err := q.users.One(ctx, tx, by, r.Email); {
		case err == nil:
			owner = &u
		case !errors.Is(err, account.ErrNotFound):
			return fmt.Errorf("load user: %w", err)
		}
		mail, err := handle(ctx, r, owner)
		if err != nil {
			return err
		}
		if mail != nil {
			// The event joins the trace of the request that asked for it.
			tctx := events.Envelope{Traceparent: row.Traceparent, Tracestate: row.Tracestate}.TraceContext(ctx)
			if mail.NewUser != nil {
				if _, err := q.users.Insert(ctx, tx, *mail.NewUser); err != nil {
					return err
				}
			}
			if err := q.users.issueToken(tctx, tx, mail.Token, row.RequestID, mail.Event); err != nil {
				return err
			}
			if err := q.users.enqueueFor(tctx, tx, row.RequestID, mail.More...); err != nil {
				return err
			}
		}
		if _, err := tx.NewDelete().Model((*emailRequestRow)(nil)).Where("id = ?", row.ID).Exec(ctx); err != nil {
			return fmt.Errorf("delete email request: %w", err)
		}
		return nil
	})
	switch {
	case errors.Is(err, errNothingToClaim):
		return account.EmailRequest{}, false, nil
	case err != nil && claimed:
		// Even when ctx ended mid-way (a stopping replica), so the next attempt waits.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, perr := q.users.DB().NewUpdate().Model((*emailRequestRow)(nil)).
			Set("attempts = attempts + 1").
			Set("next_attempt_at = now() + make_interval(secs => least(?::float8, ?::float8 * power(2, attempts)))",
				emailRetryMax.Seconds(), emailRetryBase.Seconds()).
			Where("id = ?", row.ID).Exec(pctx)
		if perr != nil {
			err = errors.Join(err, fmt.Errorf("put off email request: %w", perr))
		}
	}
	return r, claimed, err
}

// DeleteEmailRequestsOlderThan drops the requests accepted longer than age ago.
func (q *EmailRequests) DeleteEmailRequestsOlderThan(ctx context.Context, age time.Duration) (int, error) {
	res, err := q.users.DB().NewDelete().Model((*emailRequestRow)(nil)).
		Where("created_at < now() - make_interval(secs => ?)", age.Seconds()).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete old email requests: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CountEmailRequests counts the requests waiting and the age of the oldest.
func (q *EmailRequests) CountEmailRequests(ctx context.Context) (int, time.Duration, error) {
	var n int
	var oldest float64
	err := q.users.DB().NewRaw(`SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
		FROM email_requests`).Scan(ctx, &n, &oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("count email requests: %w", err)
	}
	return n, time.Duration(oldest * float64(time.Second)), nil
}
