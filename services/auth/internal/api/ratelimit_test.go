package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Every test binary reaches the service from 127.0.0.1 and shares one Redis, so these
// tests turn the limits on behind a trusted proxy (127.0.0.1) and claim a client IP
// of their own in X-Forwarded-For: random addresses of 2001:db8::/32 (documentation
// range, 96 random bits, 32 of them in the /64 that keys an IPv6 client), so no two
// tests, and no two runs, share a budget.

const (
	rlWrongPassword     = "not the right passphrase"
	rlResetPassword     = "a fresh passphrase after reset 91"
	rlSubjectResetEmail = "auth.email.password_reset_requested"
)

// rlEnv is the auth service with rate limits on; each request claims the client IP
// last set with SetIP unless it sets X-Forwarded-For itself.
type rlEnv struct {
	*apitest.Env
	ip atomic.Pointer[string]
}

func rlStart(t *testing.T, env map[string]string) *rlEnv {
	t.Helper()
	vars := map[string]string{"RATE_LIMIT_ENABLED": "true", "TRUSTED_PROXIES": "127.0.0.1/32"}
	maps.Copy(vars, env)
	e := &rlEnv{Env: apitest.Start(t, vars)}
	e.NewIP()
	base := e.Client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	e.Client.Transport = rlForwarded{base: base, ip: &e.ip}
	return e
}

// NewIP makes every following request claim a fresh client IP, and returns it.
func (e *rlEnv) NewIP() string {
	ip := rlIP()
	e.ip.Store(&ip)
	return ip
}

// rlForwarded adds X-Forwarded-For, as the trusted proxy in front would.
type rlForwarded struct {
	base http.RoundTripper
	ip   *atomic.Pointer[string]
}

func (f rlForwarded) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Forwarded-For") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("X-Forwarded-For", *f.ip.Load())
	}
	return f.base.RoundTrip(req)
}

// rlIP is a random client address no other test uses.
func rlIP() string {
	var b [16]byte
	_, _ = rand.Read(b[4:])
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	return netip.AddrFrom16(b).String()
}

// send makes a request claiming ip ("" for the current one) with an optional bearer.
func (e *rlEnv) send(method, path string, body any, ip, bearer string) *apitest.Response {
	e.T.Helper()
	h := http.Header{}
	if ip != "" {
		h.Set("X-Forwarded-For", ip)
	}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return e.Request(method, path, body, h)
}

func (e *rlEnv) login(email, password, ip string) *apitest.Response {
	e.T.Helper()
	return e.send(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password}, ip, "")
}

// register registers and verifies a user from a client IP of its own, so the setup
// spends nothing of the budgets the test is about.
func (e *rlEnv) register(email string) {
	e.T.Helper()
	prev := *e.ip.Load()
	e.NewIP()
	e.Register(email)
	e.ip.Store(&prev)
}

// rlSeconds reads a header holding a whole number of seconds.
func rlSeconds(t testing.TB, r *apitest.Response, name string) int {
	t.Helper()
	raw := r.Header.Get(name)
	n, err := strconv.Atoi(raw)
	if err != nil {
		t.Fatalf("%s = %q, want whole seconds (status %d %s)", name, raw, r.Status, r.Body)
	}
	return n
}

