package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/ratelimit"
)

// Forgot-password and resend answer before anything depends on the address: the per-IP
// budget, the normalised address, one INSERT of the request, 202. Looking the address
// up, spending its email budget, minting the token and writing the outbox event happen
// afterwards, in ProcessEmailRequest, so the answer for a known address does exactly the
// work of the answer for an unknown one (issue 14, item 13: the synchronous answer of a
// known address took a write transaction, an unknown one a SELECT, a timing oracle).

// EmailKind is what an accepted email request asks for.
type EmailKind string

// The kinds of email request.
const (
	EmailForgot EmailKind = "forgot"    // a password-reset link, for an account that is not disabled
	EmailResend EmailKind = "resend"    // a new verification link, for an unverified account
	EmailOTP    EmailKind = "otp_email" // a sign-in code and link (RequestOTP)
	// SMSOTP is an SMS sign-in code; its Email is the E.164 number, its owner the
	// account that verified it.
	SMSOTP EmailKind = "otp_sms"
)

// EmailRequest is an accepted forgot-password, resend or sign-in code request.
type EmailRequest struct {
	ID        string
	Kind      EmailKind
	Email     string // normalised
	IP        string
	UserAgent string
	// RequestID is the X-Request-Id of the request, carried into its outbox event.
	RequestID string
	CreatedAt time.Time
	// Attempts counts the earlier attempts to process it that failed.
	Attempts int
}

// LinkEmail is a one-time token and the outbox event that mails its link.
type LinkEmail struct {
	Token OneTimeToken
	Event Event
	// NewUser, when not nil, is an account the token's owner is created as first
	// (OTP_SIGNUP), and More the events of that creation.
	NewUser *User
	More    []Event
}

// EmailRequestHandler decides what an accepted request sends: owner is the account of
// its address, nil when there is none; a nil LinkEmail sends nothing. An error leaves
// the request for a later attempt.
type EmailRequestHandler func(ctx context.Context, r EmailRequest, owner *User) (*LinkEmail, error)

// EmailRequests is the durable queue between the answer to a forgot-password or resend
// request and its email (PostgreSQL: an accepted request survives the process).
type EmailRequests interface {
	// AddEmailRequest stores r (its ID, CreatedAt and Attempts are set by the store;
	// the request id and trace context come from ctx) with one INSERT, and returns its id.
	AddEmailRequest(ctx context.Context, r EmailRequest) (string, error)
	// ProcessEmailRequest claims one request, the one of id or, id empty, the one due the
	// longest, skipping any another processor holds, and in one transaction loads the
	// account of its address, calls handle, writes the LinkEmail handle returns (the
	// user's unused tokens of its purpose retired, as a new link replaces the old) and
	// deletes the request. An error rolls all of it back and puts the request off.
	// claimed is false when there was nothing to claim.
	ProcessEmailRequest(ctx context.Context, id string, handle EmailRequestHandler) (r EmailRequest, claimed bool, err error)
	// DeleteEmailRequestsOlderThan drops the requests accepted longer than age ago.
	DeleteEmailRequestsOlderThan(ctx context.Context, age time.Duration) (int, error)
	// CountEmailRequests counts the requests waiting and the age of the oldest.
	CountEmailRequests(ctx context.Context) (n int, oldest time.Duration, err error)
}

// EmailOutcome is what processing a request did.
type EmailOutcome string

// The outcomes of a processed request.
const (
	EmailSent        EmailOutcome = "sent"         // a token and its email event were written
	EmailNoAccount   EmailOutcome = "no_account"   // no account has the address
	EmailNotNeeded   EmailOutcome = "not_needed"   // a disabled account, or a resend for a verified one
	EmailBudgetSpent EmailOutcome = "budget_spent" // the address's email budget is spent
)

// WithEmailRequests gives the service its queue of forgot-password and resend requests
// (required by those routes). wake, when not nil, is told the id of each request right
// after it is stored, so this replica's processor handles it at once; it must not block.
func WithEmailRequests(q EmailRequests, wake func(id string)) Option {
	return func(s *Service) { s.requests, s.wake = q, wake }
}

// errNoEmailRequests is a composition error: a Service built without WithEmailRequests.
var errNoEmailRequests = errors.New("no email request queue (WithEmailRequests)")

