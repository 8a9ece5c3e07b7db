package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/redistest"
)

func TestBrowserReferenceNamesItsLiveSessionOnly(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	clk := newClock()
	s := New(rdb, WithClock(clk.Now), WithMaxAge(time.Hour), WithIdleTTL(2*time.Hour))
	ctx := context.Background()
	uid := newUser(t, rdb)
	created, rt, err := s.Create(ctx, uid, "u@example.com", []string{"pwd"}, "stamp-1", Meta{})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.Create(ctx, uid, "u@example.com", []string{"pwd"}, "stamp-1", Meta{})
	if err != nil {
		t.Fatal(err)
	}
	// A session without a reference has none to match.
	if _, _, err := s.Browser(ctx, "bs_"+strings.TrimPrefix(rt, "rt_"), ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refresh token's secret as a reference: %v", err)
	}
	ref, err := s.BindBrowser(ctx, uid, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, "bs_") || strings.Contains(ref, rt[3:]) {
		t.Fatalf("reference %q", ref)
	}
	if gotUID, gotSID, err := ParseBrowserRef(ref); err != nil || gotUID != uid || gotSID != created.ID {
		t.Fatalf("ParseBrowserRef = %s %s %v", gotUID, gotSID, err)
	}
	sess, _, err := s.Browser(ctx, ref, "")
	if err != nil || sess.ID != created.ID || sess.UserID != uid || sess.Stamp != "stamp-1" {
		t.Fatalf("Browser = %+v, %v", sess, err)
	}
	// As cheap as the bearer check: the session's fields and the caller's key, one round trip.
	key, _ := UserKey("test:browser:", uid)
	rdb.Set(ctx, key, "cached", time.Minute)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	hook := &countHook{}
	rdb.AddHook(hook)
	_, _, _ = s.Browser(ctx, ref, key) // the connection's own handshake is not the call's
	hook.trips.Store(0)
	hook.cmds.Store(0)
	_, cmd, err := s.Browser(ctx, ref, key)
	if trips, cmds := hook.trips.Load(), hook.cmds.Load(); err != nil || trips != 1 || cmds != 2 || cmd.Val() != "cached" {
		t.Fatalf("Browser with a key: %d round trips, %d commands, %q, %v; want 1, 2, the key's value", trips, cmds, cmd.Val(), err)
	}
	// Only the hash is kept, in the session's own hash.
	stored, err := rdb.HGet(ctx, sessionPrefix(uid)+created.ID, "bc").Result()
	if err != nil || len(stored) != 64 || strings.Contains(ref, stored) {
		t.Fatalf("stored %q, %v", stored, err)
	}
	// The refresh token is not a reference, and a reference is not a refresh token.
	if _, _, err := s.Browser(ctx, rt, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refresh token passed as a reference: %v", err)
	}
	if _, _, err := s.Refresh(ctx, "rt_"+ref[3:], Meta{}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a reference refreshed: %v", err)
	}
	// The ids of one session with the secret of another; a flipped secret; junk.
	moved := ref[:3+len(ref[3:])-43] + strings.Repeat("A", 43)
	for _, bad := range []string{moved, ref[:len(ref)-1] + "B", ref + "A", "bs_", "", strings.Repeat("x", 10000)} {
		if bad == ref {
			continue
		}
		if _, _, err := s.Browser(ctx, bad, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Browser(%.20q) = %v, want ErrNotFound", bad, err)
		}
	}
	if _, err := s.BindBrowser(ctx, uid, other.ID); err != nil {
		t.Fatal(err)
	}
	// Binding again replaces the reference.
	ref2, err := s.BindBrowser(ctx, uid, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Browser(ctx, ref, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the replaced reference: %v", err)
	}
	// A refresh keeps it; ending the session ends it; past the absolute expiry it is gone.
	if _, _, err := s.Refresh(ctx, rt, Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Browser(ctx, ref2, ""); err != nil {
		t.Fatalf("after a refresh: %v", err)
	}
	clk.Advance(time.Hour)
	if _, _, err := s.Browser(ctx, ref2, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("past the absolute expiry: %v", err)
	}
	if err := s.Revoke(ctx, uid, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BindBrowser(ctx, uid, created.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bound an ended session: %v", err)
	}
}