// rlExpect429 checks a refusal: 429, the code, Retry-After in [1, maxRetry] seconds
// and, for a budget (limit >= 0), RateLimit-Limit, RateLimit-Remaining 0 and
// RateLimit-Reset in [1, maxReset] seconds. Nothing in it may be a token.
func rlExpect429(t testing.TB, r *apitest.Response, code string, limit int, maxRetry, maxReset time.Duration) {
	t.Helper()
	apitest.Expect(t, r, http.StatusTooManyRequests, code)
	if ra := rlSeconds(t, r, "Retry-After"); ra < 1 || time.Duration(ra)*time.Second > maxRetry+time.Second {
		t.Fatalf("Retry-After = %d s, want between 1 and %v", ra, maxRetry)
	}
	if bytes.Contains(r.Body, []byte("token")) {
		t.Fatalf("429 body holds a token: %s", r.Body)
	}
	if limit < 0 {
		return
	}
	if got := r.Header.Get("RateLimit-Limit"); got != strconv.Itoa(limit) {
		t.Fatalf("RateLimit-Limit = %q, want %d", got, limit)
	}
	if got := r.Header.Get("RateLimit-Remaining"); got != "0" {
		t.Fatalf("RateLimit-Remaining = %q, want 0", got)
	}
	if reset := rlSeconds(t, r, "RateLimit-Reset"); reset < 1 || time.Duration(reset)*time.Second > maxReset+time.Second {
		t.Fatalf("RateLimit-Reset = %d s, want between 1 and %v", reset, maxReset)
	}
}

// rlBody is an error body without its request id (which differs on every answer).
func rlBody(t testing.TB, r *apitest.Response) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	if e, ok := m["error"].(map[string]any); ok {
		if id, _ := e["request_id"].(string); id == "" {
			t.Fatalf("error body without request_id: %s", r.Body)
		}
		delete(e, "request_id")
	}
	return m
}

func rlSameBody(t testing.TB, a, b *apitest.Response, what string) {
	t.Helper()
	if a.Status != b.Status || !reflect.DeepEqual(rlBody(t, a), rlBody(t, b)) {
		t.Fatalf("%s: answers differ:\n%d %s\n%d %s", what, a.Status, a.Body, b.Status, b.Body)
	}
}

// rlSameHeaders compares two answers' headers but those that differ on every answer.
func rlSameHeaders(t testing.TB, a, b *apitest.Response, what string) {
	t.Helper()
	strip := func(h http.Header) http.Header {
		h = h.Clone()
		for _, k := range []string{"Date", "X-Request-Id"} {
			h.Del(k)
		}
		return h
	}
	if ha, hb := strip(a.Header), strip(b.Header); !reflect.DeepEqual(ha, hb) {
		t.Fatalf("%s: headers differ:\n%v\n%v", what, ha, hb)
	}
}

// rlStatus is a status and error code, e.g. "401 invalid_credentials".
func rlStatus(r *apitest.Response) string { return fmt.Sprintf("%d %s", r.Status, r.Code()) }

// rlLoginUntil429 sends wrong passwords until the login is throttled; it fails when
// more than max are evaluated (answered 401) first.
func rlLoginUntil429(t testing.TB, e *rlEnv, email, ip string, max int) (evaluated int, throttled *apitest.Response) {
	t.Helper()
	for evaluated <= max {
		r := e.login(email, rlWrongPassword, ip)
		switch r.Status {
		case http.StatusUnauthorized:
			apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
			evaluated++
		case http.StatusTooManyRequests:
			return evaluated, r
		default:
			t.Fatalf("wrong password: %d %s", r.Status, r.Body)
		}
	}
	t.Fatalf("%d wrong passwords evaluated and still no 429", evaluated)
	return 0, nil
}

func TestRateLimitLoginBudgetPerIP(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"RATE_LIMIT_LOGIN": "3/m"})
	email := apitest.Email("rl-login-budget")
	e.register(email)

	ip := e.NewIP()
	// Unknown addresses, so the per-account throttle stays out of the way.
	for i := 1; i <= 3; i++ {
		apitest.Expect(t, e.login(apitest.Email("rl-nobody"), rlWrongPassword, ""), http.StatusUnauthorized, "invalid_credentials")
	}
	// 3 per minute: the next one fits in 20 s, the budget is whole in 60 s.
	rlExpect429(t, e.login(apitest.Email("rl-nobody"), rlWrongPassword, ""), "too_many_attempts", 3, 20*time.Second, time.Minute)
	// The budget is spent before anything is checked: the right password of a real
	// account learns nothing more.
	r := e.login(email, apitest.Password, "")
	rlExpect429(t, r, "too_many_attempts", 3, 20*time.Second, time.Minute)
	// A client cannot escape by prepending hops: the rightmost untrusted one counts.
	r = e.login(email, apitest.Password, "198.51.100.77, "+ip)
	rlExpect429(t, r, "too_many_attempts", 3, 20*time.Second, time.Minute)
	// The budget is per client IP: another one logs in.
	apitest.Expect(t, e.login(email, apitest.Password, rlIP()), http.StatusOK, "")
}

