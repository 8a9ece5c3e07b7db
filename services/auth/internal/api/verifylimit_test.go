package api_test

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// ForwardAuth (GET /v1/auth/verify, /v2/auth/verify) answers for every protected
// request of every service behind the gateway: a valid token with a live session is
// never cut by the public routes' budgets, and invalid ones spend a per-IP budget of
// their own (the global limit's value), never the global one.

var vlVerifyPaths = []string{"/v1/auth/verify", "/v2/auth/verify"}

// vlSetup is a signed-in user whose setup spent none of the current IP's budgets.
func vlSetup(t *testing.T, e *rlEnv, name string) apitest.Pair {
	t.Helper()
	email := apitest.Email(name)
	e.register(email)
	e.NewIP()
	pair := e.Login(email, apitest.Password)
	e.NewIP()
	return pair
}

func TestRateLimitVerifyValidTokenNeverCutByGlobalBudget(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"RATE_LIMIT_GLOBAL": "3/m"})
	pair := vlSetup(t, e, "rl-verify-valid")

	for i := 0; i < 20; i++ {
		for _, p := range vlVerifyPaths {
			if r := e.send(http.MethodGet, p, nil, "", pair.AccessToken); r.Status != http.StatusOK {
				t.Fatalf("verify %d on %s with a valid token: %d %s, want 200", i+1, p, r.Status, r.Body)
			}
		}
	}
	// The same IP's public routes still have their whole global budget of 3...
	for i := 0; i < 3; i++ {
		apitest.Expect(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), http.StatusOK, "")
	}
	rlExpect429(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), "rate_limited", 3, 20*time.Second, time.Minute)
	rlExpect429(t, e.send(http.MethodGet, "/v1/users/me", nil, "", pair.AccessToken), "rate_limited", 3, 20*time.Second, time.Minute)
	// ...and once it is spent, ForwardAuth still answers for that client.
	for i := 0; i < 5; i++ {
		for _, p := range vlVerifyPaths {
			if r := e.send(http.MethodGet, p, nil, "", pair.AccessToken); r.Status != http.StatusOK {
				t.Fatalf("verify on %s with the global budget spent: %d %s, want 200", p, r.Status, r.Body)
			}
		}
	}
	// A valid token refused by role is still a valid token: 403, never 429.
	for i := 0; i < 5; i++ {
		apitest.Expect(t, e.send(http.MethodGet, "/v1/auth/verify?role=admin", nil, "", pair.AccessToken), http.StatusForbidden, "forbidden")
	}
}

func TestRateLimitVerifyInvalidTokensOwnBudget(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"RATE_LIMIT_GLOBAL": "3/m"})
	pair := vlSetup(t, e, "rl-verify-invalid")
	dead := vlSetup(t, e, "rl-verify-dead")
	prev := *e.ip.Load()
	apitest.Expect(t, e.send(http.MethodPost, "/v1/auth/logout", map[string]string{}, rlIP(), dead.AccessToken), http.StatusNoContent, "")
	e.ip.Store(&prev)
	forged := pair.AccessToken[:len(pair.AccessToken)-12] + "AAAAAAAAAAAA"
	if forged == pair.AccessToken {
		forged = pair.AccessToken[:len(pair.AccessToken)-12] + "BBBBBBBBBBBB"
	}
	invalid := []struct{ what, bearer string }{
		{"no token", ""}, {"bad signature", forged}, {"dead session", dead.AccessToken},
	}

	// Invalid answers spend the client's verify_invalid budget (3, the global limit's
	// value): three 401s, then 429 for every kind of invalid token, on both versions.
	for _, c := range invalid {
		apitest.Expect(t, e.send(http.MethodGet, "/v1/auth/verify", nil, "", c.bearer), http.StatusUnauthorized, "unauthorized")
	}
	for _, c := range invalid {
		rlExpect429(t, e.send(http.MethodGet, "/v1/auth/verify", nil, "", c.bearer), "rate_limited", 3, 20*time.Second, time.Minute)
		if r := e.send(http.MethodGet, "/v2/auth/verify", nil, "", c.bearer); r.Status != http.StatusTooManyRequests {
			t.Fatalf("v2 verify, %s, budget spent: %d %s, want 429", c.what, r.Status, r.Body)
		}
	}
	// A valid token from the same IP is not affected...
	for i := 0; i < 10; i++ {
		for _, p := range vlVerifyPaths {
			if r := e.send(http.MethodGet, p, nil, "", pair.AccessToken); r.Status != http.StatusOK {
				t.Fatalf("verify on %s with a valid token after invalid ones: %d %s, want 200", p, r.Status, r.Body)
			}
		}
	}
	// ...nor are the same IP's public routes: the global budget is whole.
	for i := 0; i < 3; i++ {
		apitest.Expect(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), http.StatusOK, "")
	}
	rlExpect429(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), "rate_limited", 3, 20*time.Second, time.Minute)
	// Per client IP: another client's invalid token is still evaluated.
	apitest.Expect(t, e.send(http.MethodGet, "/v1/auth/verify", nil, rlIP(), forged), http.StatusUnauthorized, "unauthorized")
	// An IPv6 client is keyed by its /64, as for every per-IP budget: another address
	// of the same /64 shares the spent budget.
	if r := e.send(http.MethodGet, "/v1/auth/verify", nil, vlSame64(t, prev), forged); r.Status != http.StatusTooManyRequests {
		t.Fatalf("invalid verify from the same /64: %d %s, want 429", r.Status, r.Body)
	}
}

