package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/redistest"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/store"
)

// roundTrips counts what a client sends: each Process and each pipeline is one round
// trip to Redis.
type roundTrips struct{ n atomic.Int64 }

var _ redis.Hook = (*roundTrips)(nil)

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRefreshSession: a refresh rotates the token and reads the cached user in one
// Redis round trip; a miss fills the cache from PostgreSQL; a tombstone (a write in
// flight or just committed) is obeyed: the user comes from PostgreSQL and is not cached.
func TestRefreshSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t), "EMAIL_VERIFICATION_REQUIRED": "false"})
	u := e.Register(apitest.Email("cache-refresh"))
	ctx := context.Background()

	rdb := redistest.Client(t)
	trips := &roundTrips{}
	rdb.AddHook(trips)
	sessions := session.New(rdb)
	cache := store.NewUserCache(rdb, e.App.DB, sessions)
	users := store.NewUsers(e.App.DB, cache, e.App.EventKeys)
	key, err := session.UserKey("user:", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	cached := func() string {
		t.Helper()
		v, err := rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	m := session.Meta{IP: "192.0.2.1", UserAgent: "test"}
	_, rt, err := sessions.Create(ctx, u.ID, u.Email, []string{"pwd"}, "", m)
	if err != nil {
		t.Fatal(err)
	}
	e.ForgetCachedUser(u.ID)

	// A miss: PostgreSQL, then the cache is filled.
	sess, rt1, got, err := cache.RefreshSession(ctx, rt, m)
	if err != nil {
		t.Fatal(err)
	}
	if sess.UserID != u.ID || rt1 == "" || rt1 == rt || got.ID != u.ID || got.Email != u.Email || got.PasswordHash != "" {
		t.Fatalf("RefreshSession = %+v, %q, %+v", sess, rt1, got)
	}
	filled := cached()
	if filled == "" || filled == "-" {
		t.Fatalf("a miss did not fill the cache: %q", filled)
	}

	// A hit: one round trip (the refresh script, which also GETs the user).
	trips.n.Store(0)
	_, rt2, got, err := cache.RefreshSession(ctx, rt1, m)
	if err != nil {
		t.Fatal(err)
	}
	if n := trips.n.Load(); n != 1 {
		t.Fatalf("a refresh of a cached user made %d Redis round trips, want 1", n)
	}
	if got.ID != u.ID || len(got.Roles) == 0 {
		t.Fatalf("cached user = %+v", got)
	}

	// A write leaves a tombstone: the refresh reads PostgreSQL (the new name) and does
	// not cache the row over the tombstone.
	if _, err := users.UpdateName(ctx, u.ID, "Renamed"); err != nil {
		t.Fatal(err)
	}
	if raw := cached(); raw != "-" {
		t.Fatalf("after a write the cache holds %q, want the tombstone", raw)
	}
	_, rt3, got, err := cache.RefreshSession(ctx, rt2, m)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Renamed" {
		t.Fatalf("refresh after a write saw name %q", got.Name)
	}
	if raw := cached(); raw != "-" {
		t.Fatalf("a refresh filled the cache over a tombstone: %q", raw)
	}

	// What the cache holds is what the refresh sees: here, the user disabled.
	var entry map[string]any
	if err := json.Unmarshal([]byte(filled), &entry); err != nil {
		t.Fatal(err)
	}
	entry["disabled_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, key, b, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	sess, rt4, got, err := cache.RefreshSession(ctx, rt3, m)
	if err != nil || got.DisabledAt == nil || sess.ID == "" {
		t.Fatalf("refresh with a disabled user cached = %+v, %+v, %v", sess, got, err)
	}

	// The rotation's errors come with a zero session.
	sess, next, _, err := cache.RefreshSession(ctx, rt1, m)
	if !errors.Is(err, session.ErrReused) || sess.ID != "" || next != "" {
		t.Fatalf("reuse = %+v, %q, %v; want ErrReused and no session", sess, next, err)
	}
	sess, _, _, err = cache.RefreshSession(ctx, rt4, m)
	if !errors.Is(err, session.ErrInvalidToken) || sess.ID != "" {
		t.Fatalf("after reuse = %+v, %v; want ErrInvalidToken", sess, err)
	}
}