func TestRateLimitPurposeBudgets(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{
		"RATE_LIMIT_REGISTER":           "2/m",
		"RATE_LIMIT_FORGOT":             "2/m",
		"RATE_LIMIT_RESEND":             "2/m",
		"RATE_LIMIT_REFRESH":            "2/m",
		"RATE_LIMIT_EMAIL_VERIFY":       "2/m",
		"RATE_LIMIT_EMAILS_PER_ADDRESS": "1000/h",
	})
	cases := []struct {
		purpose, path string
		body          func() any
		status        int
		code          string
	}{
		{"register", "/v1/auth/register", func() any {
			return map[string]string{"email": apitest.Email("rl-register"), "password": apitest.Password}
		}, http.StatusAccepted, ""},
		{"forgot", "/v1/auth/password/forgot", func() any {
			return map[string]string{"email": apitest.Email("rl-forgot")}
		}, http.StatusAccepted, ""},
		{"resend", "/v1/auth/email/resend", func() any {
			return map[string]string{"email": apitest.Email("rl-resend")}
		}, http.StatusAccepted, ""},
		{"refresh", "/v1/auth/refresh", func() any {
			return map[string]string{"refresh_token": "not-a-refresh-token"}
		}, http.StatusUnauthorized, "invalid_refresh_token"},
		{"email verify", "/v1/auth/email/verify", func() any {
			return map[string]string{"token": "not-a-verification-token"}
		}, http.StatusBadRequest, "invalid_token"},
	}
	ip := rlIP() // one client spends every purpose: the budgets are separate
	for _, tc := range cases {
		for i := 1; i <= 2; i++ {
			r := e.send(http.MethodPost, tc.path, tc.body(), ip, "")
			if r.Status != tc.status || (tc.code != "" && r.Code() != tc.code) {
				t.Fatalf("%s %d of 2: %d %s, want %d %s", tc.purpose, i, r.Status, r.Body, tc.status, tc.code)
			}
		}
		r := e.send(http.MethodPost, tc.path, tc.body(), ip, "")
		if r.Status != http.StatusTooManyRequests {
			t.Fatalf("%s 3 of 2: %d %s, want 429", tc.purpose, r.Status, r.Body)
		}
		// 2 per minute: the next one fits in 30 s, the budget is whole in 60 s.
		rlExpect429(t, r, "rate_limited", 2, 30*time.Second, time.Minute)
		// Per client IP: another client still has its budget.
		if r := e.send(http.MethodPost, tc.path, tc.body(), rlIP(), ""); r.Status != tc.status {
			t.Fatalf("%s from another IP: %d %s, want %d", tc.purpose, r.Status, r.Body, tc.status)
		}
	}
	// Login has a budget of its own, untouched by all of the above.
	apitest.Expect(t, e.login(apitest.Email("rl-nobody"), rlWrongPassword, ip), http.StatusUnauthorized, "invalid_credentials")
}

