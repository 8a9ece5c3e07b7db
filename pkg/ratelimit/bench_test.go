package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkAllow is one rate-limit check (GCRA in one Redis script), parallel.
func BenchmarkAllow(b *testing.B) {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		b.Fatalf("Redis must be running: %v", err)
	}
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
