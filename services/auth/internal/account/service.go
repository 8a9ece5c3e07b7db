package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/password"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/services/auth/internal/passkey"
	"github.com/talentforge/auth/services/auth/internal/phone"
)

// Users is what the use cases need from the account store.
type Users interface {
	// CreateUser inserts u with role "user", tok when not nil and events, in one
	// transaction; ErrEmailTaken when the address is taken.
	CreateUser(ctx context.Context, u User, tok *OneTimeToken, events []Event) error
	UserByEmail(ctx context.Context, email string) (User, error)
	UserByID(ctx context.Context, id string) (User, error)
	Enqueue(ctx context.Context, events ...Event) error
	// TokenUser returns the owner of a live token without using it.
	TokenUser(ctx context.Context, hash []byte, purpose Purpose) (User, error)
	// VerifyEmail uses a verification token, proves the address (see Proof), grants
	// roles and writes the events, in one transaction; beforeCommit runs inside it.
	VerifyEmail(ctx context.Context, hash []byte, grant []string, events func(User, Proof) []Event,
		beforeCommit func(context.Context, User, Proof) error) (User, error)
	// ResetPassword uses a reset token, proves the address and sets the password;
	// beforeCommit runs inside the transaction so a failure there leaves the old
	// password in place.
	ResetPassword(ctx context.Context, hash []byte, passwordHash string, events func(User, Proof) []Event, beforeCommit func(context.Context, User) error) (User, error)
	// SetPassword replaces a password, with the same beforeCommit contract, and
	// returns the account's new CredentialStamp.
	SetPassword(ctx context.Context, userID, passwordHash string, events []Event, beforeCommit func(context.Context) error) (string, error)
	// UpgradePasswordHash replaces oldHash by newHash only if it is still current.
	UpgradePasswordHash(ctx context.Context, userID, oldHash, newHash string) error
	UpdateName(ctx context.Context, userID, name string) (User, error)
	// GrantOwedAdmin gives a configured admin (accounts.Admins.Owed) the admin role.
	GrantOwedAdmin(ctx context.Context, u User, admins accounts.Admins) (User, error)
	// SecondFactors are the factors the second step of a login accepts (accounts.Store).
	SecondFactors(ctx context.Context, userID string) ([]string, error)
}

// Sessions is the Redis session store shared with the oauth service.
type Sessions interface {
	Create(ctx context.Context, userID, email string, amr []string, stamp string, m session.Meta) (session.Session, string, error)
	SetStamp(ctx context.Context, userID, sessionID, stamp string) error
	Refresh(ctx context.Context, refreshToken string, m session.Meta) (session.Session, string, error)
	Get(ctx context.Context, userID, sessionID string) (session.Session, error)
	Revoke(ctx context.Context, userID, sessionID string) error
	RevokeAll(ctx context.Context, userID, keep string) (int, error)
	List(ctx context.Context, userID string) ([]session.Session, error)
}

// Limits are the shared rate limits and the login throttle (pkg/ratelimit.Guard).
type Limits interface {
	Allow(ctx context.Context, purpose, key string) (ratelimit.Decision, error)
	LoginAttempt(ctx context.Context, account, ip string) (allowed bool, wait time.Duration, err error)
	LoginSucceeded(ctx context.Context, account, ip string) error
}

// Budget purposes, configured as RATE_LIMIT_<PURPOSE>.
const (
	LimitGlobal      = "global"
	LimitLogin       = "login"
	LimitRegister    = "register"
	LimitForgot      = "forgot"
	LimitResend      = "resend"
	LimitRefresh     = "refresh"
	LimitEmailVerify = "email_verify"
	LimitMFA         = "mfa"
	LimitEmails      = ratelimit.PurposeEmails
	// LimitVerifyInvalid is ForwardAuth's budget for its 401s, apart from the global one
	// so a stranger guessing tokens drains only their own (RATE_LIMIT_GLOBAL's value).
	LimitVerifyInvalid = "verify_invalid"
)

