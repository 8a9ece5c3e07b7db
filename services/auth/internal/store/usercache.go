package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
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
	decoded  decodeCache
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

// cachePrefix + the user's hash tag is the user's key (session.UserKey).
const cachePrefix = "user:"

func cacheKey(userID string) (string, error) { return session.UserKey(cachePrefix, userID) }

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

// RefreshSession rotates refreshToken (session.Store.Refresh) and reads the cached
// user in the same Redis round trip: the refresh script also GETs the user's key.
// PostgreSQL only on a miss (which fills the cache) or after a tombstone (which does
// not), as User. An error with a zero Session is the rotation's (session.ErrReused,
// session.ErrInvalidToken, ...); with the session set, the user could not be loaded.
func (c *UserCache) RefreshSession(ctx context.Context, refreshToken string, m session.Meta) (session.Session, string, account.User, error) {
	sess, next, cmd, err := c.sessions.RefreshWith(ctx, refreshToken, m, cachePrefix)
	if err != nil {
		return session.Session{}, "", account.User{}, err
	}
	key, err := cacheKey(sess.UserID)
	if err != nil || cmd == nil {
		return sess, next, account.User{}, account.ErrNotFound
	}
	raw, err := cmd.Result()
	u, err := c.resolve(ctx, sess.UserID, key, raw, err)
	return sess, next, u, err
}

func (c *UserCache) resolve(ctx context.Context, userID, key, raw string, getErr error) (account.User, error) {
	switch {
	case getErr == nil && raw != tombstone:
		if u, ok := c.decoded.get(userID, raw); ok {
			return u, nil
		}
		var cu cachedUser
		if err := json.Unmarshal([]byte(raw), &cu); err == nil {
			u := cu.user()
			c.decoded.put(userID, raw, u)
			return u, nil
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

// decodeCache remembers, per user, the last cached JSON decoded and its result, so the
// per-request check skips the JSON decode while Redis answers the same bytes. Redis is
// still read on every request and the whole answer is compared, so any change there (a
// write's tombstone, a refill, an expiry) is seen at once: a hit returns exactly what
// decoding would. Hits return their own copies of the slices and times. Bounded: a full
// shard drops an arbitrary entry.
type decodeCache struct {
	shards [decodeShards]decodeShard
}

const (
	decodeShards   = 16
	decodeShardCap = 1024 // 16 384 users, ~1 KiB each
)

type decodeShard struct {
	mu sync.RWMutex
	m  map[string]decodedUser
}

type decodedUser struct {
	raw string
	u   account.User
}

func (d *decodeCache) shard(userID string) *decodeShard {
	var h uint32 = 2166136261 // FNV-1a
	for i := 0; i < len(userID); i++ {
		h = (h ^ uint32(userID[i])) * 16777619
	}
	return &d.shards[h%decodeShards]
}

func (d *decodeCache) get(userID, raw string) (account.User, bool) {
	sh := d.shard(userID)
	sh.mu.RLock()
	e, ok := sh.m[userID]
	sh.mu.RUnlock()
	if !ok || e.raw != raw {
		return account.User{}, false
	}
	return cloneUser(e.u), true
}

func (d *decodeCache) put(userID, raw string, u account.User) {
	sh := d.shard(userID)
	u = cloneUser(u)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[string]decodedUser)
	}
	if _, ok := sh.m[userID]; !ok && len(sh.m) >= decodeShardCap {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[userID] = decodedUser{raw: raw, u: u}
}

// cloneUser copies what a caller could change in place: slices and times.
func cloneUser(u account.User) account.User {
	u.Roles = slices.Clone(u.Roles)
	u.Permissions = slices.Clone(u.Permissions)
	if u.EmailVerifiedAt != nil {
		t := *u.EmailVerifiedAt
		u.EmailVerifiedAt = &t
	}
	if u.DisabledAt != nil {
		t := *u.DisabledAt
		u.DisabledAt = &t
	}
	return u
}
