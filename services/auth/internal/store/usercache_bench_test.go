package store_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/store"
)

// BenchmarkSessionUserWarm is the per-request check of an access token: the session
// and the cached user in one pipelined Redis round trip, no PostgreSQL.
func BenchmarkSessionUserWarm(b *testing.B) {
	e := apitest.Start(b, map[string]string{"DATABASE_URL": apitest.NewDatabase(b), "EMAIL_VERIFICATION_REQUIRED": "false"})
	u := e.Register(apitest.Email("bench-cache"))
	sessions := session.New(e.App.Redis)
	sess, _, err := sessions.Create(context.Background(), u.ID, u.Email, []string{"pwd"}, "", session.Meta{IP: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	cache := store.NewUserCache(e.App.Redis, e.App.DB, sessions)
	if _, _, err := cache.SessionUser(context.Background(), u.ID, sess.ID); err != nil { // fills the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := cache.SessionUser(context.Background(), u.ID, sess.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRefreshSessionWarm is the Redis side of POST /v1/auth/refresh: the rotation
// script, which also reads the cached user (one round trip, no PostgreSQL).
func BenchmarkRefreshSessionWarm(b *testing.B) {
	e := apitest.Start(b, map[string]string{"DATABASE_URL": apitest.NewDatabase(b), "EMAIL_VERIFICATION_REQUIRED": "false"})
	u := e.Register(apitest.Email("bench-refresh"))
	sessions := session.New(e.App.Redis)
	cache := store.NewUserCache(e.App.Redis, e.App.DB, sessions)
	const workers = 64
	tokens := make([]string, workers)
	for i := range tokens {
		_, rt, err := sessions.Create(context.Background(), u.ID, u.Email, []string{"pwd"}, "", session.Meta{IP: "127.0.0.1"})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = rt
	}
	if _, rt, _, err := cache.RefreshSession(context.Background(), tokens[0], session.Meta{}); err != nil { // fills the cache
		b.Fatal(err)
	} else {
		tokens[0] = rt
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % workers // one session per goroutine
		for pb.Next() {
			_, rt, _, err := cache.RefreshSession(context.Background(), tokens[i], session.Meta{IP: "127.0.0.1"})
			if err != nil {
				b.Error(err)
				return
			}
			tokens[i] = rt
		}
	})
}
