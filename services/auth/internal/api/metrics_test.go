package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// The business metrics move on the real paths; each test reads its own service's
// /metrics (every service has its own registry), as Prometheus would.

// scrape reads /metrics into series → value, the series written as in the text format:
// name{label="value",...}.
func scrape(t *testing.T, e *apitest.Env) map[string]float64 {
	t.Helper()
	r := e.Request(http.MethodGet, "/metrics", nil, nil)
	apitest.Expect(t, r, http.StatusOK, "")
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(r.Body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// expectDelta checks that each series moved by exactly its delta between two scrapes.
func expectDelta(t *testing.T, before, after map[string]float64, want map[string]float64) {
	t.Helper()
	for series, d := range want {
		if _, ok := after[series]; !ok {
			t.Errorf("%s is not exported", series)
			continue
		}
		if got := after[series] - before[series]; got != d {
			t.Errorf("%s moved by %v, want %v", series, got, d)
		}
	}
}

func TestMetricsLogins(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _ := e.NewUser(t)
	unverified := apitest.Email("metrics-unverified")
	r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": unverified, "password": apitest.Password, "name": "U"}, "")
	apitest.Expect(t, r, http.StatusAccepted, "")

	before := scrape(t, e)
	login := func(path, email, password string) *apitest.Response {
		return e.Do(http.MethodPost, path, map[string]string{"email": email, "password": password}, "")
	}
	apitest.Expect(t, login("/v1/auth/login", email, "not the password at all"), http.StatusUnauthorized, "invalid_credentials")
	r = e.Request(http.MethodPost, "/v2/auth/login", map[string]string{"email": apitest.Email("metrics-nobody"), "password": "not the password at all"},
		http.Header{"X-Requested-With": {"XMLHttpRequest"}})
	apitest.Expect(t, r, http.StatusUnauthorized, "")
	apitest.Expect(t, login("/v1/auth/login", email, apitest.Password), http.StatusOK, "")
	apitest.Expect(t, login("/v1/auth/login", unverified, apitest.Password), http.StatusForbidden, "email_not_verified")
	apitest.Expect(t, login("/v1/auth/login", email, ""), http.StatusBadRequest, "invalid_request")
	apitest.Expect(t, e.Request(http.MethodPost, "/v1/auth/login", `{"email":`, nil), http.StatusBadRequest, "invalid_json")
	expectDelta(t, before, scrape(t, e), map[string]float64{
		`auth_logins_total{result="invalid_credentials"}`: 2,
		`auth_logins_total{result="success"}`:             1,
		`auth_logins_total{result="email_not_verified"}`:  1,
		`auth_logins_total{result="invalid_request"}`:     2,
		`auth_logins_total{result="mfa_required"}`:        0,
		`auth_logins_total{result="throttled"}`:           0,
		`auth_logins_total{result="account_disabled"}`:    0,
		`auth_logins_total{result="overloaded"}`:          0,
	})
}

func TestMetricsLoginsWithMFA(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, clock, _, _ := mfaEnable(t, e)

	before := scrape(t, e)
	tok := mfaLogin(t, e, email, apitest.Password)
	apitest.Expect(t, mfaFinish(e, tok, clock.wrong(t)), http.StatusUnauthorized, "invalid_mfa_code")
	tok = mfaLogin(t, e, email, apitest.Password)
	mfaExpectPair(t, mfaFinish(e, tok, clock.next(t)))
	expectDelta(t, before, scrape(t, e), map[string]float64{
		`auth_logins_total{result="mfa_required"}`:     2,
		`auth_logins_total{result="invalid_mfa_code"}`: 1,
		`auth_logins_total{result="success"}`:          1,
	})
}

func TestMetricsRefreshAndReuse(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"REFRESH_REUSE_GRACE": "0s"})
	_, p0 := e.NewUser(t)

	before := scrape(t, e)
	p1 := flowRefreshOK(t, e, p0.RefreshToken)
	time.Sleep(20 * time.Millisecond) // the grace compares milliseconds
	apitest.Expect(t, flowRefresh(e, p0.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
	apitest.Expect(t, flowRefresh(e, p1.RefreshToken), http.StatusUnauthorized, "invalid_refresh_token")
	apitest.Expect(t, flowRefresh(e, "rt_not-a-token"), http.StatusUnauthorized, "invalid_refresh_token")
	expectDelta(t, before, scrape(t, e), map[string]float64{
		`auth_refresh_total{result="success"}`:               1,
		`auth_refresh_total{result="refresh_token_reused"}`:  1,
		`auth_refresh_total{result="invalid_refresh_token"}`: 2,
		`auth_refresh_reuse_detected_total`:                  1,
	})
}

func TestMetricsThrottled(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"RATE_LIMIT_LOGIN": "2/m", "RATE_LIMIT_REFRESH": "1/m",
		"LOGIN_THROTTLE_FAILURES": "2", "LOGIN_THROTTLE_IP_FAILURES": "100",
		"LOGIN_THROTTLE_WAIT_INCREMENT": "1m", "LOGIN_THROTTLE_MAX_WAIT": "5m"})
	victim := apitest.Email("metrics-throttle")
	e.register(victim)
	before := scrape(t, e.Env)

	// The per-IP login budget: 2 per minute, the third is refused.
	e.NewIP()
	for range 2 {
		apitest.Expect(t, e.login(apitest.Email("metrics-nobody"), rlWrongPassword, ""), http.StatusUnauthorized, "invalid_credentials")
	}
	apitest.Expect(t, e.login(apitest.Email("metrics-nobody"), rlWrongPassword, ""), http.StatusTooManyRequests, "too_many_attempts")

	// The per-account throttle: two failures from two addresses, then it waits.
	apitest.Expect(t, e.login(victim, rlWrongPassword, rlIP()), http.StatusUnauthorized, "invalid_credentials")
	apitest.Expect(t, e.login(victim, rlWrongPassword, rlIP()), http.StatusUnauthorized, "invalid_credentials")
	apitest.Expect(t, e.login(victim, apitest.Password, rlIP()), http.StatusTooManyRequests, "too_many_attempts")

	// The refresh budget: 1 per minute.
	e.NewIP()
	apitest.Expect(t, e.send(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": "rt_x"}, "", ""), http.StatusUnauthorized, "invalid_refresh_token")
	apitest.Expect(t, e.send(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": "rt_x"}, "", ""), http.StatusTooManyRequests, "rate_limited")

	expectDelta(t, before, scrape(t, e.Env), map[string]float64{
		`auth_throttled_requests_total{purpose="login"}`:          1,
		`auth_throttled_requests_total{purpose="login_throttle"}`: 1,
		`auth_throttled_requests_total{purpose="refresh"}`:        1,
		`auth_throttled_requests_total{purpose="global"}`:         0,
		`auth_logins_total{result="throttled"}`:                   2,
		`auth_logins_total{result="invalid_credentials"}`:         4,
		`auth_refresh_total{result="throttled"}`:                  1,
	})
}

func TestMetricsThrottledGlobal(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"RATE_LIMIT_GLOBAL": "2/m"})
	before := scrape(t, e.Env) // from the test's first address
	e.NewIP()
	for range 2 {
		apitest.Expect(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), http.StatusOK, "")
	}
	apitest.Expect(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), http.StatusTooManyRequests, "rate_limited")
	expectDelta(t, before, scrape(t, e.Env), map[string]float64{
		`auth_throttled_requests_total{purpose="global"}`: 1,
		`auth_throttled_requests_total{purpose="login"}`:  0,
	})
}
