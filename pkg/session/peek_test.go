package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/redistest"
)

// PeekWith accepts exactly what Refresh would accept now and changes nothing: after any
// number of peeks the token still rotates as if never peeked, and a retired token is
// only invalid to a peek (the session lives on) while Refresh still detects its reuse.
func TestPeekWithAcceptsWhatRefreshWouldAndChangesNothing(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	clock := newClock()
	s := New(rdb, WithReuseGrace(time.Second), WithClock(clock.Now))
	ctx := context.Background()
	uid := newUser(t, rdb)
	const prefix = "test:peek:"
	key, err := UserKey(prefix, uid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key) })

	created, rt0 := mustCreate(t, s, uid)
	sess, cmd, err := s.PeekWith(ctx, rt0, prefix)
	if err != nil || sess.ID != created.ID || sess.UserID != uid {
		t.Fatalf("peek of a live token: %+v %v", sess, err)
	}
	if _, err := cmd.Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("missing user key: %v, want redis.Nil", err)
	}
	if err := rdb.Set(ctx, key, "cached", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, cmd, err = s.PeekWith(ctx, rt0, prefix); err != nil || cmd.Val() != "cached" {
			t.Fatalf("peek again: %v %v", cmd, err)
		}
	}
	// Never rotated by the peeks: the first refresh is an ordinary rotation.
	_, rt1 := mustRefresh(t, s, rt0)

	// The token just rotated away, within the grace: Refresh would replay, so a peek passes.
	if _, _, err := s.PeekWith(ctx, rt0, ""); err != nil {
		t.Fatalf("peek within the grace: %v", err)
	}
	clock.Advance(2 * time.Second)
	if _, _, err := s.PeekWith(ctx, rt0, ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("peek of a retired token: %v, want ErrInvalidToken", err)
	}
	// The peek did not end the session; Refresh still sees the reuse and does.
	if _, _, err := s.PeekWith(ctx, rt1, ""); err != nil {
		t.Fatalf("the live token after a peek of a retired one: %v", err)
	}
	if _, _, err := s.Refresh(ctx, rt0, Meta{}); !errors.Is(err, ErrReused) {
		t.Fatalf("refresh of the retired token: %v, want ErrReused", err)
	}
	if _, _, err := s.PeekWith(ctx, rt1, ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("peek after the session ended: %v, want ErrInvalidToken", err)
	}

	// A forged secret, garbage, and a session past its absolute end.
	_, rt := mustCreate(t, s, uid)
	forged := newToken(mustParse(t, rt).userID, mustParse(t, rt).sessionID).String()
	for _, bad := range []string{forged, "rt_nope", ""} {
		if _, _, err := s.PeekWith(ctx, bad, ""); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("peek of %q: %v, want ErrInvalidToken", bad, err)
		}
	}
	if _, _, err := s.Refresh(ctx, rt, Meta{}); err != nil {
		t.Fatalf("the forged peek harmed the real token: %v", err)
	}
	short := New(rdb, WithMaxAge(time.Minute), WithClock(clock.Now))
	_, rt = mustCreate(t, short, uid)
	clock.Advance(2 * time.Minute)
	if _, _, err := short.PeekWith(ctx, rt, ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("peek of an expired session: %v, want ErrInvalidToken", err)
	}
}

func mustParse(t *testing.T, rt string) token {
	t.Helper()
	tok, err := parseToken(rt)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
