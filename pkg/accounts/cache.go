package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
)

// Cache reads users (profile, roles, permissions, disabled flag) through Redis.
// Its key carries the user's hash tag, so the access-token check reads the session and
// the user in one round trip, and touches PostgreSQL only on a miss.
//
// The keys, the tombstone and the generation are pkg/usercache's, whose rules every
// writer of the users table follows (the oauth service too): writers invalidate inside
// their transaction and again after it (Store.RunInTx); a miss reads the generation
// before loading, fills only while it is unchanged, and shares a load only with
// requests that saw the same generation. So no request made after a write returned is
// answered, or cached, from a load begun before its commit.
type Cache struct {
	rdb      redis.UniversalClient
	store    *Store
	sessions *session.Store
	entries  *usercache.Store
	ttl      time.Duration
	group    singleflight.Group
	decoded  decodeCache
	// loaded, when set (tests), runs in each load after PostgreSQL answered.
	loaded func(userID string)
}

const cacheTTL = 10 * time.Minute

// NewCache returns the cache over entries (the Redis side, which store invalidates);
// store loads what is missing.
func NewCache(rdb redis.UniversalClient, store *Store, sessions *session.Store, entries *usercache.Store) *Cache {
	return &Cache{rdb: rdb, store: store, sessions: sessions, entries: entries, ttl: cacheTTL}
}

// OnLoaded makes f run in each of c's loads, after PostgreSQL answered and before the
// cache is filled: a test holds a load there to race a write against it.
func OnLoaded(c *Cache, f func(userID string)) { c.loaded = f }

func cacheKey(userID string) (string, error) { return usercache.Key(userID) }

