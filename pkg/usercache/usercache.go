// Package usercache owns the Redis side of the auth service's user cache: the key of a
// user's entry, the tombstone and the generation that writers use to invalidate it, and
// the fill that readers use to cache what they loaded. auth reads and fills the cache;
// every service that writes the users table (auth, oauth) invalidates through here.
//
// The rules, for a user U:
//   - A writer invalidates U inside its transaction, before the commit, and again once
//     the transaction has ended (Writes). Each invalidation moves U's generation and
//     writes a short tombstone over U's entry.
//   - A reader that finds a tombstone loads U on its own, without caching it and without
//     sharing the load. One that finds no entry reads U's generation before loading U
//     from PostgreSQL, and fills only if the generation is still that one and there is
//     no entry (Fill, one script). A load begun before a commit therefore never fills
//     after the writer's second invalidation, however slow the COMMIT or the load.
//   - A reader that shares loads between requests keys them by the generation it read,
//     so no request made after a write has returned is answered by a load begun before.
//
// The entry and the generation carry the user's hash tag (session.UserKey): they live on
// the node of the user's sessions, so the access-token check reads the session and the
// entry in one round trip, and the fill script may touch both.
package usercache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/session"
)

const (
	// Prefix + the user's hash tag is the user's entry (session.UserKey).
	Prefix = "user:"
	// Tombstone is the entry of a user being written: readers load without caching.
	Tombstone = "-"

	genPrefix = "usergen:"
	// DefaultTombstoneTTL bounds how long readers skip the cache after a write.
	DefaultTombstoneTTL = 5 * time.Second
	// genTTL only has to outlive a load (bounded to seconds by its reader); a
	// generation that expired reads "" again, which no load in flight can hold.
	genTTL = time.Hour
	// chunk bounds one pipeline (a role deleted from many users).
	chunk = 1000
	// doneTimeout bounds the invalidation after a transaction.
	doneTimeout = 5 * time.Second
)

// Key returns the user's entry.
func Key(userID string) (string, error) { return session.UserKey(Prefix, userID) }

func genKey(userID string) (string, error) { return session.UserKey(genPrefix, userID) }

// Store reads and writes the cache's entries and generations.
type Store struct {
	rdb          redis.UniversalClient
	tombstoneTTL time.Duration
}

// Option changes a Store.
type Option func(*Store)

// WithTombstoneTTL sets how long a tombstone lasts (DefaultTombstoneTTL).
func WithTombstoneTTL(d time.Duration) Option { return func(s *Store) { s.tombstoneTTL = d } }

// New returns the store.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{rdb: rdb, tombstoneTTL: DefaultTombstoneTTL}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Invalidate moves each user's generation and writes a tombstone over its entry. Ids
// that are no user id are skipped: they have no entry.
func (s *Store) Invalidate(ctx context.Context, userIDs ...string) error {
	for part := range slices.Chunk(userIDs, chunk) {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range part {
				key, err1 := Key(id)
				gen, err2 := genKey(id)
				if err1 != nil || err2 != nil {
					continue
				}
				// Generation first: a reader that sees the tombstone reads the new one.
				p.Incr(ctx, gen)
				p.PExpire(ctx, gen, genTTL)
				p.Set(ctx, key, Tombstone, s.tombstoneTTL)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("invalidate user cache: %w", err)
		}
	}
	return nil
}

// Generation returns the user's generation ("" before the first write), to read before
// loading the user and to pass to Fill.
func (s *Store) Generation(ctx context.Context, userID string) (string, error) {
	gen, err := genKey(userID)
	if err != nil {
		return "", err
	}
	g, err := s.rdb.Get(ctx, gen).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("user cache generation: %w", err)
	}
	return g, nil
}

// fillScript sets the entry only when it is absent and no write moved the generation
// since the reader read it. KEYS: entry, generation. ARGV: the generation read, the
// entry's value, its TTL in milliseconds.
var fillScript = redis.NewScript(`
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// Fill caches value as the user's entry for ttl if there is no entry and the generation
// is still gen (read with Generation before the load); false when it did not.
func (s *Store) Fill(ctx context.Context, userID, gen string, value []byte, ttl time.Duration) (bool, error) {
	key, err1 := Key(userID)
	g, err2 := genKey(userID)
	if err1 != nil || err2 != nil {
		return false, nil
	}
	n, err := fillScript.Run(ctx, s.rdb, []string{key, g}, gen, value, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("user cache fill: %w", err)
	}
	return n == 1, nil
}

// Writes is what one transaction changes of the cached users. Invalidate them inside the
// transaction, before its commit; call Done once the transaction has ended, whatever its
// outcome (a failed COMMIT may have committed).
type Writes struct {
	s   *Store
	ids []string
}

// Begin starts the invalidations of one transaction. On a nil Store they do nothing.
func (s *Store) Begin() *Writes { return &Writes{s: s} }

// Invalidate invalidates the users now and remembers them for Done.
func (w *Writes) Invalidate(ctx context.Context, userIDs ...string) error {
	if w.s == nil || len(userIDs) == 0 {
		return nil
	}
	w.ids = append(w.ids, userIDs...)
	return w.s.Invalidate(ctx, userIDs...)
}

// Done invalidates the users again, after the transaction: what a reader loaded before
// the commit and cached since (a COMMIT slower than the tombstone) is replaced, and the
// moved generation keeps loads begun before it from filling or being shared. It ignores
// ctx's cancellation: a caller that gave up must not leave a stale entry behind.
func (w *Writes) Done(ctx context.Context) error {
	if w.s == nil || len(w.ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), doneTimeout)
	defer cancel()
	if err := w.s.Invalidate(ctx, w.ids...); err != nil {
		return fmt.Errorf("after commit: %w", err)
	}
	return nil
}
