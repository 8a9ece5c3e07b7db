package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// The v2 contract (API.md "v2"): problem+json errors, the refresh token only in an
// HttpOnly; Secure; SameSite=Strict cookie scoped to /v2/auth, a CSRF guard on the cookie
// routes, and Deprecation/Sunset on v1 when API_V1_SUNSET is set.

const (
	v2AppOrigin = "https://app.test"
	v2Cookie    = "tf_refresh"
)

func v2Start(t *testing.T, env map[string]string) *apitest.Env {
	t.Helper()
	vars := map[string]string{"CORS_ALLOWED_ORIGINS": "http://localhost:3000," + v2AppOrigin}
	for k, v := range env {
		vars[k] = v
	}
	return apitest.Start(t, vars)
}

// v2XRW is the header a script of the web app sends.
func v2XRW() http.Header { return http.Header{"X-Requested-With": {"XMLHttpRequest"}} }

func v2WithCookie(h http.Header, rt string) http.Header {
	h.Set("Cookie", v2Cookie+"="+rt)
	return h
}

// v2RefreshCookie returns the refresh cookie an answer sets (nil when none).
func v2RefreshCookie(t testing.TB, r *apitest.Response) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if c.Name == v2Cookie {
			if found != nil {
				t.Fatalf("two refresh cookies in one answer: %q", r.Header.Values("Set-Cookie"))
			}
			found = c
		}
	}
	return found
}

// v2ExpectCookieAttrs checks the attributes every refresh cookie carries.
func v2ExpectCookieAttrs(t testing.TB, c *http.Cookie) {
	t.Helper()
	if c == nil {
		t.Fatal("no refresh cookie")
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/v2/auth" || c.Domain != "" {
		t.Fatalf("refresh cookie attributes: %q", c.Raw)
	}
}

// v2ExpectLiveCookie checks a cookie that holds a refresh token for ttl.
func v2ExpectLiveCookie(t testing.TB, r *apitest.Response, ttl time.Duration) string {
	t.Helper()
	c := v2RefreshCookie(t, r)
	v2ExpectCookieAttrs(t, c)
	if c.Value == "" || c.MaxAge != int(ttl/time.Second) || !strings.Contains(c.Raw, "Max-Age=") {
		t.Fatalf("refresh cookie value or Max-Age: %q", c.Raw)
	}
	return c.Value
}

// v2ExpectExpiredCookie checks that an answer tells the browser to drop the cookie.
func v2ExpectExpiredCookie(t testing.TB, r *apitest.Response) {
	t.Helper()
	c := v2RefreshCookie(t, r)
	v2ExpectCookieAttrs(t, c)
	if c.Value != "" || c.MaxAge >= 0 || !strings.Contains(c.Raw, "Max-Age=0") || !c.Expires.Before(time.Now()) {
		t.Fatalf("refresh cookie not expired: %q", c.Raw)
	}
}

// v2Pair checks a v2 token pair: 200, no-store, no refresh token in the body.
func v2Pair(t testing.TB, r *apitest.Response) apitest.Pair {
	t.Helper()
	apitest.Expect(t, r, http.StatusOK, "")
	var m map[string]any
	r.JSON(t, &m)
	if _, ok := m["refresh_token"]; ok {
		t.Fatalf("v2 pair with a refresh_token in the body: %s", r.Body)
	}
	var p apitest.Pair
	r.JSON(t, &p)
	if p.AccessToken == "" || p.TokenType != "Bearer" || p.ExpiresIn <= 0 || p.User.ID == "" {
		t.Fatalf("v2 pair: %s", r.Body)
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("token answer without no-store: %q", r.Header.Get("Cache-Control"))
	}
	return p
}