// cachedUser is what Redis holds: never the password hash.
type cachedUser struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name"`
	VerifiedAt  *time.Time `json:"verified_at,omitempty"`
	DisabledAt  *time.Time `json:"disabled_at,omitempty"`
	MFAEnabled  bool       `json:"mfa_enabled"`
	Phone       string     `json:"phone,omitempty"`
	Roles       []string   `json:"roles"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
	// CredentialStamp is "" in entries written before stamps, which then pass.
	CredentialStamp string `json:"cs,omitempty"`
}

func toCached(u User) cachedUser {
	return cachedUser{ID: u.ID, Email: u.Email, Name: u.Name, VerifiedAt: u.EmailVerifiedAt, DisabledAt: u.DisabledAt,
		MFAEnabled: u.MFAEnabled, Phone: u.Phone, Roles: u.Roles, Permissions: u.Permissions, CreatedAt: u.CreatedAt,
		CredentialStamp: u.CredentialStamp}
}

func (c cachedUser) user() User {
	return User{ID: c.ID, Email: c.Email, Name: c.Name, EmailVerifiedAt: c.VerifiedAt, DisabledAt: c.DisabledAt,
		MFAEnabled: c.MFAEnabled, Phone: c.Phone, Roles: c.Roles, Permissions: c.Permissions, CreatedAt: c.CreatedAt,
		CredentialStamp: c.CredentialStamp}
}

// User returns the user through the cache (no password hash).
func (c *Cache) User(ctx context.Context, userID string) (User, error) {
	key, err := cacheKey(userID)
	if err != nil {
		return User{}, ErrNotFound
	}
	raw, err := c.rdb.Get(ctx, key).Result()
	return c.resolve(ctx, userID, raw, err)
}

// SessionUser returns the live session (what session.Store.LiveWith reads) and its
// user in one Redis round trip.
func (c *Cache) SessionUser(ctx context.Context, userID, sessionID string) (session.Session, User, error) {
	key, err := cacheKey(userID)
	if err != nil {
		return session.Session{}, User{}, session.ErrNotFound
	}
	sess, cmd, err := c.sessions.LiveWith(ctx, userID, sessionID, key)
	if err != nil {
		return session.Session{}, User{}, err
	}
	raw, err := cmd.Result()
	u, err := c.resolve(ctx, userID, raw, err)
	return sess, u, err
}

// BrowserSessionUser is SessionUser for a browser reference (session.Store.Browser).
func (c *Cache) BrowserSessionUser(ctx context.Context, ref string) (session.Session, User, error) {
	uid, _, err := session.ParseBrowserRef(ref)
	if err != nil {
		return session.Session{}, User{}, session.ErrNotFound
	}
	key, err := cacheKey(uid)
	if err != nil {
		return session.Session{}, User{}, session.ErrNotFound
	}
	sess, cmd, err := c.sessions.Browser(ctx, ref, key)
	if err != nil {
		return session.Session{}, User{}, err
	}
	raw, err := cmd.Result()
	u, err := c.resolve(ctx, uid, raw, err)
	return sess, u, err
}

// RefreshSession rotates refreshToken (session.Store.Refresh) and reads the cached
// user in the same Redis round trip: the refresh script also GETs the user's key.
// PostgreSQL only on a miss (which fills the cache) or after a tombstone (which does
// not), as User. An error with a zero Session is the rotation's (session.ErrReused,
// session.ErrInvalidToken, ...); with the session set, the user could not be loaded.
func (c *Cache) RefreshSession(ctx context.Context, refreshToken string, m session.Meta) (session.Session, string, User, error) {
	sess, next, cmd, err := c.sessions.RefreshWith(ctx, refreshToken, m, usercache.Prefix)
	if err != nil {
		return session.Session{}, "", User{}, err
	}
	if _, err := cacheKey(sess.UserID); err != nil || cmd == nil {
		return sess, next, User{}, ErrNotFound
	}
	raw, err := cmd.Result()
	u, err := c.resolve(ctx, sess.UserID, raw, err)
	return sess, next, u, err
}

// resolve answers the cache's reply for userID (raw, getErr): a hit is decoded; a miss
// or a tombstone loads the user from PostgreSQL (usercache's rules, see Cache).
func (c *Cache) resolve(ctx context.Context, userID, raw string, getErr error) (User, error) {
	switch {
	case getErr == nil && raw != usercache.Tombstone:
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
		return User{}, fmt.Errorf("user cache: %w", getErr)
	}
	if getErr == nil {
		// A tombstone: a write is in flight or just done. Read on our own, without
		// caching and without sharing a load that may have begun before its commit
		// (it lasts seconds; no extra Redis round trip on this path).
		u, err := c.store.UserByID(ctx, userID)
		if err != nil {
			return User{}, err
		}
		u.PasswordHash = ""
		return u, nil
	}
	// A miss. Before the load: a write whose commit the load may miss moves it after.
	gen, err := c.entries.Generation(ctx, userID)
	if err != nil {
		return User{}, err
	}
	// A load is shared only by requests that saw this generation: one made after a
	// write returned saw the write's, so it never joins a load begun before the commit.
	v, err, _ := c.group.Do(userID+"/"+gen, func() (any, error) {
		// Shared by every waiter: one caller's cancellation must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		u, err := c.store.UserByID(ctx, userID)
		if err != nil {
			return User{}, err
		}
		if c.loaded != nil {
			c.loaded(userID)
		}
		b, err := json.Marshal(toCached(u))
		if err == nil {
			// Only over no entry (a tombstone or a fresher fill wins) and only if no
			// write moved the generation since it was read.
			_, err = c.entries.Fill(ctx, userID, gen, b, c.ttl)
		}
		if err != nil {
			return User{}, err
		}
		u.PasswordHash = ""
		return u, nil
	})
	if err != nil {
		return User{}, err
	}
	return v.(User), nil
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
	u   User
}

func (d *decodeCache) shard(userID string) *decodeShard {
	var h uint32 = 2166136261 // FNV-1a
	for i := 0; i < len(userID); i++ {
		h = (h ^ uint32(userID[i])) * 16777619
	}
	return &d.shards[h%decodeShards]
}

func (d *decodeCache) get(userID, raw string) (User, bool) {
	sh := d.shard(userID)
	sh.mu.RLock()
	e, ok := sh.m[userID]
	sh.mu.RUnlock()
	if !ok || e.raw != raw {
		return User{}, false
	}
	return cloneUser(e.u), true
}

func (d *decodeCache) put(userID, raw string, u User) {
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
func cloneUser(u User) User {
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

// Accounts is the store the cache loads through (and whose writes invalidate it).
func (c *Cache) Accounts() *Store { return c.store }