// requestEmail is the answer path of forgot-password and resend, the same work for every
// address: the per-IP budget of limit, the normalised address, one INSERT, the wake. An
// address that cannot be normalised belongs to no account and is not stored.
func (s *Service) requestEmail(ctx context.Context, limit string, kind EmailKind, rawEmail string, c Client) error {
	if err := s.allow(ctx, limit, c.IP, "rate_limited"); err != nil {
		return err
	}
	email, err := emailaddr.Normalize(rawEmail)
	if err != nil {
		return nil
	}
	return s.queueRequest(ctx, kind, email, c)
}

// queueRequest stores a request for addr (a normalised address, or a number for
// SMSOTP) with one INSERT and wakes this replica's processor.
func (s *Service) queueRequest(ctx context.Context, kind EmailKind, email string, c Client) error {
	if s.requests == nil {
		return errNoEmailRequests
	}
	id, err := s.requests.AddEmailRequest(ctx, EmailRequest{Kind: kind, Email: email, IP: c.IP, UserAgent: c.UserAgent})
	if err != nil {
		return fmt.Errorf("store %s request: %w", kind, err)
	}
	if s.wake != nil {
		s.wake(id)
	}
	return nil
}

// ProcessEmailRequest handles one accepted request, the one of id or, id empty, the one
// due the longest: what ForgotPassword and ResendVerification used to do before
// answering. A reset link goes to an account that is not disabled, a verification link
// to an unverified one that is not disabled; either only while the address's email
// budget lasts (spent here, by an email really written, never by an unknown address).
// The token, its event and the deletion of the request commit together, so a request is
// mailed once, even when several processors run. claimed is false when there was
// nothing to claim (done already, or held by another processor); an error leaves the
// request for a later attempt (a Redis or PostgreSQL failure).
func (s *Service) ProcessEmailRequest(ctx context.Context, id string) (r EmailRequest, outcome EmailOutcome, claimed bool, err error) {
	if s.requests == nil {
		return EmailRequest{}, "", false, errNoEmailRequests
	}
	r, claimed, err = s.requests.ProcessEmailRequest(ctx, id, func(ctx context.Context, r EmailRequest, owner *User) (*LinkEmail, error) {
		var mail *LinkEmail
		var err error
		mail, outcome, err = s.linkEmail(ctx, r, owner)
		return mail, err
	})
	if err != nil {
		outcome = ""
	}
	return r, outcome, claimed, err
}

func (s *Service) linkEmail(ctx context.Context, r EmailRequest, u *User) (*LinkEmail, EmailOutcome, error) {
	if r.Kind == EmailOTP || r.Kind == SMSOTP {
		return s.otpMessage(ctx, r, u)
	}
	if u == nil {
		return nil, EmailNoAccount, nil
	}
	var (
		purpose Purpose
		subject string
		ttl     time.Duration
	)
	switch r.Kind {
	case EmailForgot:
		if u.DisabledAt != nil {
			return nil, EmailNotNeeded, nil
		}
		purpose, subject, ttl = PurposePasswordReset, events.SubjectPasswordResetRequested, s.cfg.ResetTTL
	case EmailResend:
		if u.Verified() || u.DisabledAt != nil {
			return nil, EmailNotNeeded, nil
		}
		purpose, subject, ttl = PurposeEmailVerification, events.SubjectVerificationRequested, s.cfg.VerificationTTL
	default:
		return nil, "", fmt.Errorf("email request %s: unknown kind %q", r.ID, r.Kind)
	}
	send, err := s.spendEmail(ctx, ratelimit.BucketLinks, u.Email)
	if err != nil {
		return nil, "", err
	}
	if !send {
		return nil, EmailBudgetSpent, nil
	}
	raw, tok := accounts.NewToken(u.ID, purpose, s.now().Add(ttl))
	return &LinkEmail{Token: tok, Event: Event{Subject: subject, Payload: emailPayload(subject, *u, raw, tok.ExpiresAt)}}, EmailSent, nil
}

// ExpireEmailRequests drops, unsent, the requests accepted longer than maxAge ago (a
// backlog while Redis or PostgreSQL failed for that long): a link asked for then is of no
// use any more, and the table keeps no typed address, sealed or not, for longer.
func (s *Service) ExpireEmailRequests(ctx context.Context, maxAge time.Duration) (int, error) {
	if s.requests == nil {
		return 0, errNoEmailRequests
	}
	return s.requests.DeleteEmailRequestsOlderThan(ctx, maxAge)
}

// PendingEmailRequests counts the requests waiting and the age of the oldest.
func (s *Service) PendingEmailRequests(ctx context.Context) (int, time.Duration, error) {
	if s.requests == nil {
		return 0, 0, errNoEmailRequests
	}
	return s.requests.CountEmailRequests(ctx)
}
