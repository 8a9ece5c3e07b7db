package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/password"
	"github.com/talentforge/auth/pkg/session"
)

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
