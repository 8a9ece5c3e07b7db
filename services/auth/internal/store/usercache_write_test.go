package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/redistest"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/store"
)

var (
	oldRoles = []string{"user"}
	newRoles = []string{"admin", "user"}
)

func rolesSet(userID string) account.Event {
	return account.Event{Subject: events.SubjectUserRolesSet, Payload: map[string]any{"user_id": userID, "roles": newRoles}}
}

// waitFor polls cond (a state of PostgreSQL or Redis the test cannot be told of).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestSetRolesSlowCommit: SetRoles' COMMIT outlasts its tombstone, and a reader fills
// the cache with the old roles meanwhile (it may: the write has not committed). Once
// SetRoles has returned, the roles read are the new ones.
func TestSetRolesSlowCommit(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t), "EMAIL_VERIFICATION_REQUIRED": "false"})
	u := e.Register(apitest.Email("cache-slow-commit"))
	ctx := context.Background()
	rdb := redistest.Client(t)
	cache := store.NewUserCache(rdb, e.App.DB, session.New(rdb), usercache.WithTombstoneTTL(50*time.Millisecond))
	adm := store.NewAdmin(store.NewUsers(e.App.DB, cache, e.App.EventKeys))
	key, err := usercache.Key(u.ID)
	if err != nil {
		t.Fatal(err)
	}

	// In this test's database, the COMMIT of a change of user_roles waits for an
	// advisory lock that the test holds.
	const lock = 1515
	for _, q := range []string{
		`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN PERFORM pg_advisory_xact_lock(1515); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR DELETE ON user_roles
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`,
	} {
		if _, err := e.App.DB.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := e.App.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", lock); err != nil {
		t.Fatal(err)
	}
	unlock := sync.OnceFunc(func() {
		if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", lock); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(unlock)
	e.ForgetCachedUser(u.ID)

	done := make(chan error, 1)
	go func() {
		_, err := adm.SetRoles(ctx, u.ID, newRoles, rolesSet(u.ID))
		done <- err
	}()
	waitFor(t, "SetRoles' COMMIT waits", func() bool {
		var n int
		err := e.App.DB.NewRaw(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = ? AND NOT granted`, lock).Scan(ctx, &n)
		return err == nil && n == 1
	})
	waitFor(t, "its tombstone has expired", func() bool { n, err := rdb.Exists(ctx, key).Result(); return err == nil && n == 0 })

	got, err := cache.User(ctx, u.ID)
	if err != nil || !slices.Equal(got.Roles, oldRoles) {
		t.Fatalf("read during the COMMIT = %v, %v; want the old roles %v", got.Roles, err, oldRoles)
	}
	if raw, _ := rdb.Get(ctx, key).Result(); raw == "" || raw == usercache.Tombstone {
		t.Fatalf("the read during the COMMIT did not fill the cache (%q): no race to test", raw)
	}

	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err = cache.User(ctx, u.ID)
	if err != nil || !slices.Equal(got.Roles, newRoles) {
		t.Fatalf("after SetRoles returned, roles = %v, %v; want %v: the row loaded before the COMMIT is still cached",
			got.Roles, err, newRoles)
	}
}

// TestSetRolesInFlightLoad: a read made after SetRoles returned never shares a load
// that began before its commit, and that load does not fill the cache.
func TestSetRolesInFlightLoad(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t), "EMAIL_VERIFICATION_REQUIRED": "false"})
	u := e.Register(apitest.Email("cache-in-flight"))
	ctx := context.Background()
	rdb := redistest.Client(t)
	cache := store.NewUserCache(rdb, e.App.DB, session.New(rdb))
	adm := store.NewAdmin(store.NewUsers(e.App.DB, cache, e.App.EventKeys))
	key, err := usercache.Key(u.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The first load waits, once PostgreSQL answered, until released.
	loaded, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	var first atomic.Bool
	store.OnLoaded(cache, func(string) {
		if first.CompareAndSwap(false, true) {
			close(loaded)
			<-release
		}
	})
	e.ForgetCachedUser(u.ID)

	type result struct {
		u   account.User
		err error
	}
	read := func() <-chan result {
		ch := make(chan result, 1)
		go func() {
			u, err := cache.User(ctx, u.ID)
			ch <- result{u, err}
		}()
		return ch
	}
	before := read()
	select {
	case <-loaded: // it holds the old roles
	case <-time.After(10 * time.Second):
		t.Fatal("the first read never loaded")
	}
	if _, err := adm.SetRoles(ctx, u.ID, newRoles, rolesSet(u.ID)); err != nil {
		t.Fatal(err)
	}

	after := read()
	var got result
	select {
	case got = <-after:
	case <-time.After(3 * time.Second):
		// Still waiting: it joined the load begun before the commit. Let that finish.
		releaseOnce()
		got = <-after
	}
	releaseOnce()
	if got.err != nil || !slices.Equal(got.u.Roles, newRoles) {
		t.Fatalf("read after SetRoles returned = %v, %v; want %v: it shared a load begun before the commit",
			got.u.Roles, got.err, newRoles)
	}
	if b := <-before; b.err != nil || !slices.Equal(b.u.Roles, oldRoles) {
		t.Fatalf("the read begun before = %v, %v; want the old roles %v", b.u.Roles, b.err, oldRoles)
	}
	raw, err := rdb.Get(ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	if raw != "" && raw != usercache.Tombstone {
		var entry struct{ Roles []string }
		if err := json.Unmarshal([]byte(raw), &entry); err != nil || !slices.Equal(entry.Roles, newRoles) {
			t.Fatalf("cached after the write: %s", raw)
		}
	}
}

// TestSessionUserOfReplacedUser is auth's half of the oauth service's ReplaceUnverified
// (whose half is tested there): a user cached by a token check, deleted by a transaction
// of another service that invalidates through pkg/usercache, is "not found" to the next
// check of that token, although its session lives on.
func TestSessionUserOfReplacedUser(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t), "EMAIL_VERIFICATION_REQUIRED": "false"})
	u := e.Register(apitest.Email("cache-replaced"))
	ctx := context.Background()
	rdb := redistest.Client(t)
	sessions := session.New(rdb)
	cache := store.NewUserCache(rdb, e.App.DB, sessions)
	sess, _, err := sessions.Create(ctx, u.ID, u.Email, []string{"pwd"}, "", session.Meta{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	e.ForgetCachedUser(u.ID)
	if _, got, err := cache.SessionUser(ctx, u.ID, sess.ID); err != nil || got.ID != u.ID {
		t.Fatalf("SessionUser = %+v, %v", got, err)
	}

	w := usercache.New(rdb).Begin()
	err = e.App.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM users WHERE id = ?", u.ID); err != nil {
			return err
		}
		return w.Invalidate(ctx, u.ID)
	})
	if err := errors.Join(err, w.Done(ctx)); err != nil {
		t.Fatal(err)
	}

	if _, got, err := cache.SessionUser(ctx, u.ID, sess.ID); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("SessionUser of the deleted user = %+v, %v; want account.ErrNotFound", got, err)
	}
}
