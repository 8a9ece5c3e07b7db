package api_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
)

// failKey fails every Redis command that names key, as a Redis that cannot be written
// would, and counts them.
type failKey struct {
	key string
	n   atomic.Int64
}

var _ redis.Hook = (*failKey)(nil)

var errInjected = errors.New("injected Redis failure")

func (h *failKey) names(cmd redis.Cmder) bool {
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && s == h.key {
			return true
		}
	}
	return false
}

func (h *failKey) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failKey) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.names(cmd) {
			h.n.Add(1)
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (h *failKey) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if h.names(cmd) {
				h.n.Add(1)
				for _, c := range cmds {
					c.SetErr(errInjected)
				}
				return errInjected
			}
		}
		return next(ctx, cmds)
	}
}

// TestReplacedAccountLeavesAuthsCache: auth has the unverified account cached (a token
// of its session was just checked) when a verified sign-in replaces it, and ending the
// account's sessions fails. Right after the sign-in, auth's check of that token (the
// session and the cached user, one pipelined read) finds no cached user, so auth reads
// PostgreSQL, where the account is gone: 401. A load auth began before the replacement
// cannot cache the old account afterwards either.
func TestReplacedAccountLeavesAuthsCache(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	email := unique("cached-prehijack")
	attacker := e.localUser(email, false)
	sessions := session.New(e.app.Redis)
	sess, _, err := sessions.Create(ctx, attacker, email, []string{"pwd"}, "", session.Meta{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := usercache.Key(attacker)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.app.Redis.Del(context.Background(), key) })

	// auth's miss: the generation, then the load, then the fill; and a second load,
	// begun before the replacement, that will try to fill after it.
	entries := usercache.New(e.app.Redis)
	gen, err := entries.Generation(ctx, attacker)
	if err != nil {
		t.Fatal(err)
	}
	cached := []byte(`{"id":"` + attacker + `","email":"` + email + `","roles":["user"],"permissions":[]}`)
	if ok, err := entries.Fill(ctx, attacker, gen, cached, 10*time.Minute); err != nil || !ok {
		t.Fatalf("auth's fill = %v, %v", ok, err)
	}

	// Ending the account's sessions fails (every command on its session index).
	revocations := &failKey{key: "sess:{" + attacker + "}:idx"}
	e.app.Redis.AddHook(revocations)

	e.oidc.QueueUser("sub-owner-"+attacker[:8], email, true)
	p := e.exchange(e.browser().signIn("acme"))
	if p.User.ID == attacker || p.User.Email != email {
		t.Fatalf("owner got %+v; the replaced account was %s", p.User, attacker)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1`, attacker); n != 0 {
		t.Fatal("the replaced account is still in PostgreSQL")
	}
	if revocations.n.Load() == 0 {
		t.Fatal("the sign-in never tried to end the replaced account's sessions")
	}

	// auth's check of the old token: the session survived, the user must not.
	if _, err := sessions.Get(ctx, attacker, sess.ID); err != nil {
		t.Fatalf("the session ended (%v): the revocation did not fail, nothing tested", err)
	}
	_, cmd, err := sessions.GetWith(ctx, attacker, sess.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cmd.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	if err == nil && raw != usercache.Tombstone {
		t.Fatalf("auth's cache still answers the replaced account %s: %s", attacker, raw)
	}

	// Once the tombstone has gone, a fill of a load begun before is refused.
	if err := e.app.Redis.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := entries.Fill(ctx, attacker, gen, cached, 10*time.Minute); err != nil || ok {
		t.Fatalf("a load begun before the replacement filled auth's cache afterwards (%v, %v)", ok, err)
	}
}
