package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/pkg/tokenhook"
)

// Tokens mints and checks access tokens (token.Issuer and token.Verifier): Draft builds
// the claims, which the access-token hook may see and extend, and Sign signs them.
type Tokens interface {
	Draft(userID, sessionID string, authTime time.Time, roles, amr []string) (token.AccessClaims, error)
	Sign(claims token.AccessClaims) (string, error)
	Verify(raw string) (*token.AccessClaims, error)
	TTL() time.Duration
}

// JWT joins the issuer and the verifier of one key set into Tokens.
type JWT struct {
	*token.Issuer
	*token.Verifier
}

// Pair is what a sign-in or a refresh answers: a token pair, or, for an account with
// MFA on, only the MFA token that auth's /v1/auth/login/mfa redeems with a code.
type Pair struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds
	User         User
	SessionID    string
	MFARequired  bool
	MFAToken     string
	// MFAFactors are the second factors the account may answer with ("totp",
	// "recovery_code", "webauthn"), when the service knows them.
	MFAFactors []string
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
	// Claims are the verified access token's claims (ext, the hook's, included); nil
	// when the caller was not authenticated by an access token. Read-only.
	Claims *token.AccessClaims
}

// HasRole reports whether the principal holds role.
func (p Principal) HasRole(role string) bool { return p.User.HasRole(role) }

// HasPermission reports whether the principal holds permission.
func (p Principal) HasPermission(perm string) bool { return p.User.HasPermission(perm) }

// Sessions opens sessions and mints their tokens, checks bearer tokens and rotates
// refresh tokens, the same way in every service.
type Sessions struct {
	cache      *Cache
	sessions   *session.Store
	tokens     Tokens
	challenges *mfachallenge.Store
	// hook, when set, is shown every pair before it is signed (WithHook).
	hook *tokenhook.Hook
}

