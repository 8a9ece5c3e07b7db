package session

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/redistest"
)

// newUser returns a fresh user id whose keys are deleted after the test.
func newUser(t *testing.T, rdb *redis.Client) string {
	uid := uuid.NewString()
	t.Cleanup(func() {
		ctx := context.Background()
		if ks := userKeys(t, rdb, uid); len(ks) > 0 {
			rdb.Del(ctx, ks...)
		}
	})
	return uid
}

func userKeys(t *testing.T, rdb *redis.Client, uid string) []string {
	t.Helper()
	var out []string
	iter := rdb.Scan(context.Background(), 0, "sess:{"+uid+"}:*", 100).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(time.Now().UnixMilli())} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustCreate(t *testing.T, s *Store, uid string) (Session, string) {
	t.Helper()
	sess, rt, err := s.Create(context.Background(), uid, "u@example.com", []string{"pwd"}, "", Meta{IP: "10.0.0.1", UserAgent: "ua/1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return sess, rt
}

func mustRefresh(t *testing.T, s *Store, rt string) (Session, string) {
	t.Helper()
	sess, next, err := s.Refresh(context.Background(), rt, Meta{IP: "10.0.0.2", UserAgent: "ua/2"})
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return sess, next
}

func wantRefreshErr(t *testing.T, s *Store, rt string, want error) {
	t.Helper()
	_, next, err := s.Refresh(context.Background(), rt, Meta{})
	if !errors.Is(err, want) {
		t.Fatalf("Refresh: err = %v, want %v", err, want)
	}
	if next != "" {
		t.Fatalf("Refresh returned token %q alongside error", next)
	}
}

func wantGone(t *testing.T, s *Store, uid, sid string) {
	t.Helper()
	if _, err := s.Get(context.Background(), uid, sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: err = %v, want ErrNotFound", err)
	}
}

func TestCreateGet(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	clk := newClock()
	s := New(rdb, WithClock(clk.Now), WithMaxAge(48*time.Hour))
	ctx := context.Background()

	for _, amr := range [][]string{nil, {"pwd"}, {"pwd", "otp"}} {
		t.Run(strings.Join(amr, "+"), func(t *testing.T) {
			uid := newUser(t, rdb)
			m := Meta{IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11)"}
			created, rt, err := s.Create(ctx, uid, "a@example.com", amr, "stamp-1", m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := uuid.Parse(created.ID); err != nil {
				t.Fatalf("session id %q is not a UUID", created.ID)
			}
			gotUID, gotSID, err := ParseRefreshToken(rt)
			if err != nil || gotUID != uid || gotSID != created.ID {
				t.Fatalf("ParseRefreshToken = %q, %q, %v; want %q, %q", gotUID, gotSID, err, uid, created.ID)
			}

			got, err := s.Get(ctx, uid, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			now := clk.Now()
			want := Session{
				ID: created.ID, UserID: uid, Email: "a@example.com", AMR: amr,
				CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(48 * time.Hour),
				IP: m.IP, UserAgent: m.UserAgent, Stamp: "stamp-1",
			}
			for _, x := range []Session{created, got} {
				if !sameSession(x, want) {
					t.Fatalf("session = %+v, want %+v", x, want)
				}
			}
			wantGone(t, s, uid, uuid.NewString())
			wantGone(t, s, uuid.NewString(), created.ID)
			wantGone(t, s, "not-a-uuid", created.ID)
		})
	}
}

func sameSession(a, b Session) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Email == b.Email &&
		slices.Equal(a.AMR, b.AMR) && a.CreatedAt.Equal(b.CreatedAt) &&
		a.LastUsedAt.Equal(b.LastUsedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.IP == b.IP && a.UserAgent == b.UserAgent && a.Stamp == b.Stamp
}

// A refresh keeps the session's stamp and creation time (the tokens'
// auth_time); SetStamp changes the stamp of a live session only.
func TestStampAndAuthTime(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	clk := newClock()
	s := New(rdb, WithClock(clk.Now))
	ctx := context.Background()
	uid := newUser(t, rdb)
	created, rt, err := s.Create(ctx, uid, "a@example.com", []string{"pwd"}, "v1", Meta{})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	refreshed, _, err := s.Refresh(ctx, rt, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.Stamp != "v1" || !refreshed.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("after refresh: stamp %q created %v, want v1 %v", refreshed.Stamp, refreshed.CreatedAt, created.CreatedAt)
	}
	if err := s.SetStamp(ctx, uid, created.ID, "v2"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, uid, created.ID); err != nil || got.Stamp != "v2" {
		t.Fatalf("Get after SetStamp = %+v, %v; want stamp v2", got, err)
	}
	if err := s.Revoke(ctx, uid, created.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStamp(ctx, uid, created.ID, "v3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetStamp on an ended session = %v, want ErrNotFound", err)
	}
	if n, _ := rdb.Exists(ctx, "sess:{"+uid+"}:"+created.ID).Result(); n != 0 {
		t.Fatal("SetStamp brought an ended session back")
	}
}

func TestRefreshRotatesWithGrace(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	clk := newClock()
	s := New(rdb, WithClock(clk.Now), WithReuseGrace(10*time.Second))
	uid := newUser(t, rdb)
	created, rt0 := mustCreate(t, s, uid)

	clk.Advance(time.Minute)
	sess, rt1 := mustRefresh(t, s, rt0)
	if rt1 == rt0 {
		t.Fatal("refresh returned the same token")
	}
	if !sess.LastUsedAt.Equal(clk.Now()) || !sess.CreatedAt.Equal(created.CreatedAt) ||
		sess.IP != "10.0.0.2" || sess.UserAgent != "ua/2" || sess.Email != created.Email {
		t.Fatalf("refreshed session = %+v", sess)
	}

	// Within the grace the old token answers the identical successor.
	clk.Advance(5 * time.Second)
	_, again := mustRefresh(t, s, rt0)
	if again != rt1 {
		t.Fatal("replay within grace returned a different successor")
	}

	// After the grace it is reuse: the session and its live successor die.
	clk.Advance(5*time.Second + time.Millisecond)
	wantRefreshErr(t, s, rt0, ErrReused)
	wantRefreshErr(t, s, rt1, ErrInvalidToken)
	wantGone(t, s, uid, created.ID)
	if ks := userKeys(t, rdb, uid); len(ks) != 0 {
		t.Fatalf("keys left after reuse: %v", ks)
	}
}

func TestReplayOfOlderTokenKillsSession(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	s := New(rdb) // default 10s grace: every replay below is within it
	tests := []struct {
		name   string
		replay func(chain []string) string
	}{
		{"RT0", func(c []string) string { return c[0] }},
		{"RT1", func(c []string) string { return c[1] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid := newUser(t, rdb)
			sess, rt := mustCreate(t, s, uid)
			chain := []string{rt}
			for range 3 {
				_, rt = mustRefresh(t, s, rt)
				chain = append(chain, rt)
			}
			wantRefreshErr(t, s, tc.replay(chain), ErrReused)
			wantRefreshErr(t, s, chain[3], ErrInvalidToken)
			wantRefreshErr(t, s, chain[2], ErrInvalidToken)
			wantGone(t, s, uid, sess.ID)
		})
	}
}

// A forged secret (uid and sid are visible in an access token) must not let a
// stranger end somebody's session: it is refused and the session lives on.
func TestForgedSecretDoesNotEndSession(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	s := New(rdb)
	uid := newUser(t, rdb)
	sess, rt0 := mustCreate(t, s, uid)
	_, rt1 := mustRefresh(t, s, rt0)
	tok, _ := parseToken(rt1)
	wantRefreshErr(t, s, newToken(tok.userID, tok.sessionID).String(), ErrInvalidToken)
	if _, err := s.Get(context.Background(), uid, sess.ID); err != nil {
		t.Fatalf("session ended by a forged token: %v", err)
	}
	mustRefresh(t, s, rt1)
}

// The history is bounded: a token older than reuseHistory rotations is refused
// without ending the session, a younger one still counts as reuse.
func TestReuseHistoryBound(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	s := New(rdb, WithReuseGrace(0))
	uid := newUser(t, rdb)
	sess, rt := mustCreate(t, s, uid)
	chain := []string{rt}
	for range reuseHistory + 1 {
		_, rt = mustRefresh(t, s, rt)
		chain = append(chain, rt)
	}
	wantRefreshErr(t, s, chain[0], ErrInvalidToken)
	if _, err := s.Get(context.Background(), uid, sess.ID); err != nil {
		t.Fatalf("session ended by a token past the history: %v", err)
	}
	wantRefreshErr(t, s, chain[2], ErrReused)
	wantGone(t, s, uid, sess.ID)
}

func TestParallelRefreshSingleSuccessor(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	s := New(rdb)
	uid := newUser(t, rdb)
	sess, rt0 := mustCreate(t, s, uid)

	const n = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		toks  = make([]string, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, toks[i], errs[i] = s.Refresh(context.Background(), rt0, Meta{})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if toks[i] != toks[0] {
			t.Fatalf("refresh %d returned a different successor", i)
		}
	}
	rt1 := toks[0]

	// Exactly one live secret: the one every caller got.
	tok, _ := parseToken(rt1)
	cur, err := rdb.HGet(context.Background(), "sess:{"+uid+"}:"+sess.ID, "cur").Result()
	if err != nil || cur != hashSecret(tok.secret) {
		t.Fatalf("stored cur = %q, %v; want hash of the shared successor", cur, err)
	}
	_, rt2 := mustRefresh(t, s, rt1)
	wantRefreshErr(t, s, rt0, ErrReused) // now two rotations old
	wantRefreshErr(t, s, rt2, ErrInvalidToken)
}

func TestIdleTTL(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()

	t.Run("PTTL follows min(idle, absolute remaining)", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		s := New(rdb, WithClock(clk.Now), WithIdleTTL(time.Hour), WithMaxAge(90*time.Minute))
		uid := newUser(t, rdb)
		sess, rt := mustCreate(t, s, uid)
		key, idx := "sess:{"+uid+"}:"+sess.ID, "sess:{"+uid+"}:idx"
		wantPTTL := func(k string, want time.Duration) {
			t.Helper()
			got := rdb.PTTL(ctx, k).Val()
			if got > want || got < want-5*time.Second {
				t.Fatalf("PTTL %s = %v, want ~%v", k, got, want)
			}
		}
		wantPTTL(key, time.Hour)
		wantPTTL(idx, 90*time.Minute)

		clk.Advance(50 * time.Minute) // 40m of absolute life left < 1h idle
		mustRefresh(t, s, rt)
		wantPTTL(key, 40*time.Minute)
		wantPTTL(idx, 90*time.Minute) // a refresh never shortens the index
	})

	t.Run("refresh renews, idleness expires", func(t *testing.T) {
		t.Parallel()
		s := New(rdb, WithIdleTTL(800*time.Millisecond))
		uid := newUser(t, rdb)
		sess, rt := mustCreate(t, s, uid)
		time.Sleep(500 * time.Millisecond)
		_, rt = mustRefresh(t, s, rt)
		time.Sleep(500 * time.Millisecond) // 1s since create: alive only if renewed
		_, rt = mustRefresh(t, s, rt)
		time.Sleep(1200 * time.Millisecond)
		wantRefreshErr(t, s, rt, ErrInvalidToken)
		wantGone(t, s, uid, sess.ID)
	})
}

func TestMaxAge(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	clk := newClock()
	s := New(rdb, WithClock(clk.Now), WithMaxAge(time.Hour), WithIdleTTL(2*time.Hour))
	uid := newUser(t, rdb)
	sess, rt := mustCreate(t, s, uid)

	clk.Advance(59 * time.Minute)
	_, rt = mustRefresh(t, s, rt)
	clk.Advance(time.Minute)
	wantGone(t, s, uid, sess.ID) // Get honours the absolute expiry before Redis does
	wantRefreshErr(t, s, rt, ErrInvalidToken)
	if n := rdb.Exists(ctx, "sess:{"+uid+"}:"+sess.ID).Val(); n != 0 {
		t.Fatal("expired session hash not deleted")
	}
	if err := rdb.ZScore(ctx, "sess:{"+uid+"}:idx", sess.ID).Err(); err != redis.Nil {
		t.Fatalf("expired session still indexed: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	clk := newClock()
	s := New(rdb, WithClock(clk.Now))
	uid := newUser(t, rdb)
	var ids, rts []string
	for range 4 {
		sess, rt := mustCreate(t, s, uid)
		ids, rts = append(ids, sess.ID), append(rts, rt)
		clk.Advance(time.Millisecond)
	}

	if err := s.Revoke(ctx, uid, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, uid, ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Revoke: %v, want ErrNotFound", err)
	}
	wantGone(t, s, uid, ids[0])
	wantRefreshErr(t, s, rts[0], ErrInvalidToken)

	// Keep ids[1]; ids[2] and ids[3] end.
	n, err := s.RevokeAll(ctx, uid, ids[1])
	if err != nil || n != 2 {
		t.Fatalf("RevokeAll = %d, %v; want 2", n, err)
	}
	for _, i := range []int{2, 3} {
		wantGone(t, s, uid, ids[i])
		wantRefreshErr(t, s, rts[i], ErrInvalidToken)
	}
	_, rts[1] = mustRefresh(t, s, rts[1])
	if list, _ := s.List(ctx, uid); len(list) != 1 || list[0].ID != ids[1] {
		t.Fatalf("List after RevokeAll = %+v", list)
	}

	n, err = s.RevokeAll(ctx, uid, "")
	if err != nil || n != 1 {
		t.Fatalf("RevokeAll(keep none) = %d, %v; want 1", n, err)
	}
	wantRefreshErr(t, s, rts[1], ErrInvalidToken)
	if ks := userKeys(t, rdb, uid); len(ks) != 0 {
		t.Fatalf("keys left after RevokeAll: %v", ks)
	}
}

func TestRevokeWinsAgainstRefresh(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	s := New(rdb)
	uid := newUser(t, rdb)
	for range 50 {
		sess, rt0 := mustCreate(t, s, uid)
		var (
			wg        sync.WaitGroup
			start     = make(chan struct{})
			rt1       string
			revokeErr error
		)
		wg.Go(func() { <-start; _, rt1, _ = s.Refresh(ctx, rt0, Meta{}) })
		wg.Go(func() { <-start; revokeErr = s.Revoke(ctx, uid, sess.ID) })
		close(start)
		wg.Wait()
		if revokeErr != nil {
			t.Fatalf("Revoke: %v", revokeErr)
		}
		wantRefreshErr(t, s, rt0, ErrInvalidToken)
		if rt1 != "" {
			wantRefreshErr(t, s, rt1, ErrInvalidToken)
		}
		wantGone(t, s, uid, sess.ID)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	clk := newClock()
	s := New(rdb, WithClock(clk.Now), WithMaxAge(time.Hour))
	uid := newUser(t, rdb)
	var ids []string
	for range 4 {
		sess, _ := mustCreate(t, s, uid)
		ids = append(ids, sess.ID)
		clk.Advance(10 * time.Minute)
	}
	listIDs := func() []string {
		t.Helper()
		list, err := s.List(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range list {
			if l.UserID != uid || l.Email != "u@example.com" || !slices.Equal(l.AMR, []string{"pwd"}) {
				t.Fatalf("listed session = %+v", l)
			}
			out = append(out, l.ID)
		}
		return out
	}
	idx := "sess:{" + uid + "}:idx"

	if got, want := listIDs(), []string{ids[3], ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want newest first %v", got, want)
	}

	// A hash that expired in Redis is pruned from the index.
	rdb.Del(ctx, "sess:{"+uid+"}:"+ids[2])
	if got, want := listIDs(), []string{ids[3], ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	if n := rdb.ZCard(ctx, idx).Val(); n != 3 {
		t.Fatalf("index size = %d, want 3 after pruning", n)
	}

	// Sessions past their absolute expiry are dropped too (ids[0] was created
	// 40m ago; 25m more puts it past the 1h max age).
	clk.Advance(25 * time.Minute)
	if got, want := listIDs(), []string{ids[3], ids[1]}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	if n := rdb.ZCard(ctx, idx).Val(); n != 2 {
		t.Fatalf("index size = %d, want 2 after pruning", n)
	}
}

func TestMaxSessionsDropsOldest(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	clk := newClock()
	s := New(rdb, WithClock(clk.Now), WithMaxSessions(3))
	uid := newUser(t, rdb)
	var ids, rts []string
	for range 5 {
		sess, rt := mustCreate(t, s, uid)
		ids, rts = append(ids, sess.ID), append(rts, rt)
		clk.Advance(time.Second)
	}
	for _, i := range []int{0, 1} {
		wantGone(t, s, uid, ids[i])
		wantRefreshErr(t, s, rts[i], ErrInvalidToken)
	}
	list, err := s.List(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range list {
		got = append(got, l.ID)
	}
	if want := []string{ids[4], ids[3], ids[2]}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
}

func TestGarbageTokens(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	s := New(rdb)
	uid := newUser(t, rdb)
	_, rt := mustCreate(t, s, uid)
	valid := newToken(uuid.New(), uuid.New()).String()

	short := tokenPrefix + tokenEncoding.EncodeToString(make([]byte, rawTokenLen-1))
	long := tokenPrefix + tokenEncoding.EncodeToString(make([]byte, rawTokenLen+1))
	tests := map[string]string{
		"empty":                "",
		"prefix only":          "rt_",
		"wrong prefix":         "xx_" + rt[3:],
		"no prefix":            rt[3:] + "AAA",
		"bad base64":           rt[:len(rt)-4] + "!!!!",
		"std base64 alphabet":  "rt_" + strings.Repeat("+/", 43),
		"padded":               rt[:len(rt)-2] + "==",
		"non-canonical tail":   rt[:len(rt)-1] + flipTail(rt[len(rt)-1:]),
		"too short":            short,
		"too long":             long,
		"trailing space":       rt + " ",
		"non-utf8":             "rt_" + strings.Repeat("\xff", len(rt)-3),
		"1 MB":                 "rt_" + strings.Repeat("A", 1<<20),
		"unknown session":      valid,
		"null bytes":           strings.Repeat("\x00", len(rt)),
		"uppercase prefix":     "RT_" + rt[3:],
		"well-formed, no user": newToken(uuid.Nil, uuid.Nil).String(),
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			wantRefreshErr(t, s, tok, ErrInvalidToken)
			if name == "unknown session" || name == "well-formed, no user" {
				return // these parse fine; Redis says they do not exist
			}
			if u, sid, err := ParseRefreshToken(tok); !errors.Is(err, ErrInvalidToken) || u != "" || sid != "" {
				t.Fatalf("ParseRefreshToken = %q, %q, %v", u, sid, err)
			}
		})
	}
	// Garbage must not have harmed the real session.
	mustRefresh(t, s, rt)
}

// flipTail swaps the last base64 character for one that decodes to the same
// bytes but sets the unused low bits.
func flipTail(c string) string {
	i := strings.Index("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c)
	return string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i^1])
}

func TestTokenFormat(t *testing.T) {
	t.Parallel()
	const n = 10000
	seen := make(map[string]bool, n)
	secrets := make(map[string]bool, n)
	uid, sid := uuid.New(), uuid.New()
	for range n {
		tok := newToken(uid, sid).String()
		if len(tok) != 89 || !strings.HasPrefix(tok, "rt_") {
			t.Fatalf("token %q: len %d", tok, len(tok))
		}
		if strings.Trim(tok[3:], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("token %q has characters outside base64url", tok)
		}
		if seen[tok] {
			t.Fatalf("duplicate token after %d", len(seen))
		}
		seen[tok] = true
		p, err := parseToken(tok)
		if err != nil || p.userID != uid || p.sessionID != sid || len(p.secret) != 32 {
			t.Fatalf("parseToken(%q) = %+v, %v", tok, p, err)
		}
		secrets[string(p.secret)] = true
	}
	if len(secrets) != n {
		t.Fatalf("%d distinct secrets in %d tokens", len(secrets), n)
	}
}

func TestRedisHoldsNoRawSecret(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	s := New(rdb)
	uid := newUser(t, rdb)
	_, rt := mustCreate(t, s, uid)
	mustCreate(t, s, uid)
	toks := []string{rt}
	for range 3 {
		_, rt = mustRefresh(t, s, rt)
		toks = append(toks, rt)
	}
	_, again := mustRefresh(t, s, toks[2]) // a grace replay decrypts the successor...
	if again != toks[3] {
		t.Fatal("grace replay returned a different successor")
	}

	// ...yet nothing in Redis can be replayed as a token.
	var values []string
	for _, k := range userKeys(t, rdb, uid) {
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				values = append(values, f, v)
			}
		case "zset":
			values = append(values, rdb.ZRange(ctx, k, 0, -1).Val()...)
		default:
			t.Fatalf("unexpected key %s of type %s", k, typ)
		}
	}
	if len(values) == 0 {
		t.Fatal("no values found: scan pattern wrong?")
	}
	for _, tok := range toks {
		p, _ := parseToken(tok)
		forms := []string{
			tok, tok[3:], string(p.secret),
			hex.EncodeToString(p.secret),
			strings.ToUpper(hex.EncodeToString(p.secret)),
			base64.StdEncoding.EncodeToString(p.secret),
			base64.RawStdEncoding.EncodeToString(p.secret),
			base64.URLEncoding.EncodeToString(p.secret),
			base64.RawURLEncoding.EncodeToString(p.secret),
		}
		for _, v := range values {
			for _, f := range forms {
				if strings.Contains(v, f) {
					t.Fatalf("Redis value %q contains a token secret", v)
				}
			}
		}
	}
}