// v2Problem checks an RFC 9457 answer of status and code, and returns its fields.
func v2Problem(t testing.TB, r *apitest.Response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json (%s)", ct, r.Body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	for _, k := range []string{"type", "title", "detail", "code", "request_id"} {
		if s, _ := p[k].(string); s == "" {
			t.Fatalf("problem without %s: %s", k, r.Body)
		}
	}
	if p["status"] != float64(status) || (code != "" && p["code"] != code) {
		t.Fatalf("problem status/code: %s, want %d %s", r.Body, status, code)
	}
	if rid := r.Header.Get("X-Request-Id"); rid == "" || p["request_id"] != rid {
		t.Fatalf("problem request_id %v, X-Request-Id %q", p["request_id"], rid)
	}
	if _, ok := p["error"]; ok {
		t.Fatalf("v2 problem with a v1 error member: %s", r.Body)
	}
	return p
}

func v2Login(e *apitest.Env, email string, h http.Header) *apitest.Response {
	e.T.Helper()
	return e.Request(http.MethodPost, "/v2/auth/login", map[string]string{"email": email, "password": apitest.Password}, h)
}

func v2Refresh(e *apitest.Env, rt string, h http.Header) *apitest.Response {
	e.T.Helper()
	if rt != "" {
		h = v2WithCookie(h, rt)
	}
	return e.Request(http.MethodPost, "/v2/auth/refresh", nil, h)
}

func TestV2LoginSetsRefreshCookie(t *testing.T) {
	t.Parallel()
	e := v2Start(t, map[string]string{"REFRESH_TOKEN_TTL": "48h"})
	email := apitest.Email("v2login")
	e.Register(email)

	r := v2Login(e, email, v2XRW())
	p := v2Pair(t, r)
	rt := v2ExpectLiveCookie(t, r, 48*time.Hour)
	if !strings.HasPrefix(rt, "rt_") {
		t.Fatalf("cookie value %q is not a refresh token", rt)
	}
	flowExpectATAlive(t, e, p.AccessToken)
	if p.User.Email != email || flowSID(t, p.AccessToken) == "" {
		t.Fatalf("v2 login user: %+v", p.User)
	}

	// Wrong password: the same problem as v1's error, no cookie.
	bad := e.Request(http.MethodPost, "/v2/auth/login", map[string]string{"email": email, "password": "wrong horse battery staple"}, v2XRW())
	v2Problem(t, bad, http.StatusUnauthorized, "invalid_credentials")
	if v2RefreshCookie(t, bad) != nil {
		t.Fatal("a failed login set the refresh cookie")
	}
	// Login sets the cookie, so it passes the CSRF guard too.
	v2Problem(t, v2Login(e, email, nil), http.StatusForbidden, "csrf_failed")
	v2Pair(t, v2Login(e, email, http.Header{"Origin": {v2AppOrigin}}))
}

func TestV2RefreshRotatesTheCookieAndDetectsReuse(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	e := v2Start(t, map[string]string{"REFRESH_REUSE_GRACE": grace.String()})
	email := apitest.Email("v2refresh")
	e.Register(email)
	r0 := v2Login(e, email, v2XRW())
	p0 := v2Pair(t, r0)
	c0 := v2ExpectLiveCookie(t, r0, e.Cfg.RefreshTokenTTL)

	r1 := v2Refresh(e, c0, v2XRW())
	p1 := v2Pair(t, r1)
	c1 := v2ExpectLiveCookie(t, r1, e.Cfg.RefreshTokenTTL)
	if c1 == c0 || p1.AccessToken == p0.AccessToken {
		t.Fatal("refresh did not rotate the cookie")
	}
	if flowSID(t, p1.AccessToken) != flowSID(t, p0.AccessToken) {
		t.Fatal("refresh moved to another session")
	}
	flowExpectATAlive(t, e, p1.AccessToken)

	// Within the grace the previous cookie gets the same successor.
	again := v2Refresh(e, c0, v2XRW())
	v2Pair(t, again)
	if v2ExpectLiveCookie(t, again, e.Cfg.RefreshTokenTTL) != c1 {
		t.Fatal("the previous cookie within the grace minted a second live refresh token")
	}

	time.Sleep(grace + 500*time.Millisecond)
	reused := v2Refresh(e, c0, v2XRW())
	v2Problem(t, reused, http.StatusUnauthorized, "refresh_token_reused")
	v2ExpectExpiredCookie(t, reused)
	// Reuse ended the session: the successor and the access tokens too.
	dead := v2Refresh(e, c1, v2XRW())
	v2Problem(t, dead, http.StatusUnauthorized, "")
	v2ExpectExpiredCookie(t, dead)
	flowExpectATDead(t, e, p1.AccessToken)

	// No cookie at all: invalid, and the (absent) cookie is expired anyway.
	v2Problem(t, v2Refresh(e, "", v2XRW()), http.StatusUnauthorized, "invalid_refresh_token")
}