func TestRateLimitGlobalBudget(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"RATE_LIMIT_GLOBAL": "3/m"})
	email := apitest.Email("rl-global")
	e.register(email) // register + verify from one IP
	e.NewIP()
	pair := e.Login(email, apitest.Password) // from another
	e.NewIP()

	apitest.Expect(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), http.StatusOK, "")
	apitest.Expect(t, e.send(http.MethodGet, "/v1/users/me", nil, "", pair.AccessToken), http.StatusOK, "")
	apitest.Expect(t, e.send(http.MethodGet, "/.well-known/openid-configuration", nil, "", ""), http.StatusOK, "")

	rlExpect429(t, e.send(http.MethodGet, "/v1/users/me", nil, "", pair.AccessToken), "rate_limited", 3, 20*time.Second, time.Minute)
	rlExpect429(t, e.send(http.MethodGet, "/.well-known/jwks.json", nil, "", ""), "rate_limited", 3, 20*time.Second, time.Minute)
	rlExpect429(t, e.send(http.MethodGet, "/v1/users/me", nil, "", ""), "rate_limited", 3, 20*time.Second, time.Minute)
	rlExpect429(t, e.login(email, apitest.Password, ""), "rate_limited", 3, 20*time.Second, time.Minute)
	// The probes are never limited.
	for i := 0; i < 5; i++ {
		apitest.Expect(t, e.send(http.MethodGet, "/healthz", nil, "", ""), http.StatusOK, "")
	}
	for _, probe := range []string{"/readyz", "/metrics"} {
		if r := e.send(http.MethodGet, probe, nil, "", ""); r.Status == http.StatusTooManyRequests {
			t.Fatalf("%s answered 429", probe)
		}
	}
	// Per client IP.
	apitest.Expect(t, e.send(http.MethodGet, "/v1/users/me", nil, rlIP(), pair.AccessToken), http.StatusOK, "")
}