// Hasher hashes and checks passwords under a concurrency bound.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error)
	DummyVerify(ctx context.Context, password string) error
}

// BreachChecker asks a k-anonymity API whether a password appeared in a breach.
type BreachChecker interface {
	Breached(ctx context.Context, password string) (bool, error)
}

// Config holds the settings the use cases obey.
type Config struct {
	// Breaches is optional (PASSWORD_BREACH_CHECK_URL).
	Breaches                  BreachChecker
	EmailVerificationRequired bool
	AdminEmails               accounts.Admins
	Policy                    password.Policy
	VerificationTTL           time.Duration // 24h
	ResetTTL                  time.Duration // 1h
	// ReauthMaxAge (REAUTH_MAX_AGE, 5m): how long after signing in a session may
	// change credentials without the current password in the request.
	ReauthMaxAge time.Duration
	// OTPSignup (OTP_SIGNUP): an emailed sign-in code asked for an address without an
	// account creates the account (unverified until the code is used).
	OTPSignup bool
}

// Service implements the use cases.
type Service struct {
	users    Users
	core     *accounts.Sessions
	sessions Sessions
	limits   Limits
	hasher   Hasher
	cfg      Config
	now      func() time.Time
	log      *zap.Logger
	// mfa and challenges are the TOTP store and the pending MFA logins (WithMFA).
	mfa        MFAStore
	challenges MFAChallenges
	// requests queues forgot-password and resend requests; wake hands each new one to
	// this replica's processor (WithEmailRequests).
	requests EmailRequests
	wake     func(id string)
	// passkeys, rp and flows are the passkeys (WithPasskeys).
	passkeys PasskeyStore
	rp       *passkey.RP
	flows    PasskeyFlows
	// codes are the one-time codes; phones reads numbers, nil without an SMS provider
	// (WithCodes).
	codes  CodeStore
	phones *phone.Policy
}

// Option configures a Service.
type Option func(*Service)