func TestV2RefreshCSRFGuard(t *testing.T) {
	t.Parallel()
	e := v2Start(t, nil)
	email := apitest.Email("v2csrf")
	e.Register(email)
	r := v2Login(e, email, v2XRW())
	v2Pair(t, r)
	rt := v2ExpectLiveCookie(t, r, e.Cfg.RefreshTokenTTL)

	for name, h := range map[string]http.Header{
		"neither header":     {},
		"foreign origin":     {"Origin": {"https://evil.test"}},
		"null origin":        {"Origin": {"null"}},
		"origin prefix":      {"Origin": {v2AppOrigin + ".evil.test"}},
		"empty x-req-with":   {"X-Requested-With": {""}},
		"origin with a path": {"Origin": {v2AppOrigin + "/"}},
	} {
		res := v2Refresh(e, rt, h)
		v2Problem(t, res, http.StatusForbidden, "csrf_failed")
		if v2RefreshCookie(t, res) != nil {
			t.Fatalf("%s: a refused call touched the cookie", name)
		}
	}
	// The refusals did not spend the token: an allowed Origin refreshes with it.
	res := v2Refresh(e, rt, http.Header{"Origin": {v2AppOrigin}})
	p := v2Pair(t, res)
	rt = v2ExpectLiveCookie(t, res, e.Cfg.RefreshTokenTTL)

	// Logout is guarded the same way, before anything else.
	lo := e.Request(http.MethodPost, "/v2/auth/logout", nil, v2WithCookie(http.Header{"Authorization": {"Bearer " + p.AccessToken}}, rt))
	v2Problem(t, lo, http.StatusForbidden, "csrf_failed")
	flowExpectATAlive(t, e, p.AccessToken)
}

func TestV2RefreshIgnoresABodyToken(t *testing.T) {
	t.Parallel()
	e := v2Start(t, nil)
	_, p := e.NewUser(t) // a v1 pair: its refresh token is a valid one
	r := e.Request(http.MethodPost, "/v2/auth/refresh", map[string]string{"refresh_token": p.RefreshToken}, v2XRW())
	v2Problem(t, r, http.StatusUnauthorized, "invalid_refresh_token")
	if strings.Contains(string(r.Body), "access_token") {
		t.Fatalf("body: %s", r.Body)
	}
	// The body token was not even spent.
	flowRefreshOK(t, e, p.RefreshToken)
}

func TestV2LogoutExpiresTheCookieAndEndsTheSession(t *testing.T) {
	t.Parallel()
	e := v2Start(t, nil)
	email := apitest.Email("v2logout")
	e.Register(email)
	r := v2Login(e, email, v2XRW())
	p := v2Pair(t, r)
	rt := v2ExpectLiveCookie(t, r, e.Cfg.RefreshTokenTTL)
	other := e.Login(email, apitest.Password) // another session stays

	// Bearer is required.
	v2Problem(t, e.Request(http.MethodPost, "/v2/auth/logout", nil, v2WithCookie(v2XRW(), rt)), http.StatusUnauthorized, "unauthorized")

	h := v2WithCookie(v2XRW(), rt)
	h.Set("Authorization", "Bearer "+p.AccessToken)
	lo := e.Request(http.MethodPost, "/v2/auth/logout", nil, h)
	if lo.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", lo.Status, lo.Body)
	}
	v2ExpectExpiredCookie(t, lo)
	flowExpectATDead(t, e, p.AccessToken)
	v2Problem(t, e.Do(http.MethodGet, "/v2/users/me", nil, p.AccessToken), http.StatusUnauthorized, "unauthorized")
	v2Problem(t, v2Refresh(e, rt, v2XRW()), http.StatusUnauthorized, "")
	flowExpectATAlive(t, e, other.AccessToken)
}