func TestRateLimitEmailsPerAddress(t *testing.T) {
	t.Parallel()
	known := apitest.Email("rl-mailbox-known")
	// The known account is made with the limits off (same database), so it has not
	// spent its address budget on register: known and unknown start equal.
	apitest.Start(t, nil).Register(known)
	e := rlStart(t, map[string]string{"RATE_LIMIT_EMAILS_PER_ADDRESS": "2/h", "RATE_LIMIT_FORGOT": "100/m"})
	unknown := apitest.Email("rl-mailbox-unknown")

	run := func(addr string) []*apitest.Response {
		var out []*apitest.Response
		for i := 0; i < 3; i++ { // every request from a fresh client IP
			out = append(out, e.send(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": addr}, rlIP(), ""))
		}
		// The same normalised address in another case.
		out = append(out, e.send(http.MethodPost, "/v1/auth/password/forgot",
			map[string]string{"email": " " + strings.ToUpper(addr) + " "}, rlIP(), ""))
		// Every mail to the address counts: resend and register too.
		out = append(out, e.send(http.MethodPost, "/v1/auth/email/resend", map[string]string{"email": addr}, rlIP(), ""))
		out = append(out, e.send(http.MethodPost, "/v1/auth/register",
			map[string]string{"email": addr, "password": apitest.Password}, rlIP(), ""))
		return out
	}
	gotKnown, gotUnknown := run(known), run(unknown)
	for i, r := range gotKnown {
		// A spent address budget sends nothing and answers as usual: a 429 only for
		// known addresses (unknown ones are never sent anything) would tell them apart.
		apitest.Expect(t, r, http.StatusAccepted, "")
		rlSameBody(t, r, gotUnknown[i], fmt.Sprintf("request %d, known vs unknown address", i+1))
	}
	if n := e.OutboxCount(known, rlSubjectResetEmail); n != 2 {
		t.Fatalf("%d reset mails for the known address, want 2", n)
	}
}

// The per-address budget is a counter keyed by an address anyone can type, known or
// not: like the login throttle's, its Redis key must not hold the address in clear.
func TestRateLimitEmailsPerAddressKeysHoldNoAddress(t *testing.T) {
	t.Parallel()
	e := rlStart(t, nil)
	var b [8]byte
	_, _ = rand.Read(b[:])
	marker := hex.EncodeToString(b[:])
	addr := "rl-privacy-" + marker + "@example.com"
	apitest.Expect(t, e.send(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": addr}, "", ""), http.StatusAccepted, "")
	ctx := context.Background()
	var found []string
	iter := e.App.Redis.Scan(ctx, 0, "*"+marker+"*", 1000).Iterator()
	for iter.Next(ctx) {
		found = append(found, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		_ = e.App.Redis.Del(ctx, found...).Err()
		t.Fatalf("Redis keys %q hold the address %s in clear", found, addr)
	}
}

func TestThrottleLoginAcrossRotatingIPs(t *testing.T) {
	t.Parallel()
	const failures = 10
	e := rlStart(t, map[string]string{
		"LOGIN_THROTTLE_FAILURES":       strconv.Itoa(failures),
		"LOGIN_THROTTLE_WAIT_INCREMENT": "10s",
		"LOGIN_THROTTLE_MAX_WAIT":       "1m",
	})
	known, unknown := apitest.Email("rl-spray-known"), apitest.Email("rl-spray-unknown")
	e.register(known)

	attack := func(email string) []*apitest.Response {
		var out []*apitest.Response
		for i := 0; i < 100; i++ { // a fresh X-Forwarded-For for every guess
			out = append(out, e.login(email, fmt.Sprintf("guess number %d!", i), rlIP()))
		}
		return out
	}
	gotKnown, gotUnknown := attack(known), attack(unknown)

	evaluated := 0
	for i, r := range gotKnown {
		switch {
		case r.Status == http.StatusUnauthorized:
			apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
			evaluated++
		case i < failures:
			t.Fatalf("guess %d throttled before LOGIN_THROTTLE_FAILURES (%d): %d %s", i+1, failures, r.Status, r.Body)
		default:
			rlExpect429(t, r, "too_many_attempts", -1, 10*time.Second, 0)
		}
		// Unknown accounts are throttled exactly like real ones (no enumeration).
		if rlStatus(r) != rlStatus(gotUnknown[i]) {
			t.Fatalf("guess %d: known account %s, unknown account %s", i+1, rlStatus(r), rlStatus(gotUnknown[i]))
		}
		rlSameBody(t, r, gotUnknown[i], fmt.Sprintf("guess %d, known vs unknown account", i+1))
	}
	if evaluated > failures+1 {
		t.Fatalf("%d of 100 guesses from rotating IPs were evaluated, want at most %d", evaluated, failures+1)
	}
	if got := gotUnknown[99].Header.Get("Retry-After"); got == "" {
		t.Fatal("throttled unknown account: no Retry-After")
	}
}

// Not parallel: it needs the throttle's short wait to outlast two quick requests.
func TestThrottleRightPasswordWhileThrottled(t *testing.T) {
	const failures = 3
	e := rlStart(t, map[string]string{
		"LOGIN_THROTTLE_FAILURES":       strconv.Itoa(failures),
		"LOGIN_THROTTLE_WAIT_INCREMENT": "300ms",
		"LOGIN_THROTTLE_MAX_WAIT":       "1s",
	})
	email := apitest.Email("rl-right-password")
	e.register(email)
	e.NewIP()

	for i := 1; i <= failures; i++ {
		apitest.Expect(t, e.login(email, rlWrongPassword, ""), http.StatusUnauthorized, "invalid_credentials")
	}
	_, wrong := rlLoginUntil429(t, e, email, "", 1)
	rlExpect429(t, wrong, "too_many_attempts", -1, time.Second, 0)
	right := e.login(email, apitest.Password, "")
	rlExpect429(t, right, "too_many_attempts", -1, time.Second, 0)
	rlSameBody(t, wrong, right, "throttled: wrong vs right password")
	rlSameHeaders(t, wrong, right, "throttled: wrong vs right password")
	if c := right.Header.Get("Set-Cookie"); c != "" {
		t.Fatalf("throttled right password set a cookie: %s", c)
	}

	// After the wait the right password logs in.
	var pair apitest.Pair
	deadline := time.Now().Add(3 * time.Second)
	for {
		time.Sleep(150 * time.Millisecond)
		r := e.login(email, apitest.Password, "")
		if r.Status == http.StatusOK {
			r.JSON(t, &pair)
			break
		}
		apitest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if time.Now().After(deadline) {
			t.Fatal("the right password is still throttled 3 s after a 300 ms wait")
		}
	}
	// The throttled right password opened no session: only this one exists.
	var sessions struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	r := e.send(http.MethodGet, "/v1/users/me/sessions", nil, "", pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	r.JSON(t, &sessions)
	if len(sessions.Sessions) != 1 {
		t.Fatalf("%d sessions after one successful login, want 1: %s", len(sessions.Sessions), r.Body)
	}

	// The success reset the counter: the whole threshold again before a wait.
	for i := 1; i <= failures; i++ {
		apitest.Expect(t, e.login(email, rlWrongPassword, ""), http.StatusUnauthorized, "invalid_credentials")
	}
	rlExpect429(t, e.login(email, rlWrongPassword, ""), "too_many_attempts", -1, time.Second, 0)
}

func TestThrottleEmailCaseVariantsShareOneCounter(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{
		"LOGIN_THROTTLE_FAILURES":       "3",
		"LOGIN_THROTTLE_WAIT_INCREMENT": "10s",
		"LOGIN_THROTTLE_MAX_WAIT":       "1m",
	})
	email := apitest.Email("rl-case")
	e.register(email)
	local, domain, _ := strings.Cut(email, "@")
	variants := []string{
		strings.ToUpper(email),
		strings.ToUpper(local[:1]) + local[1:] + "@" + strings.ToUpper(domain),
		"  " + local + "@Example.COM ",
	}
	for _, v := range variants { // each from a fresh IP: only the account counter can add up
		apitest.Expect(t, e.login(v, rlWrongPassword, rlIP()), http.StatusUnauthorized, "invalid_credentials")
	}
	rlExpect429(t, e.login(email, rlWrongPassword, rlIP()), "too_many_attempts", -1, 10*time.Second, 0)
	rlExpect429(t, e.login(strings.ToUpper(email), apitest.Password, rlIP()), "too_many_attempts", -1, 10*time.Second, 0)
}

func TestThrottleResetFlowOpenWhileThrottled(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{
		"LOGIN_THROTTLE_FAILURES":       "3",
		"LOGIN_THROTTLE_WAIT_INCREMENT": "1s",
		"LOGIN_THROTTLE_MAX_WAIT":       "2s",
	})
	email := apitest.Email("rl-reset")
	e.register(email)
	e.NewIP()
	rlLoginUntil429(t, e, email, "", 4)
	rlExpect429(t, e.login(email, apitest.Password, ""), "too_many_attempts", -1, 2*time.Second, 0)

	// The victim (same IP as the attacker, the worst case) can still reset.
	apitest.Expect(t, e.send(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, "", ""), http.StatusAccepted, "")
	tok := e.OutboxToken(email, rlSubjectResetEmail)
	apitest.Expect(t, e.send(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": rlResetPassword}, "", ""), http.StatusNoContent, "")

	// Once the wait passed, the new password logs in; nothing locks for good.
	deadline := time.Now().Add(4 * time.Second)
	for {
		r := e.login(email, rlResetPassword, "")
		if r.Status == http.StatusOK {
			break
		}
		apitest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if time.Now().After(deadline) {
			t.Fatal("the new password is still throttled 4 s after a reset with a 2 s maximum wait")
		}
		time.Sleep(200 * time.Millisecond)
	}
	apitest.Expect(t, e.login(email, apitest.Password, ""), http.StatusUnauthorized, "invalid_credentials")
}

func TestThrottleParallelWrongPasswords(t *testing.T) {
	t.Parallel()
	const perIP = 5
	e := rlStart(t, map[string]string{
		"LOGIN_THROTTLE_FAILURES":       "100",
		"LOGIN_THROTTLE_IP_FAILURES":    strconv.Itoa(perIP),
		"LOGIN_THROTTLE_WAIT_INCREMENT": "1m",
		"LOGIN_THROTTLE_MAX_WAIT":       "1m",
		"RATE_LIMIT_LOGIN":              "1000/m",
		"RATE_LIMIT_GLOBAL":             "1000/m",
	})
	email := apitest.Email("rl-parallel")
	e.register(email)
	ip := e.NewIP()
	body, _ := json.Marshal(map[string]string{"email": email, "password": rlWrongPassword})

	statuses := make([]string, 60)
	errs := make([]error, 60)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, e.URL+"/v1/auth/login", bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", ip)
			res, err := e.Client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			r := &apitest.Response{Status: res.StatusCode, Header: res.Header, Body: raw}
			statuses[i] = rlStatus(r)
			if r.Status == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
				errs[i] = fmt.Errorf("429 without Retry-After")
			}
		})
	}
	close(start)
	wg.Wait()
	counts := map[string]int{}
	for i, s := range statuses {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		counts[s]++
	}
	evaluated, throttled := counts["401 invalid_credentials"], counts["429 too_many_attempts"]
	if evaluated+throttled != 60 {
		t.Fatalf("answers %v: want only 401 invalid_credentials and 429 too_many_attempts", counts)
	}
	if evaluated < 1 || evaluated > perIP+1 {
		t.Fatalf("60 parallel wrong passwords with LOGIN_THROTTLE_IP_FAILURES=%d: %d evaluated (%v)", perIP, evaluated, counts)
	}
}

func TestRateLimitIgnoresForwardedForFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	// No TRUSTED_PROXIES: X-Forwarded-For is the client's word and means nothing.
	e := apitest.Start(t, map[string]string{"RATE_LIMIT_ENABLED": "true", "TRUSTED_PROXIES": "", "RATE_LIMIT_LOGIN": "3/m"})
	// The peer address is the only client IP left, and every test binary is
	// 127.0.0.1: dial from a random loopback address of our own.
	e.Client.Transport = rlLoopbackTransport(t)

	for i := 0; i < 10; i++ {
		h := http.Header{}
		h.Set("X-Forwarded-For", []string{rlIP(), "198.51.100." + strconv.Itoa(i), "203.0.113.9, " + rlIP()}[i%3])
		h.Set("X-Real-IP", rlIP())
		r := e.Request(http.MethodPost, "/v1/auth/login",
			map[string]string{"email": apitest.Email("rl-spoof"), "password": rlWrongPassword}, h)
		if i >= 3 {
			rlExpect429(t, r, "too_many_attempts", 3, 20*time.Second, time.Minute)
		} else if r.Status != http.StatusUnauthorized {
			t.Fatalf("login %d: %d %s, want 401", i+1, r.Status, r.Body)
		}
	}
	// Sanity: another peer address has its own budget, so the limit is per peer.
	e.Client.Transport = rlLoopbackTransport(t)
	apitest.Expect(t, e.Request(http.MethodPost, "/v1/auth/login",
		map[string]string{"email": apitest.Email("rl-spoof"), "password": rlWrongPassword}, nil), http.StatusUnauthorized, "invalid_credentials")
}

// rlLoopbackTransport dials from a random address of 127.0.0.0/8.
func rlLoopbackTransport(t *testing.T) http.RoundTripper {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := binary.BigEndian.Uint32(b[:])%(1<<24-2) + 2 // never 127.0.0.0 or 127.0.0.1
	local := net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}, Timeout: 5 * time.Second}
	tr.DialContext = d.DialContext
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// rlRedisServer is a redis-server of the test's own, without persistence.
type rlRedisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	out  bytes.Buffer
}

