package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/password"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
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
	GrantRole(ctx context.Context, userID, role string) error
}

// Profiles reads users through the Redis cache that holds what the access-token check
// needs: profile, live roles and permissions, and the disabled flag.
type Profiles interface {
	User(ctx context.Context, userID string) (User, error)
	// SessionUser returns the live session and its user in one Redis round trip.
	SessionUser(ctx context.Context, userID, sessionID string) (session.Session, User, error)
	// RefreshSession rotates a refresh token (Sessions.Refresh) and returns its user,
	// in one Redis round trip when the user is cached. An error with a zero Session
	// is the rotation's; with the Session set, the user could not be loaded.
	RefreshSession(ctx context.Context, refreshToken string, m session.Meta) (session.Session, string, User, error)
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

// Tokens mints and checks access tokens.
type Tokens interface {
	Issue(userID, sessionID string, authTime time.Time, roles, amr []string) (string, token.AccessClaims, error)
	Verify(raw string) (*token.AccessClaims, error)
	TTL() time.Duration
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
	AdminEmails               []string
	Policy                    password.Policy
	VerificationTTL           time.Duration // 24h
	ResetTTL                  time.Duration // 1h
	// ReauthMaxAge (REAUTH_MAX_AGE, 5m): how long after signing in a session may
	// change credentials without the current password in the request.
	ReauthMaxAge time.Duration
}

// Service implements the use cases.
type Service struct {
	users    Users
	profiles Profiles
	sessions Sessions
	limits   Limits
	hasher   Hasher
	tokens   Tokens
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
}

// Option configures a Service.
type Option func(*Service)

// WithLogger is where audit events that could not be written are reported.
func WithLogger(l *zap.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// NewService wires the use cases.
func NewService(users Users, profiles Profiles, sessions Sessions, limits Limits, hasher Hasher, tokens Tokens, cfg Config,
	opts ...Option) *Service {
	if cfg.VerificationTTL == 0 {
		cfg.VerificationTTL = 24 * time.Hour
	}
	if cfg.ResetTTL == 0 {
		cfg.ResetTTL = time.Hour
	}
	if cfg.ReauthMaxAge <= 0 {
		cfg.ReauthMaxAge = 5 * time.Minute
	}
	s := &Service{users: users, profiles: profiles, sessions: sessions, limits: limits, hasher: hasher, tokens: tokens, cfg: cfg, now: time.Now, log: zap.NewNop()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Client describes where a request came from, recorded on the session.
type Client = session.Meta

// TokenPair is what login and refresh answer.
type TokenPair struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int
	User         User
	SessionID    string
	// MFARequired: the password was right but the account has MFA on; there are no
	// tokens, only MFAToken, which POST /v1/auth/login/mfa redeems with a code.
	MFARequired bool
	MFAToken    string
}

// Principal is the caller behind a valid access token with a live session. Its roles
// and permissions are the live ones, not the token's claim.
type Principal struct {
	User      User
	UserID    string
	SessionID string
	AMR       []string
	// AuthTime is when the session's user authenticated (the session's, not the
	// token's claim): the reference of REAUTH_MAX_AGE.
	AuthTime time.Time
}

// HasRole reports whether the principal holds role.
func (p Principal) HasRole(role string) bool { return p.User.HasRole(role) }

// HasPermission reports whether the principal holds permission.
func (p Principal) HasPermission(perm string) bool { return p.User.HasPermission(perm) }

// RegisterResult tells the HTTP layer which of the two contract answers to give.
type RegisterResult struct {
	// Pending: verification is required; the same answer for a new and a taken address.
	Pending bool
	User    User
}

// Register creates an account. With verification required it answers the same for a
// taken address and mails the owner a notice instead, so nobody learns who has one.
// The address's email budget is spent only once the request is valid and just before
// an email is written: a refused request (400, 422, 409) sends nothing and spends
// nothing, and a spent budget still answers as usual, with no email.
func (s *Service) Register(ctx context.Context, rawEmail, pw, name string, c Client) (RegisterResult, error) {
	if err := s.allow(ctx, LimitRegister, c.IP, "rate_limited"); err != nil {
		return RegisterResult{}, err
	}
	email, err := emailaddr.Normalize(rawEmail)
	if err != nil {
		return RegisterResult{}, ErrInvalidEmail
	}
	name, err = cleanName(name)
	if err != nil {
		return RegisterResult{}, err
	}
	if err := s.checkPolicy(ctx, pw, email); err != nil {
		return RegisterResult{}, err
	}
	// Hash before looking anything up: a taken address costs the same time.
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return RegisterResult{}, s.hashError(err)
	}
	// Known before spending: a taken address gets a notice from the notices' budget,
	// or a 409 that sends nothing, never a spend of the links' budget.
	owner, err := s.users.UserByEmail(ctx, email)
	switch {
	case err == nil:
		return s.registerTaken(ctx, owner)
	case !errors.Is(err, ErrNotFound):
		return RegisterResult{}, fmt.Errorf("load user: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	u := User{ID: uuid.NewString(), Email: email, Name: name, PasswordHash: hash, Roles: []string{"user"}, CreatedAt: now}
	events := []Event{{Subject: SubjectRegistered, Payload: map[string]any{"user_id": u.ID, "ip": c.IP, "user_agent": c.UserAgent}}}
	send, err := s.spendEmail(ctx, ratelimit.BucketLinks, email)
	if err != nil {
		return RegisterResult{}, err
	}
	var tok *OneTimeToken
	if send { // else the account is made without a link; resend mails one later
		raw, t := s.newToken(u.ID, PurposeEmailVerification, now.Add(s.cfg.VerificationTTL))
		tok = &t
		events = append(events, Event{Subject: SubjectVerificationRequested, Payload: emailPayload(u, raw, t.ExpiresAt)})
	}
	err = s.users.CreateUser(ctx, u, tok, events)
	switch {
	case errors.Is(err, ErrEmailTaken): // registered in between
		owner, err := s.users.UserByEmail(ctx, email)
		if errors.Is(err, ErrNotFound) { // deleted in between: nothing to tell anyone
			if !s.cfg.EmailVerificationRequired {
				return RegisterResult{}, ErrEmailTaken
			}
			return RegisterResult{Pending: true}, nil
		}
		if err != nil {
			return RegisterResult{}, fmt.Errorf("load existing user: %w", err)
		}
		return s.registerTaken(ctx, owner)
	case err != nil:
		return RegisterResult{}, fmt.Errorf("create user: %w", err)
	}
	return RegisterResult{Pending: s.cfg.EmailVerificationRequired, User: u}, nil
}

// registerTaken answers a register for owner's address: 409 when verification is not
// required (nothing sent, nothing spent), else the usual 202 and a notice to the owner
// while the notices' budget lasts.
func (s *Service) registerTaken(ctx context.Context, owner User) (RegisterResult, error) {
	if !s.cfg.EmailVerificationRequired {
		return RegisterResult{}, ErrEmailTaken
	}
	send, err := s.spendEmail(ctx, ratelimit.BucketNotices, owner.Email)
	if err != nil || !send {
		return RegisterResult{Pending: err == nil}, err
	}
	err = s.users.Enqueue(ctx, Event{Subject: SubjectRegisterExisting, Payload: map[string]any{
		"user_id": owner.ID, "email": owner.Email, "name": owner.Name,
	}})
	if err != nil {
		return RegisterResult{}, fmt.Errorf("notice existing user: %w", err)
	}
	return RegisterResult{Pending: true}, nil
}

// VerifyEmail uses a verification token.
func (s *Service) VerifyEmail(ctx context.Context, raw string, c Client) (User, error) {
	if err := s.allow(ctx, LimitEmailVerify, c.IP, "rate_limited"); err != nil {
		return User{}, err
	}
	hash, ok := hashToken(raw)
	if !ok {
		return User{}, ErrInvalidToken
	}
	u, err := s.users.VerifyEmail(ctx, hash, nil, func(u User, p Proof) []Event {
		return append([]Event{{Subject: SubjectEmailVerified, Payload: map[string]any{"user_id": u.ID, "email": u.Email, "name": u.Name}}},
			proofEvents(u, p)...)
	}, func(ctx context.Context, u User, p Proof) error {
		// The stamp moved too (proveAddress); this clears the sessions from Redis.
		if p.WasUnverified || len(p.Unlinked) > 0 {
			_, err := s.sessions.RevokeAll(ctx, u.ID, "")
			return err
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrInvalidToken
	}
	if err != nil {
		return User{}, fmt.Errorf("verify email: %w", err)
	}
	return s.grantConfiguredAdmin(ctx, u)
}

// grantConfiguredAdmin gives ADMIN_EMAILS accounts the admin role once verified.
func (s *Service) grantConfiguredAdmin(ctx context.Context, u User) (User, error) {
	if !u.Verified() || !slices.Contains(s.cfg.AdminEmails, u.Email) || slices.Contains(u.Roles, "admin") {
		return u, nil
	}
	if err := s.users.GrantRole(ctx, u.ID, "admin"); err != nil {
		return User{}, fmt.Errorf("grant admin: %w", err)
	}
	u.Roles = append(slices.Clone(u.Roles), "admin")
	slices.Sort(u.Roles)
	return u, nil
}

// ResendVerification accepts a request for a new verification link and answers nothing
// either way: the same work for every address (requestEmail); ProcessEmailRequest mails
// the link afterwards when the address has an unverified account.
func (s *Service) ResendVerification(ctx context.Context, rawEmail string, c Client) error {
	return s.requestEmail(ctx, LimitResend, EmailResend, rawEmail, c)
}

// ForgotPassword accepts a request for a reset link and answers nothing either way: the
// same work for every address (requestEmail); ProcessEmailRequest mails the link
// afterwards when the address has an account. The link is built by the worker from
// APP_URL, never from the request's Host.
func (s *Service) ForgotPassword(ctx context.Context, rawEmail string, c Client) error {
	return s.requestEmail(ctx, LimitForgot, EmailForgot, rawEmail, c)
}

// ResetPassword sets a new password with a reset token and ends every session of the
// user. It does not sign the user in. A reset proves the mailbox, so it verifies it.
func (s *Service) ResetPassword(ctx context.Context, raw, pw string) error {
	hash, ok := hashToken(raw)
	if !ok {
		return ErrInvalidToken
	}
	owner, err := s.users.TokenUser(ctx, hash, PurposePasswordReset)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("look up reset token: %w", err)
	}
	if err := s.checkPolicy(ctx, pw, owner.Email); err != nil {
		return err
	}
	pwHash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return s.hashError(err)
	}
	_, err = s.users.ResetPassword(ctx, hash, pwHash,
		func(u User, p Proof) []Event {
			return append([]Event{passwordChanged(u, "reset")}, proofEvents(u, p)...)
		},
		func(ctx context.Context, u User) error {
			_, err := s.sessions.RevokeAll(ctx, u.ID, "")
			return err
		})
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken // used by a parallel request in between
	}
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	return nil
}

// Login checks a password and opens a session. Unknown addresses cost the same hash
// time as a wrong password; disabled and unverified accounts are told apart only to
// someone who knows the password.
func (s *Service) Login(ctx context.Context, rawEmail, pw string, c Client) (TokenPair, error) {
	if err := s.allow(ctx, LimitLogin, c.IP, "too_many_attempts"); err != nil {
		return TokenPair{}, err
	}
	email, err := emailaddr.Normalize(rawEmail)
	if err != nil || pw == "" || s.cfg.Policy.TooLong(pw) {
		// Nothing can match: no account has such an address or password.
		return TokenPair{}, ErrInvalidCredentials
	}
	// Counted before the password is checked, for unknown addresses exactly as for
	// real ones; while throttled even the right password only learns the wait.
	allowed, wait, err := s.limits.LoginAttempt(ctx, email, c.IP)
	if err != nil {
		return TokenPair{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !allowed {
		return TokenPair{}, &RateLimitedError{Code: "too_many_attempts", Limit: -1, RetryAfter: wait, ResetAfter: wait}
	}
	u, err := s.users.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return TokenPair{}, fmt.Errorf("load user: %w", err)
	}
	if err != nil || u.PasswordHash == "" {
		if err := s.hasher.DummyVerify(ctx, pw); err != nil {
			return TokenPair{}, s.hashError(err)
		}
		var known *User
		if err == nil {
			known = &u
		}
		s.loginFailed(ctx, known, email, "invalid_credentials", c)
		return TokenPair{}, ErrInvalidCredentials
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return TokenPair{}, s.hashError(err)
	}
	if !ok {
		s.loginFailed(ctx, &u, email, "invalid_credentials", c)
		return TokenPair{}, ErrInvalidCredentials
	}
	// With MFA on, only the second factor resets the throttle: wrong codes count.
	if !u.MFAEnabled {
		if err := s.limits.LoginSucceeded(ctx, email, c.IP); err != nil {
			return TokenPair{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if u.DisabledAt != nil {
		s.loginFailed(ctx, &u, email, "account_disabled", c)
		return TokenPair{}, ErrAccountDisabled
	}
	if s.cfg.EmailVerificationRequired && !u.Verified() {
		s.loginFailed(ctx, &u, email, "email_not_verified", c)
		return TokenPair{}, ErrEmailNotVerified
	}
	if rehash {
		s.upgradeHash(ctx, u, pw)
	}
	if u, err = s.grantConfiguredAdmin(ctx, u); err != nil {
		return TokenPair{}, err
	}
	if u.MFAEnabled {
		return s.startMFA(ctx, u, c)
	}
	pair, err := s.openSession(ctx, u, []string{"pwd"}, c)
	if err != nil {
		return TokenPair{}, err
	}
	s.audit(ctx, SubjectLoginSucceeded, map[string]any{"user_id": u.ID, "session_id": pair.SessionID,
		"amr": []string{"pwd"}, "ip": c.IP, "user_agent": c.UserAgent})
	return pair, nil
}

// upgradeHash moves a bcrypt or outdated argon2id hash to the current parameters. A
// failure only postpones the upgrade to the next login.
func (s *Service) upgradeHash(ctx context.Context, u User, pw string) {
	newHash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return
	}
	_ = s.users.UpgradePasswordHash(ctx, u.ID, u.PasswordHash, newHash)
}

// OpenSession issues a token pair for an authenticated user (the oauth service and
// MFA use it through the same session store).
func (s *Service) openSession(ctx context.Context, u User, amr []string, c Client) (TokenPair, error) {
	sess, rt, err := s.sessions.Create(ctx, u.ID, u.Email, amr, u.CredentialStamp, c)
	if err != nil {
		return TokenPair{}, fmt.Errorf("create session: %w", err)
	}
	return s.pair(u, sess, rt)
}

func (s *Service) pair(u User, sess session.Session, rt string) (TokenPair, error) {
	at, _, err := s.tokens.Issue(u.ID, sess.ID, sess.CreatedAt, u.Roles, sess.AMR)
	if err != nil {
		return TokenPair{}, fmt.Errorf("issue access token: %w", err)
	}
	return TokenPair{AccessToken: at, RefreshToken: rt, ExpiresIn: int(s.tokens.TTL().Seconds()), User: u, SessionID: sess.ID}, nil
}

// Refresh rotates a refresh token (see the session store for the grace and reuse
// rules) and mints an access token with the user's current roles.
func (s *Service) Refresh(ctx context.Context, rt string, c Client) (TokenPair, error) {
	if err := s.allow(ctx, LimitRefresh, c.IP, "rate_limited"); err != nil {
		return TokenPair{}, err
	}
	if rt == "" {
		return TokenPair{}, ErrInvalidRefreshToken
	}
	// One Redis round trip: the rotation and the cached user together.
	sess, next, u, err := s.profiles.RefreshSession(ctx, rt, c)
	switch {
	case err == nil || sess.ID != "": // rotated; err, if any, is the user's
	case errors.Is(err, session.ErrReused):
		uid, sid, _ := session.ParseRefreshToken(rt)
		s.audit(ctx, SubjectRefreshReused, map[string]any{"user_id": uid, "session_id": sid, "ip": c.IP, "user_agent": c.UserAgent})
		return TokenPair{}, ErrRefreshTokenReused
	case errors.Is(err, session.ErrInvalidToken):
		return TokenPair{}, ErrInvalidRefreshToken
	default:
		return TokenPair{}, fmt.Errorf("refresh session: %w", err)
	}
	// A session opened with a password since replaced ends like one of a disabled user.
	if errors.Is(err, ErrNotFound) || (err == nil && (u.DisabledAt != nil || !sess.Stamped(u.CredentialStamp))) {
		_ = s.sessions.Revoke(ctx, sess.UserID, sess.ID)
		return TokenPair{}, ErrInvalidRefreshToken
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("load user: %w", err)
	}
	return s.pair(u, sess, next)
}

// Authenticate checks an access token, that its session is live and that its user is
// not disabled: one Redis round trip (session and cached user together), PostgreSQL
// only on a cache miss. Logout, disable and role changes are seen at once.
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	claims, err := s.tokens.Verify(raw)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	sess, u, err := s.profiles.SessionUser(ctx, claims.Subject, claims.SessionID)
	switch {
	case errors.Is(err, session.ErrNotFound), errors.Is(err, ErrNotFound):
		return Principal{}, ErrUnauthenticated
	case err != nil:
		return Principal{}, fmt.Errorf("load session: %w", err)
	case u.DisabledAt != nil:
		return Principal{}, ErrUnauthenticated
	case !sess.Stamped(u.CredentialStamp):
		// Opened with a password that has changed since (a login that raced a reset
		// or a change and came in after their RevokeAll): over, whatever the order.
		return Principal{}, ErrUnauthenticated
	}
	return Principal{User: u, UserID: claims.Subject, SessionID: claims.SessionID, AMR: claims.AMR,
		AuthTime: sess.CreatedAt}, nil
}

// Logout ends the caller's session, and the session of refreshToken when it is
// another of the caller's own.
func (s *Service) Logout(ctx context.Context, p Principal, refreshToken string) error {
	if err := s.sessions.Revoke(ctx, p.UserID, p.SessionID); err != nil && !errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("revoke session: %w", err)
	}
	ended := []string{p.SessionID}
	if uid, sid, err := session.ParseRefreshToken(refreshToken); err == nil && uid == p.UserID && sid != p.SessionID {
		if err := s.sessions.Revoke(ctx, uid, sid); err != nil && !errors.Is(err, session.ErrNotFound) {
			return fmt.Errorf("revoke session: %w", err)
		}
		ended = append(ended, sid)
	}
	s.audit(ctx, SubjectLoggedOut, map[string]any{"user_id": p.UserID, "session_ids": ended})
	return nil
}

// LogoutAll ends every session of the caller.
func (s *Service) LogoutAll(ctx context.Context, p Principal) error {
	n, err := s.sessions.RevokeAll(ctx, p.UserID, "")
	if err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	s.audit(ctx, SubjectLoggedOutAll, map[string]any{"user_id": p.UserID, "sessions_ended": n})
	return nil
}

// Me loads the caller's account.
func (s *Service) Me(_ context.Context, p Principal) (User, error) {
	return p.User, nil
}

// UpdateName changes the caller's display name.
func (s *Service) UpdateName(ctx context.Context, p Principal, name string) (User, error) {
	name, err := cleanName(name)
	if err != nil {
		return User{}, err
	}
	u, err := s.users.UpdateName(ctx, p.UserID, name)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrUnauthenticated
	}
	return u, err
}

// ChangePassword replaces the caller's password after checking the current one, and
// ends every other session. A current password is a guess like a password at login (a
// stolen access token must not make an oracle): it counts in the account's login
// throttle before it is checked, and while the throttle waits even the right one gets
// login's 429 too_many_attempts. A right one resets the throttle as a login does; with
// MFA on, as at login, only a second factor does.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string) error {
	u, err := s.users.UserByID(ctx, p.UserID)
	if errors.Is(err, ErrNotFound) {
		return ErrUnauthenticated
	}
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	if err := s.checkCurrentPassword(ctx, p, u, current); err != nil {
		return err
	}
	if err := s.checkPolicy(ctx, next, u.Email); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return s.hashError(err)
	}
	stamp, err := s.users.SetPassword(ctx, u.ID, hash, []Event{passwordChanged(u, "change")}, func(ctx context.Context) error {
		_, err := s.sessions.RevokeAll(ctx, u.ID, p.SessionID)
		return err
	})
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	// The other sessions carry the old stamp and are over; this one goes on.
	if err := s.sessions.SetStamp(ctx, u.ID, p.SessionID, stamp); err != nil && !errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// reauth lets a credential change through when the caller's session authenticated
// within REAUTH_MAX_AGE, or when the request carries the right current password; a
// stolen access token alone, older than that, changes nothing. [ASVS 6.2.3, 7.5.1]
func (s *Service) reauth(ctx context.Context, p Principal, u User, currentPassword string) error {
	if currentPassword != "" {
		return s.checkCurrentPassword(ctx, p, u, currentPassword)
	}
	if !p.AuthTime.IsZero() && s.now().Sub(p.AuthTime) <= s.cfg.ReauthMaxAge {
		return nil
	}
	return ErrReauthRequired
}

// checkCurrentPassword checks a current password sent with an access token: a guess
// like a password at login (credentialAttempt), reset by a right one as a login does;
// with MFA on, as at login, only a second factor resets it.
func (s *Service) checkCurrentPassword(ctx context.Context, p Principal, u User, current string) error {
	if u.PasswordHash == "" || s.cfg.Policy.TooLong(current) {
		return ErrInvalidCredentials // nothing can match, nothing to learn
	}
	ip, err := s.credentialAttempt(ctx, p, u)
	if err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, current, u.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return s.hashError(err)
	}
	if !ok {
		return ErrInvalidCredentials
	}
	if !u.MFAEnabled {
		if err := s.limits.LoginSucceeded(ctx, u.Email, ip); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// credentialAttempt counts a credential the caller sent with an access token (the
// current password, a TOTP or recovery code) in the login throttle of the caller's
// account, exactly as /v1/auth/login and /v1/auth/login/mfa count theirs, and refuses
// it with login's answer while the throttle waits. The per-IP counter is the session's
// client IP (the one it last signed in or refreshed from), keyed like every client IP
// (ratelimit.ClientKey). It returns that IP, for the reset after a right credential.
func (s *Service) credentialAttempt(ctx context.Context, p Principal, u User) (string, error) {
	sess, err := s.sessions.Get(ctx, p.UserID, p.SessionID)
	if errors.Is(err, session.ErrNotFound) {
		return "", ErrUnauthenticated
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	allowed, wait, err := s.limits.LoginAttempt(ctx, u.Email, sess.IP)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !allowed {
		return "", &RateLimitedError{Code: "too_many_attempts", Limit: -1, RetryAfter: wait, ResetAfter: wait}
	}
	return sess.IP, nil
}

// SessionView is one of the caller's sessions.
type SessionView struct {
	session.Session
	Current bool
}

// ListSessions lists the caller's live sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, p Principal) ([]SessionView, error) {
	list, err := s.sessions.List(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := make([]SessionView, len(list))
	for i, sess := range list {
		out[i] = SessionView{Session: sess, Current: sess.ID == p.SessionID}
	}
	return out, nil
}

// RevokeSession ends one of the caller's sessions. Sessions are looked up under the
// caller's own id, so another user's session is simply not found.
func (s *Service) RevokeSession(ctx context.Context, p Principal, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	err := s.sessions.Revoke(ctx, p.UserID, id)
	if errors.Is(err, session.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// audit records a security event that is not part of a transaction of its own (a
// login, a logout). It must not change the answer, so a failure is logged here.
func (s *Service) audit(ctx context.Context, subject string, payload map[string]any) {
	if err := s.users.Enqueue(ctx, Event{Subject: subject, Payload: payload}); err != nil {
		logging.From(ctx, s.log).Error("audit event not written", zap.String("subject", subject), zap.Error(err))
	}
}

func (s *Service) loginFailed(ctx context.Context, u *User, email, reason string, c Client) {
	p := map[string]any{"reason": reason, "ip": c.IP, "user_agent": c.UserAgent}
	if u != nil {
		p["user_id"] = u.ID
	} else {
		sum := sha256.Sum256([]byte(email))
		p["email_sha256"] = hex.EncodeToString(sum[:])
	}
	s.audit(ctx, SubjectLoginFailed, p)
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

// newToken makes a verification or reset token: 256 bits from the CSPRNG; only its
// SHA-256 is stored (a fast hash is right for a secret this long).
func (s *Service) newToken(userID string, purpose Purpose, expires time.Time) (string, OneTimeToken) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	raw := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(raw))
	return raw, OneTimeToken{Hash: sum[:], UserID: userID, Purpose: purpose, ExpiresAt: expires.UTC()}
}

// hashToken refuses anything that cannot be one of our tokens before touching storage.
func hashToken(raw string) ([]byte, bool) {
	if len(raw) != 43 {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(raw); err != nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(raw))
	return sum[:], true
}

func emailPayload(u User, raw string, expires time.Time) map[string]any {
	return map[string]any{"user_id": u.ID, "email": u.Email, "name": u.Name, "token": raw, "expires_at": expires}
}

// proofEvents are the audit events of the identities proving an address unlinked and
// linked (the oauth service's subjects).
func proofEvents(u User, p Proof) []Event {
	var evs []Event
	for _, provider := range p.Unlinked {
		evs = append(evs, Event{Subject: SubjectIdentityUnlinked, Payload: map[string]any{"user_id": u.ID,
			"provider": provider, "how": "address_proven"}})
	}
	if p.Linked != "" {
		evs = append(evs, Event{Subject: SubjectIdentityLinked, Payload: map[string]any{"user_id": u.ID,
			"provider": p.Linked, "how": "address_proven"}})
	}
	return evs
}

func passwordChanged(u User, how string) Event {
	return Event{Subject: SubjectPasswordChanged, Payload: map[string]any{"user_id": u.ID, "email": u.Email, "name": u.Name, "how": how}}
}

// cleanName accepts a display name of at most 200 characters without control characters.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > 200 {
		return "", ErrInvalidName
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", ErrInvalidName
		}
	}
	return name, nil
}
