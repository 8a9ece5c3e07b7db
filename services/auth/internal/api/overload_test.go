package api_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// A full hash queue sheds logins at once: 503 overloaded with Retry-After, never a
// wait that grows with the queue.
func TestLoginOverloadedShedsFast(t *testing.T) {
	e := apitest.Start(t, map[string]string{
		"EMAIL_VERIFICATION_REQUIRED": "false",
		"PASSWORD_HASH_CONCURRENCY":   "1",
		"PASSWORD_ARGON_MEMORY_KIB":   "32768",
		"PASSWORD_ARGON_ITERATIONS":   "3",
		"PASSWORD_HASH_QUEUE_TIMEOUT": "1ms",
	})
	email := apitest.Email("overload")
	e.Register(email)
	const n = 16
	var wg sync.WaitGroup
	res := make([]*apitest.Response, n)
	took := make([]time.Duration, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			res[i] = e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, "")
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	var ok, shed int
	for i, r := range res {
		switch {
		case r.Status == http.StatusOK:
			ok++
		case r.Status == http.StatusServiceUnavailable && r.Code() == "overloaded":
			shed++
			if r.Header.Get("Retry-After") != "1" {
				t.Fatalf("503 overloaded without Retry-After: 1: %v", r.Header)
			}
			if took[i] > 3*time.Second {
				t.Fatalf("a shed login took %s", took[i])
			}
		default:
			t.Fatalf("login under load: %d %s", r.Status, r.Body)
		}
	}
	if ok == 0 || shed == 0 {
		t.Fatalf("%d logins passed and %d were shed; want some of each", ok, shed)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	off := apitest.Start(t, nil)
	apitest.Expect(t, off.Do(http.MethodGet, "/debug/pprof/", nil, ""), http.StatusNotFound, "")
	on := apitest.Start(t, map[string]string{"PPROF_ENABLED": "true"})
	apitest.Expect(t, on.Do(http.MethodGet, "/debug/pprof/", nil, ""), http.StatusOK, "")
	apitest.Expect(t, on.Do(http.MethodGet, "/debug/pprof/goroutine?debug=1", nil, ""), http.StatusOK, "")
}
