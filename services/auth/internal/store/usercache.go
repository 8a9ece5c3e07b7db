package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/services/auth/internal/account"
)

var _ account.Profiles = (*UserCache)(nil)

// UserCache reads users (profile, roles, permissions, disabled flag) through Redis.
// Its key carries the user's hash tag, so the access-token check reads the session and
// the user in one round trip, and touches PostgreSQL only on a miss.
//
// Writers invalidate inside their transaction by writing a short tombstone: a reader
// that loaded the old row just before the commit sees the tombstone and does not cache
// it, so a stale user cannot outlive the write.
type UserCache struct {
	rdb      redis.UniversalClient
	db       *postgres.DB
	sessions *session.Store
	ttl      time.Duration
	group    singleflight.Group
}

const (
	cacheTTL     = 10 * time.Minute
	tombstoneTTL = 5 * time.Second
	tombstone    = "-"
)

// NewUserCache returns the cache.
func NewUserCache(rdb redis.UniversalClient, db *postgres.DB, sessions *session.Store) *UserCache {
	return &UserCache{rdb: rdb, db: db, sessions: sessions, ttl: cacheTTL}
}

func cacheKey(userID string) (string, error) { return session.UserKey("user:", userID) }

// cachedUser is what Redis holds: never the password hash.
type cachedUser struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name"`
	VerifiedAt  *time.Time `json:"verified_at,omitempty"`
	DisabledAt  *time.Time `json:"disabled_at,omitempty"`
	MFAEnabled  bool       `json:"mfa_enabled"`
	Roles       []string   `json:"roles"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
}

func toCached(u account.User) cachedUser {
	return cachedUser{ID: u.ID, Email: u.Email, Name: u.Name, VerifiedAt: u.EmailVerifiedAt, DisabledAt: u.DisabledAt,
		MFAEnabled: u.MFAEnabled, Roles: u.Roles, Permissions: u.Permissions, CreatedAt: u.CreatedAt}
}

func (c cachedUser) user() account.User {
	return account.User{ID: c.ID, Email: c.Email, Name: c.Name, EmailVerifiedAt: c.VerifiedAt, DisabledAt: c.DisabledAt,
		MFAEnabled: c.MFAEnabled, Roles: c.Roles, Permissions: c.Permissions, CreatedAt: c.CreatedAt}
}

// User returns the user through the cache (no password hash).
func (c *UserCache) User(ctx context.Context, userID string) (account.User, error) {
	key, err := cacheKey(userID)
	if err != nil {
		return account.User{}, account.ErrNotFound
	}
	raw, err := c.rdb.Get(ctx, key).Result()
	return c.resolve(ctx, userID, key, raw, err)
}

// SessionUser returns the live session and its user in one Redis round trip.
func (c *UserCache) SessionUser(ctx context.Context, userID, sessionID string) (session.Session, account.User, error) {
	key, err := cacheKey(userID)
	if err != nil {
		return session.Session{}, account.User{}, session.ErrNotFound
	}
	sess, cmd, err := c.sessions.GetWith(ctx, userID, sessionID, key)
	if err != nil {
		return session.Session{}, account.User{}, err
	}
	raw, err := cmd.Result()
	u, err := c.resolve(ctx, userID, key, raw, err)
	return sess, u, err
}

func (c *UserCache) resolve(ctx context.Context, userID, key, raw string, getErr error) (account.User, error) {
	switch {
	case getErr == nil && raw != tombstone:
		var cu cachedUser
		if err := json.Unmarshal([]byte(raw), &cu); err == nil {
			return cu.user(), nil
		}
	case getErr != nil && !errors.Is(getErr, redis.Nil):
		return account.User{}, fmt.Errorf("user cache: %w", getErr)
	}
	fill := getErr != nil // a miss; after a tombstone, read without caching
	v, err, _ := c.group.Do(userID, func() (any, error) {
		// Shared by every waiter: one caller's cancellation must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		u, err := (&Users{db: c.db}).UserByID(ctx, userID)
		if err != nil {
			return account.User{}, err
		}
		if fill {
			b, err := json.Marshal(toCached(u))
			if err == nil {
				// NX: a tombstone written meanwhile wins, and so does a fresher fill.
				err = c.rdb.SetArgs(ctx, key, b, redis.SetArgs{Mode: "NX", TTL: c.ttl}).Err()
			}
			if err != nil && !errors.Is(err, redis.Nil) {
				return account.User{}, fmt.Errorf("user cache fill: %w", err)
			}
		}
		u.PasswordHash = ""
		return u, nil
	})
	if err != nil {
		return account.User{}, err
	}
	return v.(account.User), nil
}

// Invalidate drops the cached users, leaving a tombstone that keeps readers of the
// old rows from filling the cache until the writer's transaction has committed.
func (c *UserCache) Invalidate(ctx context.Context, userIDs ...string) error {
	if len(userIDs) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range userIDs {
			key, err := cacheKey(id)
			if err != nil {
				continue
			}
			p.Set(ctx, key, tombstone, tombstoneTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("invalidate user cache: %w", err)
	}
	return nil
}

func invalidateIDs(ids ...uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
