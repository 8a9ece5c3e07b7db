package api_test

import (
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

func TestCORSAllowlist(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.test"
	e := apitest.Start(t, map[string]string{"CORS_ALLOWED_ORIGINS": app})

	preflight := func(origin string) *apitest.Response {
		return e.Request(http.MethodOptions, "/v1/auth/login", nil, http.Header{
			"Origin": {origin}, "Access-Control-Request-Method": {"POST"},
			"Access-Control-Request-Headers": {"content-type"},
		})
	}
	r := preflight(app)
	if r.Header.Get("Access-Control-Allow-Origin") != app || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight from the app: %d %v", r.Status, r.Header)
	}
	for _, evil := range []string{"https://evil.test", "null", "https://app.example.test.evil.test", "http://app.example.test"} {
		for _, r := range []*apitest.Response{
			preflight(evil),
			e.Request(http.MethodPost, "/v1/auth/login", map[string]string{"email": "a@b.test", "password": "x"},
				http.Header{"Origin": {evil}}),
		} {
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Fatalf("origin %q got Access-Control-Allow-Origin %q", evil, got)
			}
			if r.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("origin %q got Access-Control-Allow-Credentials", evil)
			}
		}
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	for _, path := range []string{"/v1/auth/verify", "/.well-known/jwks.json", "/nope"} {
		r := e.Do(http.MethodGet, path, nil, "")
		h := r.Header
		if !strings.HasPrefix(h.Get("Strict-Transport-Security"), "max-age=31536000") ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: headers %v", path, h)
		}
	}
}

// Big answers are compressed, except those that can hold tokens (BREACH).
func TestGzip(t *testing.T) {
	t.Parallel()
	admin := apitest.Email("gzip-admin")
	e := apitest.Start(t, map[string]string{"ADMIN_EMAILS": admin})
	e.Register(admin)
	pair := e.Login(admin, apitest.Password)
	for range 12 {
		e.Register(apitest.Email("gzip"))
	}
	// A raw transport: net/http would otherwise decompress and hide the encoding.
	get := func(path, bearer string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+bearer)
		res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	res := get("/v1/admin/users?limit=50", pair.AccessToken)
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("a large admin list is not gzipped: %v", res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if !strings.Contains(string(body), `"users"`) {
		t.Fatalf("gzipped body = %.100s", body)
	}

	r := e.Request(http.MethodPost, "/v1/auth/login", map[string]string{"email": admin, "password": apitest.Password},
		http.Header{"Accept-Encoding": {"gzip"}})
	if r.Header.Get("Content-Encoding") != "" {
		t.Fatalf("a token answer is compressed: %v", r.Header)
	}
}

// Two instances on one Redis share one budget: a client cannot double it by hitting
// both replicas.
func TestRateLimitSharedByReplicas(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RATE_LIMIT_ENABLED": "true", "TRUSTED_PROXIES": "127.0.0.1/32", "RATE_LIMIT_FORGOT": "4/h"}
	a, b := apitest.Start(t, env), apitest.Start(t, env)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// A client of this test alone: a random /64, which keys an IPv6 client.
	ip := fmt.Sprintf("2001:db8:%x:%x::77", rnd[:2], rnd[2:])
	forgot := func(e *apitest.Env) int {
		return e.Request(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": apitest.Email("shared")},
			http.Header{"X-Forwarded-For": {ip}}).Status
	}
	var statuses []int
	for i := range 6 {
		if i%2 == 0 {
			statuses = append(statuses, forgot(a))
		} else {
			statuses = append(statuses, forgot(b))
		}
	}
	accepted := 0
	for _, s := range statuses {
		if s == http.StatusAccepted {
			accepted++
		} else if s != http.StatusTooManyRequests {
			t.Fatalf("statuses %v", statuses)
		}
	}
	if accepted != 4 {
		t.Fatalf("two replicas accepted %d of 6 forgot requests with a budget of 4: %v", accepted, statuses)
	}
}
