package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/tokenhook/tokenhooktest"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// The access-token hook (ACCESS_TOKEN_HOOK_*) against a receiver of the operator's on a
// real socket: it sees every pair before it is signed and its claims land under ext.

func hookStart(t *testing.T, rc *tokenhooktest.Receiver, env map[string]string) *apitest.Env {
	t.Helper()
	all := map[string]string{"ACCESS_TOKEN_HOOK_URL": rc.URL, "ACCESS_TOKEN_HOOK_SECRET": rc.Secret}
	for k, v := range env {
		all[k] = v
	}
	return apitest.Start(t, all)
}

// hookRegister registers and verifies a fresh user (the hook is not called: no pair).
func hookRegister(t *testing.T, e *apitest.Env) (email, id string) {
	t.Helper()
	email = apitest.Email("hook")
	return email, e.Register(email).ID
}

func hookExt(t *testing.T, at string) map[string]any {
	t.Helper()
	ext, _ := flowClaims(t, at)["ext"].(map[string]any)
	return ext
}

func hookSessions(t *testing.T, e *apitest.Env, userID string) int {
	t.Helper()
	list, err := session.New(e.App.Redis).List(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func hookMetric(t *testing.T, e *apitest.Env, line string) bool {
	t.Helper()
	r := e.Do(http.MethodGet, "/metrics", nil, "")
	apitest.Expect(t, r, http.StatusOK, "")
	return slices.Contains(strings.Split(string(r.Body), "\n"), line)
}

func TestTokenHookAddsExtAtLoginAndRefresh(t *testing.T) {
	t.Parallel()
	rc := tokenhooktest.Start(t)
	rc.AnswerClaims(map[string]any{"tenant": "acme", "org": map[string]any{"plan": "pro"}})
	e := hookStart(t, rc, nil)
	email, uid := hookRegister(t, e)
	if n := rc.Count(); n != 0 {
		t.Fatalf("the hook was called %d times before any pair", n)
	}

	p := e.Login(email, apitest.Password)
	claims := flowClaims(t, p.AccessToken)
	ext := hookExt(t, p.AccessToken)
	if ext["tenant"] != "acme" || ext["org"].(map[string]any)["plan"] != "pro" || claims["sub"] != uid {
		t.Fatalf("access token claims %v", claims)
	}
	flowExpectATAlive(t, e, p.AccessToken)

	calls := rc.Calls() // all signed with the secret, checked by the official library
	if len(calls) != 1 {
		t.Fatalf("%d hook calls after one login, want 1", len(calls))
	}
	got := calls[0].Request
	if got.Type != "token.issued" || got.User["id"] != uid || got.User["email"] != email || got.User["email_verified"] != true {
		t.Fatalf("the hook was sent %s", calls[0].Body)
	}
	for _, secret := range []string{"password_hash", "password", "$argon2id", "totp", "refresh_token", "rt_"} {
		if strings.Contains(string(calls[0].Body), secret) {
			t.Fatalf("the hook was sent %q: %s", secret, calls[0].Body)
		}
	}
	if got.Session["id"] != claims["sid"] || !slices.Equal(anyStrings(got.Session["amr"]), []string{"pwd"}) || got.Session["created_at"] == nil {
		t.Fatalf("session sent %v, token sid %v", got.Session, claims["sid"])
	}
	// The draft is the token as signed, ext aside.
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid", "roles", "amr", "auth_time"} {
		if k == "aud" || k == "roles" || k == "amr" {
			if !slices.Equal(anyStrings(got.Claims[k]), anyStrings(claims[k])) {
				t.Errorf("draft %s = %v, signed %v", k, got.Claims[k], claims[k])
			}
			continue
		}
		if got.Claims[k] != claims[k] {
			t.Errorf("draft %s = %v, signed %v", k, got.Claims[k], claims[k])
		}
	}
	if _, ok := got.Claims["ext"]; ok {
		t.Error("the draft already holds ext")
	}

	rc.AnswerClaims(map[string]any{"tenant": "globex"})
	p2 := flowRefreshOK(t, e, p.RefreshToken)
	if hookExt(t, p2.AccessToken)["tenant"] != "globex" || flowSID(t, p2.AccessToken) != flowSID(t, p.AccessToken) {
		t.Fatalf("refreshed token claims %v", flowClaims(t, p2.AccessToken))
	}
	calls = rc.Calls()
	if len(calls) != 2 || calls[1].Request.Type != "token.refreshed" || calls[1].Request.Claims["jti"] != flowClaims(t, p2.AccessToken)["jti"] ||
		calls[1].Request.Session["id"] != claims["sid"] {
		t.Fatalf("refresh: %d calls, last %s", len(calls), calls[len(calls)-1].Body)
	}
	if calls[0].Header.Get("webhook-id") == calls[1].Header.Get("webhook-id") {
		t.Fatal("two calls share a webhook-id")
	}
	flowExpectATAlive(t, e, p2.AccessToken)
	if !hookMetric(t, e, `access_token_hook_calls_total{outcome="ok"} 2`) {
		t.Error("access_token_hook_calls_total{outcome=\"ok\"} is not 2")
	}
}

func anyStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// Whatever the hook answers lands under ext: it can shadow no top-level claim.
func TestTokenHookCannotChangeTopLevelClaims(t *testing.T) {
	t.Parallel()
	rc := tokenhooktest.Start(t)
	rc.AnswerClaims(map[string]any{"sub": "evil", "roles": []string{"admin"}, "iss": "https://evil.test", "aud": "other",
		"exp": 4102444800, "iat": 1, "jti": "j", "sid": "s", "amr": []string{"hwk"}, "auth_time": 1, "ext": map[string]any{"x": 1}})
	e := hookStart(t, rc, nil)
	email, uid := hookRegister(t, e)
	p := e.Login(email, apitest.Password)
	claims := flowClaims(t, p.AccessToken)
	if claims["sub"] != uid || !slices.Equal(anyStrings(claims["roles"]), []string{"user"}) || claims["iss"] != "http://auth.test" ||
		!slices.Equal(anyStrings(claims["aud"]), []string{"talentforge"}) || !slices.Equal(anyStrings(claims["amr"]), []string{"pwd"}) ||
		claims["sid"] == "s" || claims["jti"] == "j" {
		t.Fatalf("the hook changed a top-level claim: %v", claims)
	}
	ext := hookExt(t, p.AccessToken)
	if ext["sub"] != "evil" || !slices.Equal(anyStrings(ext["roles"]), []string{"admin"}) {
		t.Fatalf("ext = %v, want the hook's answer as is", ext)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, p.AccessToken), http.StatusForbidden, "forbidden")
	r := e.Do(http.MethodGet, "/v1/auth/verify", nil, p.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	if r.Header.Get("X-Auth-User-Id") != uid || r.Header.Get("X-Auth-Roles") != "user" {
		t.Fatalf("verify headers %v", r.Header)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/admin/users", nil, p.AccessToken), http.StatusForbidden, "")
}

// Failing closed (the default): no answer from the hook is 503 unavailable, no token,
// and no session left behind.
func TestTokenHookDownFailsClosed(t *testing.T) {
	t.Parallel()
	rc := tokenhooktest.Start(t)
	rc.Answer(http.StatusInternalServerError, `{"claims": {"tenant": "acme"}}`)
	e := hookStart(t, rc, map[string]string{"ACCESS_TOKEN_HOOK_TIMEOUT": "300ms"})
	email, uid := hookRegister(t, e)
	for _, path := range []string{"/v1/auth/login", "/v2/auth/login"} {
		r := e.Request(http.MethodPost, path, map[string]string{"email": email, "password": apitest.Password},
			http.Header{"X-Requested-With": {"test"}})
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), `"unavailable"`) ||
			strings.Contains(string(r.Body), "access_token") || strings.Contains(string(r.Body), "rt_") {
			t.Fatalf("%s with the hook down: %d %s", path, r.Status, r.Body)
		}
		if len(r.Header.Values("Set-Cookie")) > 0 {
			t.Fatalf("%s set a cookie: %v", path, r.Header.Values("Set-Cookie"))
		}
	}
	if n := hookSessions(t, e, uid); n != 0 {
		t.Fatalf("%d sessions left after refused sign-ins", n)
	}
	// A hook that never answers in time fails the same way.
	rc.AnswerWith(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusServiceUnavailable, "unavailable")
	if n := rc.Count(); n != 3 {
		t.Fatalf("the hook was called %d times, want 3", n)
	}
	rc.Answer(http.StatusOK, `{"claims": {"tenant": "acme"}}`)
	p := e.Login(email, apitest.Password)
	if hookExt(t, p.AccessToken)["tenant"] != "acme" || hookSessions(t, e, uid) != 1 {
		t.Fatal("the hook back did not sign in normally")
	}
}

