package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/pkg/tokenhook"
	"github.com/talentforge/auth/pkg/usercache"
)

// SessionsOption changes how NewSessions builds the sessions.
type SessionsOption func(*Sessions)

// WithHook shows every pair the sessions mint (sign-ins of any factor, MFA finishes,
// refreshes) to the access-token hook before it is signed; its claims go under ext.
// nil: no hook.
func WithHook(h *tokenhook.Hook) SessionsOption {
	return func(s *Sessions) { s.hook = h }
}

// draft builds the access-token claims of u in sess and, with a hook, shows them to it
// and puts its claims under ext. A hook failing closed is ErrUnavailable.
func (s *Sessions) draft(ctx context.Context, typ string, u User, sess session.Session) (token.AccessClaims, error) {
	claims, err := s.tokens.Draft(u.ID, sess.ID, sess.CreatedAt, u.Roles, sess.AMR)
	if err != nil {
		return token.AccessClaims{}, fmt.Errorf("issue access token: %w", err)
	}
	if s.hook == nil {
		return claims, nil
	}
	ext, err := s.hook.Extend(ctx, tokenhook.Request{Type: typ, User: ViewUser(u),
		Session: tokenhook.Session{ID: sess.ID, AMR: claims.AMR, CreatedAt: sess.CreatedAt.UTC()},
		Claims:  claims})
	if err != nil {
		if errors.Is(err, tokenhook.ErrUnavailable) {
			return token.AccessClaims{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return token.AccessClaims{}, fmt.Errorf("access-token hook: %w", err)
	}
	claims.Ext = ext
	return claims, nil
}

// hookBefore is the hook's part of a refresh, before the rotation: it checks that the
// rotation would accept rt (the live token, or the one just rotated away within the
// grace; session.Store.PeekWith) without rotating anything, reads the session and its
// user as the rotation will (one Redis round trip), and shows the draft claims to the
// hook. It returns those claims, ext set; nil claims (and no error) when there is no
// hook or rt would not rotate for a usable user: the rotation then answers as it does
// without a hook (invalid, reused, a disabled user). A hook failing closed is
// ErrUnavailable, with rt untouched.
func (s *Sessions) hookBefore(ctx context.Context, rt string) (*token.AccessClaims, error) {
	if s.hook == nil {
		return nil, nil
	}
	// Peeked first even while the breaker is open: a token that will not rotate gets
	// the rotation's answer (a reuse still ends its session), not a 503.
	sess, u, err := s.cache.peekSession(ctx, rt)
	switch {
	case errors.Is(err, session.ErrInvalidToken), errors.Is(err, session.ErrNotFound), errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("refresh session: %w", err)
	case u.DisabledAt != nil || !sess.Stamped(u.CredentialStamp):
		return nil, nil
	}
	claims, err := s.draft(ctx, tokenhook.TypeRefreshed, u, sess)
	if err != nil {
		return nil, err
	}
	return &claims, nil
}

// peekSession is RefreshSession without the rotation (session.Store.PeekWith): the
// session rt would refresh and its cached user, in one round trip, changing nothing.
func (c *Cache) peekSession(ctx context.Context, rt string) (session.Session, User, error) {
	sess, cmd, err := c.sessions.PeekWith(ctx, rt, usercache.Prefix)
	if err != nil {
		return session.Session{}, User{}, err
	}
	if _, err := cacheKey(sess.UserID); err != nil || cmd == nil {
		return session.Session{}, User{}, ErrNotFound
	}
	raw, err := cmd.Result()
	u, err := c.resolve(ctx, sess.UserID, raw, err)
	return sess, u, err
}
