package api_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkVerifyWarmCache measures GET /v1/auth/verify?role=R for a user holding a
// custom role, with the user cached: one Redis round trip per request, no PostgreSQL.
// Run it with: go test -run '^$' -bench BenchmarkVerifyWarmCache ./internal/api/
func BenchmarkVerifyWarmCache(b *testing.B) {
	e, adm := admStart(b, nil)
	role := admCreateRole(b, e, adm.AccessToken, "bench", "jobs:read")
	_, p := e.NewUser(b)
	uid := p.User.ID
	admSetRoles(b, e, adm.AccessToken, uid, role)
	// The role change has committed: drop its tombstone instead of waiting it out, and
	// fill the cache.
	if err := e.App.Redis.Del(context.Background(), admCacheKey(uid)).Err(); err != nil {
		b.Fatal(err)
	}
	admWarm(b, e, p.AccessToken, uid)
	admExpectVerify(b, e, p.AccessToken, "role="+role, http.StatusOK)

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	defer client.CloseIdleConnections()
	url := e.URL + "/v1/auth/verify?role=" + role
	auth := "Bearer " + p.AccessToken
	var failed atomic.Int64

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				failed.Add(1)
				continue
			}
			req.Header.Set("Authorization", auth)
			res, err := client.Do(req)
			if err != nil {
				if failed.Add(1) == 1 {
					b.Errorf("verify: %v", err)
				}
				continue
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				if failed.Add(1) == 1 {
					b.Errorf("verify: %d", res.StatusCode)
				}
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
	if elapsed > 0 {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	}
	// Still warm: the run never needed to reload the user.
	if raw, ok := admCache(b, e, uid); !ok || raw == admTombstone {
		b.Fatalf("cache entry gone after the run: %q", raw)
	}
}