// A refresh the hook refuses rotates nothing: the client retries with the same refresh
// token, after the reuse grace too, and gets its pair; no reuse is flagged, and the
// session's tokens live on. A token retired for good still ends the session while the
// hook is down.
func TestTokenHookRefreshRetryAfter503(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	rc := tokenhooktest.Start(t)
	rc.AnswerClaims(map[string]any{"tenant": "acme"})
	e := hookStart(t, rc, map[string]string{"REFRESH_REUSE_GRACE": grace.String()})
	email, uid := hookRegister(t, e)
	p0 := e.Login(email, apitest.Password)

	rc.Answer(http.StatusBadGateway, `{}`)
	for range 2 {
		apitest.Expect(t, flowRefresh(e, p0.RefreshToken), http.StatusServiceUnavailable, "unavailable")
	}
	time.Sleep(grace + 500*time.Millisecond) // a rotated token would now be a reuse
	rc.AnswerClaims(map[string]any{"tenant": "initech"})
	p1 := flowRefreshOK(t, e, p0.RefreshToken)
	if hookExt(t, p1.AccessToken)["tenant"] != "initech" || flowSID(t, p1.AccessToken) != flowSID(t, p0.AccessToken) {
		t.Fatalf("the retry's pair: %v", flowClaims(t, p1.AccessToken))
	}
	flowExpectATAlive(t, e, p0.AccessToken)
	flowExpectATAlive(t, e, p1.AccessToken)
	if n := len(auditPayloads(t, e, "auth.session.refresh_reused", uid)); n != 0 {
		t.Fatalf("%d reuse events", n)
	}
	p2 := flowRefreshOK(t, e, p1.RefreshToken)

	// Reuse detection does not wait for the hook.
	rc.Answer(http.StatusInternalServerError, `{}`)
	time.Sleep(grace + 500*time.Millisecond)
	apitest.Expect(t, flowRefresh(e, p0.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
	flowExpectATDead(t, e, p2.AccessToken)
	if n := len(auditPayloads(t, e, "auth.session.refresh_reused", uid)); n != 1 {
		t.Fatalf("%d reuse events, want 1", n)
	}
	if n := hookSessions(t, e, uid); n != 0 {
		t.Fatalf("%d sessions after a reuse", n)
	}
}

// Failing open: the pair is issued without ext, and counted.
func TestTokenHookDownFailsOpen(t *testing.T) {
	t.Parallel()
	rc := tokenhooktest.Start(t)
	rc.Answer(http.StatusServiceUnavailable, `{"claims": {"tenant": "acme"}}`)
	e := hookStart(t, rc, map[string]string{"ACCESS_TOKEN_HOOK_FAILURE": "open"})
	email, _ := hookRegister(t, e)
	p := e.Login(email, apitest.Password)
	p2 := flowRefreshOK(t, e, p.RefreshToken)
	for _, at := range []string{p.AccessToken, p2.AccessToken} {
		if _, ok := flowClaims(t, at)["ext"]; ok {
			t.Fatalf("a token issued past a failed hook holds ext: %v", flowClaims(t, at))
		}
		flowExpectATAlive(t, e, at)
	}
	if rc.Count() != 2 {
		t.Fatalf("the hook was called %d times, want 2", rc.Count())
	}
	if !hookMetric(t, e, "access_token_hook_fallbacks_total 2") || !hookMetric(t, e, `access_token_hook_calls_total{outcome="bad_status"} 2`) {
		t.Error("the fallbacks are not counted")
	}
}

// After 5 consecutive failures the breaker opens: sign-ins fail at once, the hook is
// not called, and no session is opened meanwhile.
func TestTokenHookBreakerOpens(t *testing.T) {
	t.Parallel()
	rc := tokenhooktest.Start(t)
	rc.Answer(http.StatusInternalServerError, `{}`)
	e := hookStart(t, rc, nil)
	email, uid := hookRegister(t, e)
	for range 5 {
		apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusServiceUnavailable, "unavailable")
	}
	if rc.Count() != 5 {
		t.Fatalf("the hook was called %d times, want 5", rc.Count())
	}
	rc.AnswerClaims(map[string]any{"tenant": "acme"}) // back, but the breaker is open for 30 s
	for range 3 {
		apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusServiceUnavailable, "unavailable")
	}
	if rc.Count() != 5 {
		t.Fatalf("the hook was called %d times while the breaker was open, want 5", rc.Count())
	}
	if n := hookSessions(t, e, uid); n != 0 {
		t.Fatalf("%d sessions opened while the breaker was open", n)
	}
	if !hookMetric(t, e, "access_token_hook_breaker_state 2") {
		t.Error("access_token_hook_breaker_state is not 2 (open)")
	}
}