// NewSessions returns the sessions; challenges (nil: MFA logins fail as unavailable)
// keeps the pending second factors.
func NewSessions(cache *Cache, sessions *session.Store, tokens Tokens, challenges *mfachallenge.Store, opts ...SessionsOption) *Sessions {
	s := &Sessions{cache: cache, sessions: sessions, tokens: tokens, challenges: challenges}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Store is the session store itself (listing and revoking).
func (s *Sessions) Store() *session.Store { return s.sessions }

// SignIn finishes a first factor proven by amr: for an account with MFA on a pending
// challenge (a single-use token, 256 bits from the CSPRNG, kept only as its hash; no
// JWT, so it never passes as a bearer token), else a session and its pair.
func (s *Sessions) SignIn(ctx context.Context, u User, amr []string, m session.Meta) (Pair, error) {
	if !u.MFAEnabled {
		return s.Open(ctx, u, amr, m)
	}
	if s.challenges == nil {
		return Pair{}, fmt.Errorf("%w: MFA is not configured", ErrUnavailable)
	}
	raw, hash := mfachallenge.NewToken()
	if err := s.challenges.Create(ctx, hash, mfachallenge.Challenge{UserID: u.ID, IP: m.IP, UserAgent: m.UserAgent,
		AMR: amr, Stamp: u.CredentialStamp}, mfachallenge.TTL); err != nil {
		return Pair{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Pair{MFARequired: true, MFAToken: raw, User: u}, nil
}

// Open opens a session for an authenticated user and mints its pair. With the
// access-token hook failing closed, a failure (or its open breaker) is ErrUnavailable
// and the session is ended again: nothing was issued.
func (s *Sessions) Open(ctx context.Context, u User, amr []string, m session.Meta) (Pair, error) {
	if s.hook != nil && s.hook.Rejecting() {
		return Pair{}, fmt.Errorf("%w: %w", ErrUnavailable, tokenhook.ErrUnavailable)
	}
	sess, rt, err := s.sessions.Create(ctx, u.ID, u.Email, amr, u.CredentialStamp, m)
	if err != nil {
		return Pair{}, fmt.Errorf("create session: %w", err)
	}
	claims, err := s.draft(ctx, tokenhook.TypeIssued, u, sess)
	if err != nil {
		_ = s.sessions.Revoke(context.WithoutCancel(ctx), sess.UserID, sess.ID)
		return Pair{}, err
	}
	return s.mint(u, sess, rt, claims)
}

// mint signs claims (s.draft's) into u's pair of sess with refresh token rt.
func (s *Sessions) mint(u User, sess session.Session, rt string, claims token.AccessClaims) (Pair, error) {
	at, err := s.tokens.Sign(claims)
	if err != nil {
		return Pair{}, fmt.Errorf("issue access token: %w", err)
	}
	return Pair{AccessToken: at, RefreshToken: rt, ExpiresIn: int(s.tokens.TTL().Seconds()), User: u, SessionID: sess.ID}, nil
}

// Refresh rotates a refresh token (see the session store for the grace and reuse rules)
// and mints an access token with the user's current roles, reading the rotation and the
// cached user in one Redis round trip. session.ErrReused and session.ErrInvalidToken are
// the rotation's answers; ErrUnauthenticated: the session's user is gone or disabled,
// or the session was opened with a password since replaced, and the session is ended.
//
// With the access-token hook, the hook is called before the rotation (hookBefore):
// when it fails closed nothing was rotated, so the client's retry with the same token
// is an ordinary refresh, however late, never a replay nor a reuse.
func (s *Sessions) Refresh(ctx context.Context, rt string, m session.Meta) (Pair, error) {
	pre, err := s.hookBefore(ctx, rt)
	if err != nil {
		return Pair{}, err
	}
	sess, next, u, err := s.cache.RefreshSession(ctx, rt, m)
	switch {
	case err == nil || sess.ID != "": // rotated; err, if any, is the user's
	case errors.Is(err, session.ErrReused), errors.Is(err, session.ErrInvalidToken):
		return Pair{}, err
	default:
		return Pair{}, fmt.Errorf("refresh session: %w", err)
	}
	if errors.Is(err, ErrNotFound) || (err == nil && (u.DisabledAt != nil || !sess.Stamped(u.CredentialStamp))) {
		_ = s.sessions.Revoke(ctx, sess.UserID, sess.ID)
		return Pair{}, ErrUnauthenticated
	}
	if err != nil {
		return Pair{}, fmt.Errorf("load user: %w", err)
	}
	var claims token.AccessClaims
	if pre != nil && pre.SessionID == sess.ID && pre.Subject == u.ID {
		// The claims the hook saw, with the roles the rotation read (a grant or
		// revoke in between is not missed; the claim is only a hint anyway).
		claims = *pre
		claims.Roles = slices.Clone(u.Roles)
		if claims.Roles == nil {
			claims.Roles = []string{}
		}
	} else if claims, err = s.draft(ctx, tokenhook.TypeRefreshed, u, sess); err != nil {
		// No hook; or, with one, the peek had nothing to show it (the token rotated
		// in between, a race): the hook is then asked after the rotation.
		return Pair{}, err
	}
	return s.mint(u, sess, next, claims)
}

// Authenticate checks an access token, that its session is live and that its user is
// not disabled: one Redis round trip (session and cached user together), PostgreSQL
// only on a cache miss. Logout, disable and role changes are seen at once.
func (s *Sessions) Authenticate(ctx context.Context, raw string) (Principal, error) {
	claims, err := s.tokens.Verify(raw)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	sess, u, err := s.cache.SessionUser(ctx, claims.Subject, claims.SessionID)
	if err := live(sess, u, err); err != nil {
		return Principal{}, err
	}
	return Principal{User: u, UserID: claims.Subject, SessionID: claims.SessionID, AMR: claims.AMR,
		AuthTime: sess.CreatedAt, Claims: claims}, nil
}

// AuthenticateBrowser is Authenticate for the hosted UI's session cookie (a reference
// from BindBrowser): the same live checks of the session and its user. The Principal
// has no Claims and no AMR.
func (s *Sessions) AuthenticateBrowser(ctx context.Context, ref string) (Principal, error) {
	sess, u, err := s.cache.BrowserSessionUser(ctx, ref)
	if err := live(sess, u, err); err != nil {
		return Principal{}, err
	}
	return Principal{User: u, UserID: sess.UserID, SessionID: sess.ID, AuthTime: sess.CreatedAt}, nil
}

// BindBrowser returns a browser reference to the live session sid of the user uid (see
// session.Store.BindBrowser): what the hosted UI keeps in its cookie instead of tokens.
func (s *Sessions) BindBrowser(ctx context.Context, uid, sid string) (string, error) {
	ref, err := s.sessions.BindBrowser(ctx, uid, sid)
	if errors.Is(err, session.ErrNotFound) {
		return "", ErrUnauthenticated
	}
	return ref, err
}

// live is the check of every authenticated request on what SessionUser read.
func live(sess session.Session, u User, err error) error {
	switch {
	case errors.Is(err, session.ErrNotFound), errors.Is(err, ErrNotFound):
		return ErrUnauthenticated
	case err != nil:
		return fmt.Errorf("load session: %w", err)
	case u.DisabledAt != nil:
		return ErrUnauthenticated
	case !sess.Stamped(u.CredentialStamp):
		// Opened with a password that has changed since (a login that raced a reset
		// or a change and came in after their RevokeAll): over, whatever the order.
		return ErrUnauthenticated
	}
	return nil
}
