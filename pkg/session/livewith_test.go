package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/redistest"
)

func TestLiveWithReadsTheCheckAndTheKeyInOneRoundTrip(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	hook := &countHook{}
	rdb.AddHook(hook)
	clk := newClock()
	s := New(rdb, WithClock(clk.Now), WithMaxAge(time.Hour), WithIdleTTL(2*time.Hour))
	ctx := context.Background()
	uid := newUser(t, rdb)
	key, err := UserKey("test:livewith:", uid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	created, _, err := s.Create(ctx, uid, "u@example.com", []string{"pwd"}, "stamp-1", Meta{IP: "10.0.0.1", UserAgent: "ua/1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, key, "cached", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	// The connection's own handshake is not the call's: open it first.
	if _, _, err := s.LiveWith(ctx, uid, created.ID, key); err != nil {
		t.Fatal(err)
	}
	hook.trips.Store(0)
	hook.cmds.Store(0)
	sess, cmd, err := s.LiveWith(ctx, uid, created.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	if trips, cmds := hook.trips.Load(), hook.cmds.Load(); trips != 1 || cmds != 2 {
		t.Fatalf("LiveWith made %d round trips with %d commands, want 1 with 2", trips, cmds)
	}
	if got, err := cmd.Result(); err != nil || got != "cached" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	// What the check needs, and nothing it does not read.
	if sess.ID != created.ID || sess.UserID != uid || sess.Stamp != "stamp-1" ||
		!sess.CreatedAt.Equal(created.CreatedAt) || !sess.ExpiresAt.Equal(created.ExpiresAt) {
		t.Fatalf("LiveWith = %+v, want the fields of %+v", sess, created)
	}
	if sess.Email != "" || sess.IP != "" || sess.UserAgent != "" || sess.AMR != nil {
		t.Fatalf("LiveWith read more than the check: %+v", sess)
	}
	// Upper-case ids name the same session: the keys use the canonical form.
	if got, _, err := s.LiveWith(ctx, strings.ToUpper(uid), strings.ToUpper(created.ID), key); err != nil || got.ID != created.ID {
		t.Fatalf("upper-case ids: %+v, %v", got, err)
	}

	// A missing key is redis.Nil beside a live session.
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if _, cmd, err := s.LiveWith(ctx, uid, created.ID, key); err != nil || !errors.Is(cmd.Err(), redis.Nil) {
		t.Fatalf("missing key: cmd err %v, err %v", cmd.Err(), err)
	}
	// Gone: bad ids, another session, a revoked one, one past its absolute expiry.
	for name, ids := range map[string][2]string{
		"not a uuid":    {uid, "nope"},
		"other session": {uid, "00000000-0000-4000-8000-000000000000"},
	} {
		if _, _, err := s.LiveWith(ctx, ids[0], ids[1], key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	clk.Advance(time.Hour)
	if _, _, err := s.LiveWith(ctx, uid, created.ID, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("past max age: err = %v, want ErrNotFound", err)
	}
	other, _, err := s.Create(ctx, uid, "u@example.com", []string{"pwd"}, "", Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, uid, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LiveWith(ctx, uid, other.ID, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked: err = %v, want ErrNotFound", err)
	}
}