// VERIFY_CLAIM_HEADERS: ForwardAuth answers the chosen claims as headers, formatted
// and stripped of control characters; a claim the token lacks is an empty header.
func TestVerifyPassesClaimHeaders(t *testing.T) {
	t.Parallel()
	rc := tokenhooktest.Start(t)
	rc.Answer(http.StatusOK, `{"claims": {"tenant": "acme", "org": {"id": 7, "name": "A&B <x>"}, "tags": ["a", "b", 3, true],
		"seats": 12345678901234567890, "active": false, "evil": "x\r\nX-Injected: 1\u0000\u007f"}}`)
	e := hookStart(t, rc, map[string]string{"VERIFY_CLAIM_HEADERS": "ext.tenant=X-Auth-Tenant,ext.missing=X-Auth-Missing," +
		"ext.org=X-Auth-Org,ext.tags=X-Auth-Tags,ext.seats=X-Auth-Seats,ext.active=X-Auth-Active,ext.evil=X-Auth-Evil," +
		"ext.org.name=X-Auth-Org-Name,ext.tenant.deeper=X-Auth-Deeper,sub=X-Auth-Subject,amr=X-Auth-Amr"})
	email, uid := hookRegister(t, e)
	p := e.Login(email, apitest.Password)
	want := map[string]string{
		"X-Auth-Tenant": "acme", "X-Auth-Missing": "", "X-Auth-Org": `{"id":7,"name":"A&B <x>"}`, "X-Auth-Tags": "a,b,3,true",
		"X-Auth-Seats": "12345678901234567890", "X-Auth-Active": "false", "X-Auth-Evil": "xX-Injected: 1",
		"X-Auth-Org-Name": "A&B <x>", "X-Auth-Deeper": "", "X-Auth-Subject": uid, "X-Auth-Amr": "pwd",
		"X-Auth-User-Id": uid,
	}
	for _, path := range []string{"/v1/auth/verify", "/v2/auth/verify"} {
		r := e.Request(http.MethodGet, path, nil, http.Header{"Authorization": {"Bearer " + p.AccessToken}, "X-Auth-Tenant": {"forged"}})
		apitest.Expect(t, r, http.StatusOK, "")
		for k, v := range want {
			got, ok := r.Header[k]
			if !ok || len(got) != 1 || got[0] != v {
				t.Errorf("%s: %s = %q (present %v), want %q", path, k, got, ok, v)
			}
		}
		if r.Header.Get("X-Injected") != "" {
			t.Errorf("%s: a claim injected a header", path)
		}
	}

	// A token without the hook's claims: every ext header is there, empty.
	rc.Answer(http.StatusOK, `{"claims": {}}`)
	p2 := e.Login(email, apitest.Password)
	r := e.Do(http.MethodGet, "/v1/auth/verify", nil, p2.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	for _, k := range []string{"X-Auth-Tenant", "X-Auth-Org", "X-Auth-Tags", "X-Auth-Evil"} {
		if got, ok := r.Header[k]; !ok || len(got) != 1 || got[0] != "" {
			t.Errorf("%s = %q (present %v), want an empty header", k, got, ok)
		}
	}
	if r.Header.Get("X-Auth-Subject") != uid {
		t.Errorf("X-Auth-Subject = %q", r.Header.Get("X-Auth-Subject"))
	}
}