func TestV2ErrorsAreProblemJSON(t *testing.T) {
	t.Parallel()
	e := v2Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	over := `{"email":"` + strings.Repeat("a", 64<<10) + `"}`
	rid := http.Header{"X-Request-Id": {"v2-problem-test"}}
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		header http.Header
		status int
		code   string
	}{
		{"400 invalid_json", http.MethodPost, "/v2/auth/register", `{"email":`, nil, 400, "invalid_json"},
		{"400 invalid_email", http.MethodPost, "/v2/auth/register", map[string]string{"email": "nope", "password": apitest.Password}, nil, 400, "invalid_email"},
		{"401 no token", http.MethodGet, "/v2/users/me", nil, nil, 401, "unauthorized"},
		{"403 csrf", http.MethodPost, "/v2/auth/refresh", nil, nil, 403, "csrf_failed"},
		{"404 unknown route", http.MethodGet, "/v2/auth/nope", nil, nil, 404, "not_found"},
		{"405 wrong method", http.MethodGet, "/v2/auth/login", nil, nil, 405, "method_not_allowed"},
		{"413 too large", http.MethodPost, "/v2/auth/register", over, nil, 413, "payload_too_large"},
		{"415 text/plain", http.MethodPost, "/v2/auth/register", `{}`, http.Header{"Content-Type": {"text/plain"}}, 415, "unsupported_media_type"},
		{"422 weak password", http.MethodPost, "/v2/auth/register", map[string]string{"email": apitest.Email("v2weak"), "password": "short1"}, nil, 422, "weak_password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := flowFor(t, e).Request(tc.method, tc.path, tc.body, tc.header)
			v2Problem(t, r, tc.status, tc.code)
			if tc.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: %v", r.Header)
			}
			// An incoming request id is echoed in both places.
			h := rid.Clone()
			for k, v := range tc.header {
				h[k] = v
			}
			r = flowFor(t, e).Request(tc.method, tc.path, tc.body, h)
			if p := v2Problem(t, r, tc.status, tc.code); p["request_id"] != "v2-problem-test" {
				t.Fatalf("request_id = %v", p["request_id"])
			}
		})
	}
}

func TestV2RateLimitIsProblemJSONWithHeaders(t *testing.T) {
	t.Parallel()
	e := v2Start(t, map[string]string{"RATE_LIMIT_ENABLED": "true", "TRUSTED_PROXIES": "127.0.0.1/32",
		"RATE_LIMIT_REFRESH": "1/m"})
	h := v2XRW()
	h.Set("X-Forwarded-For", rlIP())
	v2Problem(t, e.Request(http.MethodPost, "/v2/auth/refresh", nil, h), http.StatusUnauthorized, "invalid_refresh_token")
	r := e.Request(http.MethodPost, "/v2/auth/refresh", nil, h)
	v2Problem(t, r, http.StatusTooManyRequests, "")
	for _, k := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		if r.Header.Get(k) == "" {
			t.Fatalf("429 without %s: %v", k, r.Header)
		}
	}
}

func TestV2CrossSiteTextPlainRefreshIsRefused(t *testing.T) {
	t.Parallel()
	e := v2Start(t, nil)
	email := apitest.Email("v2xsite")
	e.Register(email)
	r := v2Login(e, email, v2XRW())
	v2Pair(t, r)
	rt := v2ExpectLiveCookie(t, r, e.Cfg.RefreshTokenTTL)

	for _, path := range []string{"/v2/auth/refresh", "/v2/auth/logout"} {
		h := v2WithCookie(http.Header{"Origin": {"https://evil.test"}, "Content-Type": {"text/plain"}}, rt)
		res := e.Request(http.MethodPost, path, `{"refresh_token":"x"}`, h)
		if res.Status != http.StatusUnsupportedMediaType && res.Status != http.StatusForbidden {
			t.Fatalf("cross-site text/plain POST %s: %d %s", path, res.Status, res.Body)
		}
		v2Problem(t, res, res.Status, "")
		if v2RefreshCookie(t, res) != nil || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("cross-site POST %s: %v", path, res.Header)
		}
	}
	// The token is untouched.
	v2Pair(t, v2Refresh(e, rt, v2XRW()))
}

