package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/password"
	"github.com/talentforge/auth/pkg/session"
)

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
	if err := s.loginAttempt(ctx, email, c.IP); err != nil {
		return TokenPair{}, err
	}
	u, rehash, err := s.checkPassword(ctx, email, pw, c)
	if err != nil {
		return TokenPair{}, err
	}
	if err := s.admit(ctx, u, email, c); err != nil {
		return TokenPair{}, err
	}
	if rehash {
		s.upgradeHash(ctx, u, pw)
	}
	if u, err = s.grantConfiguredAdmin(ctx, u); err != nil {
		return TokenPair{}, err
	}
	if u.MFAEnabled {
		return s.startMFA(ctx, u, []string{"pwd"}, c)
	}
	pair, err := s.core.Open(ctx, u, []string{"pwd"}, c)
	if err != nil {
		return TokenPair{}, err
	}
	s.audit(ctx, events.SubjectLoginSucceeded, events.LoginSucceeded{UserID: u.ID, SessionID: pair.SessionID,
		AMR: []string{"pwd"}, IP: c.IP, UserAgent: c.UserAgent})
	return pair, nil
}

// loginAttempt counts an attempt on the account in the login throttle, and refuses it
// while the account or the client is throttled.
func (s *Service) loginAttempt(ctx context.Context, email, ip string) error {
	allowed, wait, err := s.limits.LoginAttempt(ctx, email, ip)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !allowed {
		return &RateLimitedError{Code: "too_many_attempts", Limit: -1, RetryAfter: wait, ResetAfter: wait}
	}
	return nil
}

// checkPassword returns the account of email when pw is its password, and whether its
// hash wants an upgrade. An unknown address or an account without a password costs a
// hash all the same; every failure is audited.
func (s *Service) checkPassword(ctx context.Context, email, pw string, c Client) (User, bool, error) {
	u, err := s.users.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, false, fmt.Errorf("load user: %w", err)
	}
	if err != nil || u.PasswordHash == "" {
		if err := s.hasher.DummyVerify(ctx, pw); err != nil {
			return User{}, false, s.hashError(err)
		}
		var known *User
		if err == nil {
			known = &u
		}
		s.loginFailed(ctx, known, email, "invalid_credentials", c)
		return User{}, false, ErrInvalidCredentials
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return User{}, false, s.hashError(err)
	}
	if !ok {
		s.loginFailed(ctx, &u, email, "invalid_credentials", c)
		return User{}, false, ErrInvalidCredentials
	}
	return u, rehash, nil
}

// admit decides about an account whose password was right: the throttle forgets the
// failures unless a second factor is still to come (wrong codes count), and a disabled
// or (when required) unverified account is refused.
func (s *Service) admit(ctx context.Context, u User, email string, c Client) error {
	if !u.MFAEnabled {
		if err := s.limits.LoginSucceeded(ctx, email, c.IP); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if u.DisabledAt != nil {
		s.loginFailed(ctx, &u, email, "account_disabled", c)
		return ErrAccountDisabled
	}
	if s.cfg.EmailVerificationRequired && !u.Verified() {
		s.loginFailed(ctx, &u, email, "email_not_verified", c)
		return ErrEmailNotVerified
	}
	return nil
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
	pair, err := s.core.Refresh(ctx, rt, c)
	switch {
	case errors.Is(err, session.ErrReused):
		uid, sid, _ := session.ParseRefreshToken(rt)
		s.audit(ctx, events.SubjectRefreshReused, events.RefreshReused{UserID: uid, SessionID: sid, IP: c.IP, UserAgent: c.UserAgent})
		return TokenPair{}, ErrRefreshTokenReused
	case errors.Is(err, session.ErrInvalidToken), errors.Is(err, accounts.ErrUnauthenticated):
		// A session opened with a password since replaced ends like one of a disabled user.
		return TokenPair{}, ErrInvalidRefreshToken
	}
	return pair, err
}

// Authenticate checks an access token, its live session and its user (the account
// core's check, one Redis round trip).
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	return s.core.Authenticate(ctx, raw)
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
	s.audit(ctx, events.SubjectLoggedOut, events.LoggedOut{UserID: p.UserID, SessionIDs: ended})
	return nil
}

// LogoutAll ends every session of the caller.
func (s *Service) LogoutAll(ctx context.Context, p Principal) error {
	n, err := s.sessions.RevokeAll(ctx, p.UserID, "")
	if err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	s.audit(ctx, events.SubjectLoggedOutAll, events.LoggedOutAll{UserID: p.UserID, SessionsEnded: n})
	return nil
}

// AuthenticateBrowser checks the hosted UI's session cookie as Authenticate checks an
// access token: its live session and its user.
func (s *Service) AuthenticateBrowser(ctx context.Context, ref string) (Principal, error) {
	return s.core.AuthenticateBrowser(ctx, ref)
}

// BindBrowser returns the browser reference of the session pair opened: what the hosted
// UI keeps in its cookie. The pair's tokens are the caller's to drop.
func (s *Service) BindBrowser(ctx context.Context, pair TokenPair) (string, error) {
	return s.core.BindBrowser(ctx, pair.User.ID, pair.SessionID)
}