// vlSame64 is another address of ip's /64.
func vlSame64(t *testing.T, ip string) string {
	t.Helper()
	b := netip.MustParseAddr(ip).As16()
	b[15] ^= 0xff
	b[8] ^= 0x5a
	return netip.AddrFrom16(b).String()
}

// vlTrips counts Redis round trips: one per command or pipeline.
type vlTrips struct {
	mu    sync.Mutex
	on    bool
	names []string
}

func (h *vlTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *vlTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record(cmd.Name())
		return next(ctx, cmd)
	}
}

func (h *vlTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.record("pipeline")
		return next(ctx, cmds)
	}
}

func (h *vlTrips) record(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.on {
		h.names = append(h.names, name)
	}
}

func (h *vlTrips) start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.on, h.names = true, nil
}

func (h *vlTrips) stop() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.on = false
	return h.names
}

// With the limits on, a valid token's verify costs one Redis round trip (the session
// and its cached user): no rate-limit call on the valid path.
func TestRateLimitVerifyValidTokenOneRedisRoundTrip(t *testing.T) {
	t.Parallel()
	e := rlStart(t, nil)
	pair := vlSetup(t, e, "rl-verify-trips")
	trips := &vlTrips{}
	e.App.Redis.AddHook(trips)
	for _, p := range vlVerifyPaths {
		apitest.Expect(t, e.send(http.MethodGet, p, nil, "", pair.AccessToken), http.StatusOK, "") // warm the cache
		trips.start()
		apitest.Expect(t, e.send(http.MethodGet, p, nil, "", pair.AccessToken), http.StatusOK, "")
		if got := trips.stop(); len(got) != 1 {
			t.Fatalf("verify on %s with a valid token made %d Redis round trips %v, want 1", p, len(got), got)
		}
	}
}

// With Redis down, ForwardAuth fails closed as before: 503, for valid and invalid
// tokens alike, never 200 or 401.
func TestRateLimitVerifyRedisOutageFailsClosed(t *testing.T) {
	t.Parallel()
	srv := rlStartRedis(t, 0)
	e := rlStart(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr() + "/0"})
	pair := vlSetup(t, e, "rl-verify-outage")
	apitest.Expect(t, e.send(http.MethodGet, "/v1/auth/verify", nil, "", pair.AccessToken), http.StatusOK, "")
	srv.Stop()
	for _, p := range vlVerifyPaths {
		for _, bearer := range []string{pair.AccessToken, "", pair.AccessToken[:len(pair.AccessToken)-12] + "AAAAAAAAAAAA"} {
			if r := e.send(http.MethodGet, p, nil, rlIP(), bearer); r.Status != http.StatusServiceUnavailable {
				t.Fatalf("%s with Redis down (token %t): %d %s, want 503", p, bearer != "", r.Status, r.Body)
			}
		}
	}
}