func TestV2TwinsOfTheV1Routes(t *testing.T) {
	t.Parallel()
	e := v2Start(t, nil)
	email := apitest.Email("v2twin")
	r := e.Do(http.MethodPost, "/v2/auth/register", map[string]string{"email": email, "password": apitest.Password, "name": "Twin"}, "")
	if r.Status != http.StatusAccepted {
		t.Fatalf("v2 register: %d %s", r.Status, r.Body)
	}
	tok := e.OutboxToken(email, "auth.email.verification_requested")
	v := e.Do(http.MethodPost, "/v2/auth/email/verify", map[string]string{"token": tok}, "")
	apitest.Expect(t, v, http.StatusOK, "")
	v2Problem(t, e.Do(http.MethodPost, "/v2/auth/email/verify", map[string]string{"token": tok}, ""), http.StatusBadRequest, "invalid_token")

	p := v2Pair(t, v2Login(e, email, v2XRW()))
	me := e.Do(http.MethodGet, "/v2/users/me", nil, p.AccessToken)
	apitest.Expect(t, me, http.StatusOK, "")
	var u apitest.User
	me.JSON(t, &u)
	if u.Email != email || !u.EmailVerified || u.Name != "Twin" {
		t.Fatalf("v2 me: %s", me.Body)
	}
	up := e.Do(http.MethodPatch, "/v2/users/me", map[string]string{"name": "Renamed"}, p.AccessToken)
	apitest.Expect(t, up, http.StatusOK, "")
	vr := e.Do(http.MethodGet, "/v2/auth/verify", nil, p.AccessToken)
	if vr.Status != http.StatusOK || vr.Header.Get("X-Auth-User-Id") != u.ID {
		t.Fatalf("v2 verify: %d %v", vr.Status, vr.Header)
	}
	s := e.Do(http.MethodGet, "/v2/users/me/sessions", nil, p.AccessToken)
	apitest.Expect(t, s, http.StatusOK, "")
	v2Problem(t, e.Do(http.MethodDelete, "/v2/users/me/sessions/00000000-0000-0000-0000-000000000000", nil, p.AccessToken),
		http.StatusNotFound, "")
	v2Problem(t, e.Do(http.MethodGet, "/v2/admin/users", nil, p.AccessToken), http.StatusForbidden, "forbidden")
	apitest.Expect(t, e.Do(http.MethodPost, "/v2/auth/password/forgot", map[string]string{"email": email}, ""), http.StatusAccepted, "")
	apitest.Expect(t, e.Do(http.MethodPost, "/v2/auth/logout-all", nil, p.AccessToken), http.StatusNoContent, "")
	flowExpectATDead(t, e, p.AccessToken)
}

