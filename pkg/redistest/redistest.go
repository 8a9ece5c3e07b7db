// Package redistest connects tests to the machine's Redis (REDIS_URL, default the local
// one) and fails them loudly when it is not there: CI starts it, so a missing Redis is a
// broken machine, never a reason to skip.
package redistest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options reads REDIS_URL.
func Options(t testing.TB) *redis.Options {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	return opts
}

// Client is a fresh client that answered a PING; it is closed when the test ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(Options(t))
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis must be running (CI starts it): %v", err)
	}
	return rdb
}
