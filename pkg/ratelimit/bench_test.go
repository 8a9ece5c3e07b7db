package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/redistest"
)

// BenchmarkAllow is one rate-limit check (GCRA in one Redis script), parallel.
func BenchmarkAllow(b *testing.B) {
	rdb := redistest.Client(b)
	var r [8]byte
	_, _ = rand.Read(r[:])
	key := "bench:" + hex.EncodeToString(r[:])
	defer rdb.Del(context.Background(), "rate:"+key)
	l := NewLimiter(rdb)
	lim := Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Allow(context.Background(), key, lim); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