func TestV1DeprecationHeaders(t *testing.T) {
	t.Parallel()
	const sunset = "Wed, 30 Jun 2027 00:00:00 GMT"
	on := v2Start(t, map[string]string{"API_V1_SUNSET": "2027-06-30"})
	off := v2Start(t, nil)
	email := apitest.Email("v2sunset")
	on.Register(email)

	v1 := []*apitest.Response{
		on.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, ""),
		on.Do(http.MethodGet, "/v1/users/me", nil, ""), // an error answer too
		on.Do(http.MethodGet, "/v1/admin/roles", nil, ""),
		on.Do(http.MethodDelete, "/v1/users/me/sessions/abc", nil, ""),
		on.Do(http.MethodGet, "/v1/nope", nil, ""),
		on.Do(http.MethodGet, "/v1/auth/login", nil, ""),
	}
	for i, r := range v1 {
		if r.Header.Get("Deprecation") != "true" || r.Header.Get("Sunset") != sunset {
			t.Fatalf("v1 answer %d (%d) without Deprecation/Sunset: %v", i, r.Status, r.Header)
		}
	}
	if got := v1[0].Header.Get("Link"); got != `</v2/auth/login>; rel="successor-version"` {
		t.Fatalf("Link = %q", got)
	}
	if got := v1[3].Header.Get("Link"); got != `</v2/users/me/sessions/abc>; rel="successor-version"` {
		t.Fatalf("Link = %q", got)
	}
	if v1[4].Status != http.StatusNotFound || v1[5].Status != http.StatusMethodNotAllowed ||
		v1[4].Header.Get("Link") != "" || v1[5].Header.Get("Link") != "" {
		t.Fatalf("v1 404/405: %d %v, %d %v", v1[4].Status, v1[4].Header, v1[5].Status, v1[5].Header)
	}
	if t0, err := http.ParseTime(v1[0].Header.Get("Sunset")); err != nil || !t0.Equal(time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("Sunset is not an HTTP-date: %v", err)
	}

	p := v2Pair(t, v2Login(on, email, v2XRW()))
	v2 := []*apitest.Response{
		on.Do(http.MethodGet, "/v2/users/me", nil, p.AccessToken),
		on.Do(http.MethodGet, "/v2/users/me", nil, ""),
		on.Do(http.MethodGet, "/.well-known/jwks.json", nil, ""),
		on.Do(http.MethodGet, "/healthz", nil, ""),
	}
	offEmail := apitest.Email("v2nosunset")
	off.Register(offEmail)
	v2 = append(v2,
		off.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": offEmail, "password": apitest.Password}, ""),
		off.Do(http.MethodGet, "/v1/users/me", nil, ""))
	for i, r := range v2 {
		for _, k := range []string{"Deprecation", "Sunset", "Link"} {
			if r.Header.Get(k) != "" {
				t.Fatalf("answer %d (%d) carries %s: %v", i, r.Status, k, r.Header)
			}
		}
	}
	if v2[0].Status != http.StatusOK || v2[4].Status != http.StatusOK {
		t.Fatalf("v2 me: %d, v1 login without sunset: %d", v2[0].Status, v2[4].Status)
	}
}

func TestV2LoginWithMFA(t *testing.T) {
	t.Parallel()
	e := v2Start(t, nil)
	email, _, codes, _ := mfaEnable(t, e)

	// The password step answers the challenge: no tokens, no cookie.
	r := v2Login(e, email, v2XRW())
	apitest.Expect(t, r, http.StatusOK, "")
	var a mfaLoginAnswer
	r.JSON(t, &a)
	if !a.MFARequired || a.MFAToken == "" || a.AccessToken != "" || v2RefreshCookie(t, r) != nil {
		t.Fatalf("v2 login with MFA on: %s %v", r.Body, r.Header.Values("Set-Cookie"))
	}
	body := map[string]string{"mfa_token": a.MFAToken, "code": codes[0]}
	// The second step sets the cookie: guarded too.
	v2Problem(t, e.Request(http.MethodPost, "/v2/auth/login/mfa", body, nil), http.StatusForbidden, "csrf_failed")
	done := e.Request(http.MethodPost, "/v2/auth/login/mfa", body, v2XRW())
	p := v2Pair(t, done)
	if amr := mfaAMR(t, p.AccessToken); !slices.Contains(amr, "otp") {
		t.Fatalf("amr = %v", amr)
	}
	rt := v2ExpectLiveCookie(t, done, e.Cfg.RefreshTokenTTL)
	v2Pair(t, v2Refresh(e, rt, v2XRW()))
	v2Problem(t, e.Request(http.MethodPost, "/v2/auth/login/mfa", body, v2XRW()), http.StatusUnauthorized, "")

	// The enrolment routes have their twins.
	_, fresh := e.NewUser(t)
	en := e.Do(http.MethodPost, "/v2/users/me/mfa/totp", nil, fresh.AccessToken)
	apitest.Expect(t, en, http.StatusOK, "")
	var enrol mfaEnrolment
	en.JSON(t, &enrol)
	if enrol.Secret == "" {
		t.Fatalf("v2 enrolment: %s", en.Body)
	}
	v2Problem(t, e.Do(http.MethodPost, "/v2/users/me/mfa/totp/confirm", map[string]string{"code": (&mfaClock{secret: enrol.Secret}).wrong(t)}, fresh.AccessToken),
		http.StatusBadRequest, "invalid_mfa_code")
}