func rlStartRedis(t *testing.T, port int) *rlRedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		bin = "/usr/bin/redis-server"
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
	}
	s := &rlRedisServer{t: t, port: port}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s (the outage test needs its own Redis): %v", bin, err)
	}
	t.Cleanup(s.Stop)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer within 5 s: %s", port, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *rlRedisServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Stop kills the server (only this test's own process) and waits for it.
func (s *rlRedisServer) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func TestRateLimitRedisOutageFailsClosed(t *testing.T) {
	t.Parallel()
	const failures = 5
	srv := rlStartRedis(t, 0)
	e := rlStart(t, map[string]string{
		"REDIS_URL":                     "redis://" + srv.Addr() + "/0",
		"LOGIN_THROTTLE_FAILURES":       strconv.Itoa(failures),
		"LOGIN_THROTTLE_WAIT_INCREMENT": "1s",
		"LOGIN_THROTTLE_MAX_WAIT":       "2s",
	})
	email := apitest.Email("rl-outage")
	e.register(email)
	pair := e.Login(email, apitest.Password)

	// An attack before the outage is throttled...
	guesses := func() int {
		evaluated := 0
		for i := 0; i < 30; i++ {
			r := e.login(email, rlWrongPassword, rlIP())
			if r.Status == http.StatusUnauthorized {
				evaluated++
			} else {
				apitest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
			}
		}
		return evaluated
	}
	before := guesses()
	if before > failures+1 {
		t.Fatalf("%d of 30 guesses evaluated before the outage, want at most %d", before, failures+1)
	}

	srv.Stop()
	// ...and while Redis is down nothing is evaluated: fail closed, never 200 or 401.
	for _, c := range []struct {
		what         string
		method, path string
		body         any
		bearer       string
		times        int
	}{
		{"login, right password", http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, "", 2},
		{"login, wrong password", http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": rlWrongPassword}, "", 1},
		{"login, unknown account", http.MethodPost, "/v1/auth/login", map[string]string{"email": apitest.Email("rl-outage-nobody"), "password": rlWrongPassword}, "", 1},
		{"register", http.MethodPost, "/v1/auth/register", map[string]string{"email": apitest.Email("rl-outage-new"), "password": apitest.Password}, "", 1},
		{"forgot", http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, "", 1},
		{"refresh", http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, "", 1},
		{"me", http.MethodGet, "/v1/users/me", nil, pair.AccessToken, 1},
	} {
		for i := 0; i < c.times; i++ {
			r := e.send(c.method, c.path, c.body, rlIP(), c.bearer)
			if r.Status != http.StatusServiceUnavailable || r.Code() != "unavailable" {
				t.Fatalf("%s with Redis down: %d %s, want 503 unavailable", c.what, r.Status, r.Body)
			}
			if bytes.Contains(r.Body, []byte("token")) {
				t.Fatalf("%s with Redis down: body holds a token: %s", c.what, r.Body)
			}
		}
	}
	apitest.Expect(t, e.send(http.MethodGet, "/healthz", nil, "", ""), http.StatusOK, "")
	if r := e.send(http.MethodGet, "/readyz", nil, "", ""); r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "redis") {
		t.Fatalf("/readyz with Redis down: %d %s, want 503 naming redis", r.Status, r.Body)
	}

	// Redis comes back (empty: no persistence) on the same port: the service recovers
	// without a restart.
	rlStartRedis(t, srv.port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.login(email, rlWrongPassword, rlIP())
		if r.Status == http.StatusUnauthorized {
			break
		}
		apitest.Expect(t, r, http.StatusServiceUnavailable, "unavailable")
		if time.Now().After(deadline) {
			t.Fatal("login still 503 10 s after Redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The counters died with that Redis (item 70): each Redis lifetime allows at most
	// LOGIN_THROTTLE_FAILURES (+1) evaluated guesses, far below 100 consecutive ones.
	after := 1 + guesses()
	if after > failures+1 || before+after > 100 {
		t.Fatalf("%d guesses evaluated after Redis came back (%d before), want at most %d", after, before, failures+1)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		r := e.login(email, apitest.Password, rlIP())
		if r.Status == http.StatusOK {
			break
		}
		apitest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if time.Now().After(deadline) {
			t.Fatal("the right password is still refused 5 s after Redis came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	apitest.Expect(t, e.send(http.MethodGet, "/readyz", nil, "", ""), http.StatusOK, "")
}
