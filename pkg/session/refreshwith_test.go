package session

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/redistest"
)

// countHook counts what a client sends: each Process and each pipeline is one round
// trip.
type countHook struct{ trips, cmds atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trips.Add(1)
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		h.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*countHook)(nil)

func TestRefreshWithReadsUserKeyInOneRoundTrip(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	hook := &countHook{}
	rdb.AddHook(hook)
	s := New(rdb, WithReuseGrace(time.Minute))
	ctx := context.Background()
	uid := newUser(t, rdb)
	const prefix = "test:refreshwith:"
	key, err := UserKey(prefix, uid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key) })

	_, rt0 := mustCreate(t, s, uid)
	// Missing key: redis.Nil, and the rotation happened all the same.
	sess, rt1, cmd, err := s.RefreshWith(ctx, rt0, Meta{IP: "10.0.0.3"}, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if sess.UserID != uid || sess.IP != "10.0.0.3" || rt1 == rt0 || rt1 == "" {
		t.Fatalf("RefreshWith = %+v, %q", sess, rt1)
	}
	if _, err := cmd.Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET of a missing key: err = %v, want redis.Nil", err)
	}

	if err := rdb.Set(ctx, key, `{"id":"x"}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	// The script is loaded by now (EVALSHA never falls back to EVAL): exactly one round
	// trip carrying one command rotates the token and reads the key.
	hook.trips.Store(0)
	hook.cmds.Store(0)
	_, rt2, cmd, err := s.RefreshWith(ctx, rt1, Meta{}, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cmd.Result(); err != nil || got != `{"id":"x"}` {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if trips, cmds := hook.trips.Load(), hook.cmds.Load(); trips != 1 || cmds != 1 {
		t.Fatalf("RefreshWith made %d round trips with %d commands, want 1 and 1", trips, cmds)
	}

	// A replay within the grace answers the same successor and the key's current value.
	if err := rdb.Set(ctx, key, "-", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, again, cmd, err := s.RefreshWith(ctx, rt1, Meta{}, prefix)
	if err != nil || again != rt2 {
		t.Fatalf("replay = %q, %v; want the successor %q", again, err, rt2)
	}
	if got, err := cmd.Result(); err != nil || got != "-" {
		t.Fatalf("GET on replay = %q, %v", got, err)
	}

	// Failures read nothing and report the session's error.
	if _, _, cmd, err := s.RefreshWith(ctx, rt0, Meta{}, prefix); !errors.Is(err, ErrReused) || cmd != nil {
		t.Fatalf("reuse: cmd = %v, err = %v; want nil, ErrReused", cmd, err)
	}
	if _, _, cmd, err := s.RefreshWith(ctx, rt2, Meta{}, prefix); !errors.Is(err, ErrInvalidToken) || cmd != nil {
		t.Fatalf("after reuse: cmd = %v, err = %v; want nil, ErrInvalidToken", cmd, err)
	}
	if _, _, cmd, err := s.RefreshWith(ctx, "garbage", Meta{}, prefix); !errors.Is(err, ErrInvalidToken) || cmd != nil {
		t.Fatalf("garbage: cmd = %v, err = %v", cmd, err)
	}
}

func TestRefreshWithoutPrefixIsRefresh(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	s := New(rdb)
	uid := newUser(t, rdb)
	_, rt := mustCreate(t, s, uid)
	sess, next, cmd, err := s.RefreshWith(context.Background(), rt, Meta{IP: "10.0.0.9"}, "")
	if err != nil || cmd != nil || next == "" || sess.IP != "10.0.0.9" {
		t.Fatalf("RefreshWith(\"\") = %+v, %q, %v, %v", sess, next, cmd, err)
	}
	mustRefresh(t, s, next)
}
