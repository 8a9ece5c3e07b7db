package session

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/redistest"
)

func benchSessions(b *testing.B, n int) (*Store, []string, []string, string) {
	rdb := redistest.Client(b)
	s := New(rdb)
	uid := uuid.NewString()
	b.Cleanup(func() { _, _ = s.RevokeAll(context.Background(), uid, "") })
	tokens, sids := make([]string, n), make([]string, n)
	for i := range n {
		sess, rt, err := s.Create(context.Background(), uid, "bench@example.com", []string{"pwd"}, "", Meta{IP: "127.0.0.1"})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i], sids[i] = rt, sess.ID
	}
	return s, tokens, sids, uid
}

// BenchmarkRefresh is the refresh script: one round trip that rotates the token.
func BenchmarkRefresh(b *testing.B) {
	const workers = 64
	s, tokens, _, _ := benchSessions(b, workers)
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % workers // one session per goroutine: no contention on a token
		for pb.Next() {
			_, rt, err := s.Refresh(context.Background(), tokens[i], Meta{IP: "127.0.0.1", UserAgent: "bench"})
			if err != nil {
				b.Error(err)
				return
			}
			tokens[i] = rt
		}
	})
}

// BenchmarkGet is the access-token session check: one round trip.
func BenchmarkGet(b *testing.B) {
	s, _, sids, uid := benchSessions(b, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(context.Background(), uid, sids[0]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