// WithLogger is where audit events that could not be written are reported.
func WithLogger(l *zap.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// NewService wires the use cases.
func NewService(users Users, core *accounts.Sessions, limits Limits, hasher Hasher, cfg Config, opts ...Option) *Service {
	if cfg.VerificationTTL == 0 {
		cfg.VerificationTTL = 24 * time.Hour
	}
	if cfg.ResetTTL == 0 {
		cfg.ResetTTL = time.Hour
	}
	if cfg.ReauthMaxAge <= 0 {
		cfg.ReauthMaxAge = 5 * time.Minute
	}
	s := &Service{users: users, core: core, sessions: core.Store(), limits: limits, hasher: hasher, cfg: cfg, now: time.Now, log: zap.NewNop()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Client describes where a request came from, recorded on the session.
type Client = session.Meta

// TokenPair is what login and refresh answer: a pair, or, with MFA on, only the
// MFAToken that POST /v1/auth/login/mfa redeems with a code (the account core's).
type TokenPair = accounts.Pair

// Principal is the caller behind a valid access token with a live session; its roles
// and permissions are the live ones, not the token's claim (the account core's).
type Principal = accounts.Principal

// audit records a security event that is not part of a transaction of its own (a
// login, a logout). It must not change the answer, so a failure is logged here.
func (s *Service) audit(ctx context.Context, subject string, payload any) {
	if err := s.users.Enqueue(ctx, Event{Subject: subject, Payload: payload}); err != nil {
		logging.From(ctx, s.log).Error("audit event not written", zap.String("subject", subject), zap.Error(err))
	}
}

func (s *Service) loginFailed(ctx context.Context, u *User, email, reason string, c Client) {
	p := events.LoginFailed{Reason: reason, IP: c.IP, UserAgent: c.UserAgent}
	if u != nil {
		p.UserID = u.ID
	} else if email != "" {
		sum := sha256.Sum256([]byte(email))
		p.EmailSHA256 = hex.EncodeToString(sum[:])
	}
	s.audit(ctx, events.SubjectLoginFailed, p)
}

// allow spends one event of purpose's budget for key; Redis errors fail closed.
func (s *Service) allow(ctx context.Context, purpose, key, code string) error {
	d, err := s.limits.Allow(ctx, purpose, key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !d.Allowed {
		return &RateLimitedError{Code: code, Limit: d.Limit, Remaining: d.Remaining, RetryAfter: d.RetryAfter, ResetAfter: d.ResetAfter}
	}
	return nil
}

// CheckGlobal spends one event of the client's global budget (every route).
func (s *Service) CheckGlobal(ctx context.Context, c Client) error {
	return s.allow(ctx, LimitGlobal, c.IP, "rate_limited")
}

// CheckVerifyInvalid spends one event of the client's budget for ForwardAuth's 401s.
func (s *Service) CheckVerifyInvalid(ctx context.Context, c Client) error {
	return s.allow(ctx, LimitVerifyInvalid, c.IP, "rate_limited")
}

// spendEmail spends one email of email's budget in bucket. It is called only once a
// request is valid and an email is about to be written to the outbox, so requests
// that send nothing (refused, unknown address, nothing to send) never spend; false
// means the budget is spent and the caller sends nothing, answering as usual (an
// unknown address, which never spends, answers the same). For forgot-password and
// resend it runs in ProcessEmailRequest, after the answer, so it costs the answer of a
// known address nothing either. Redis errors fail closed.
func (s *Service) spendEmail(ctx context.Context, bucket, email string) (bool, error) {
	d, err := s.limits.Allow(ctx, LimitEmails, ratelimit.AddressKey(bucket, email))
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return d.Allowed, nil
}

func (s *Service) checkPolicy(ctx context.Context, pw, email string) error {
	if err := s.cfg.Policy.Check(pw, email); err != nil {
		var v *password.Violation
		if errors.As(err, &v) {
			return &WeakPasswordError{Reason: v.Reason, Message: v.Message}
		}
		return err
	}
	if s.cfg.Breaches == nil {
		return nil
	}
	breached, err := s.cfg.Breaches.Breached(ctx, pw)
	if err != nil {
		// Only a fail-closed checker returns errors (PASSWORD_BREACH_CHECK_FAIL_CLOSED).
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if breached {
		return &WeakPasswordError{Reason: "breached", Message: "appeared in a data breach; choose another"}
	}
	return nil
}

func (s *Service) hashError(err error) error {
	if errors.Is(err, password.ErrBusy) {
		return ErrBusy
	}
	return fmt.Errorf("password hash: %w", err)
}

// emailPayload is the payload of an email with a link: subject is
// events.SubjectPasswordResetRequested or events.SubjectVerificationRequested.
func emailPayload(subject string, u User, raw string, expires time.Time) any {
	if subject == events.SubjectPasswordResetRequested {
		return events.PasswordResetRequested{UserID: u.ID, Email: u.Email, Name: u.Name, Token: raw, ExpiresAt: expires}
	}
	return events.VerificationRequested{UserID: u.ID, Email: u.Email, Name: u.Name, Token: raw, ExpiresAt: expires}
}

// proofEvents are the audit events of the identities proving an address unlinked and
// linked (the oauth service's subjects).
func proofEvents(u User, p Proof) []Event {
	var evs []Event
	for _, provider := range p.Unlinked {
		evs = append(evs, Event{Subject: events.SubjectIdentityUnlinked, Payload: events.IdentityUnlinked{UserID: u.ID,
			Provider: provider, How: "address_proven"}})
	}
	if p.Linked != "" {
		evs = append(evs, Event{Subject: events.SubjectIdentityLinked, Payload: events.IdentityLinked{UserID: u.ID,
			Provider: p.Linked, How: "address_proven"}})
	}
	return evs
}

func passwordChanged(u User, how string) Event {
	return Event{Subject: events.SubjectPasswordChanged, Payload: events.PasswordChanged{UserID: u.ID, Email: u.Email, Name: u.Name, How: how}}
}
