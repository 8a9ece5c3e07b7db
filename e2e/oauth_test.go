package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// A person signs in with an OpenID Connect provider through the oauth process; the
// session it opens is refreshed, listed, checked and ended by the auth process, and the
// sign-in reaches the audit log through the outbox, JetStream and the token-worker.
func TestOAuthSessionThroughAuth(t *testing.T) {
	s := startStack(t)
	email := "oauth-" + randomHex(4) + "@example.com"
	s.oidc.QueueUser(&mockoidc.MockUser{Subject: "e2e-" + randomHex(4), Email: email, EmailVerified: true})

	done := oidcSignIn(t, s)
	code := done.Query().Get("code")
	if !strings.HasPrefix(done.String(), appURL) || code == "" {
		t.Fatalf("app sent to %s", done)
	}

	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	status, body := postJSON(t, s.oauthURL+"/v1/oauth/token", map[string]string{"code": code}, "")
	if status != http.StatusOK {
		t.Fatalf("token: %d %s", status, body)
	}
	_ = json.Unmarshal(body, &pair)

	// auth accepts the OAuth session as its own.
	if status, body := get(t, s.authURL+"/v1/auth/verify", pair.AccessToken); status != http.StatusOK {
		t.Fatalf("verify: %d %s", status, body)
	}
	if status, body := get(t, s.authURL+"/v1/users/me/sessions", pair.AccessToken); status != http.StatusOK || strings.Count(string(body), `"id"`) != 1 {
		t.Fatalf("sessions: %d %s", status, body)
	}
	status, body = postJSON(t, s.authURL+"/v1/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, "")
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %s", status, body)
	}
	_ = json.Unmarshal(body, &pair)
	if amr := claim(t, pair.AccessToken, "amr"); !slices.Contains(amr, "oauth") {
		t.Fatalf("refreshed token amr = %v", amr)
	}
	if status, body := postJSON(t, s.authURL+"/v1/auth/logout", map[string]string{}, pair.AccessToken); status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", status, body)
	}
	if status, _ := get(t, s.authURL+"/v1/auth/verify", pair.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("verify after logout: %d", status)
	}
	if status, _ := postJSON(t, s.authURL+"/v1/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, ""); status != http.StatusUnauthorized {
		t.Fatalf("refresh after logout: %d", status)
	}

	// The oauth process's relay published the sign-in; the worker wrote it to the audit log.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE type = 'auth.oauth.signed_in'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the sign-in never reached the audit log")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A provider that does not vouch for the address: no session until our own email
// proves it. The verification email comes from the oauth process through the outbox,
// JetStream and the token-worker; its link, used at auth, verifies the address and links
// the identity, which then signs in. Another identity claiming the address afterwards
// gets the same answer and links nothing.
func TestUnprovenProviderAddressThroughOurEmail(t *testing.T) {
	s := startStack(t)
	email := "oauth-unproven-" + randomHex(4) + "@example.com"
	subject := "e2e-" + randomHex(4)

	s.oidc.QueueUser(&mockoidc.MockUser{Subject: subject, Email: email, EmailVerified: false})
	if done := oidcSignIn(t, s); done.Query().Get("error") != "email_not_verified" || done.Query().Get("code") != "" {
		t.Fatalf("unproven address: app sent to %s", done)
	}
	verify := s.waitMail(email, 1)[0]
	s.mustPost("/v1/auth/email/verify", map[string]string{"token": tokenFrom(t, verify, "verify-email")}, http.StatusOK)

	s.oidc.QueueUser(&mockoidc.MockUser{Subject: subject, Email: email, EmailVerified: false})
	done := oidcSignIn(t, s)
	status, body := postJSON(t, s.oauthURL+"/v1/oauth/token", map[string]string{"code": done.Query().Get("code")}, "")
	if status != http.StatusOK || !strings.Contains(string(body), `"email_verified":true`) {
		t.Fatalf("sign-in after the proof (%s): %d %s", done, status, body)
	}

	s.oidc.QueueUser(&mockoidc.MockUser{Subject: "e2e-squatter-" + randomHex(4), Email: email, EmailVerified: false})
	if done := oidcSignIn(t, s); done.Query().Get("error") != "email_not_verified" {
		t.Fatalf("another unproven identity for a verified address: app sent to %s", done)
	}
}

// oidcSignIn walks a browser through the acme provider's sign-in (the mock signs in the
// user queued last) and returns where the oauth process sent it back.
func oidcSignIn(t *testing.T, s *stack) *url.URL {
	t.Helper()
	return oidcSignInAt(t, s.oauthURL+"/v1/oauth/acme/authorize?redirect_to="+url.QueryEscape(appURL))
}

// oidcSignInAt is oidcSignIn from an authorize URL of the caller's.
func oidcSignInAt(t *testing.T, authorize string) *url.URL {
	t.Helper()
	step := func(raw string, cookies []*http.Cookie) *http.Response {
		t.Helper()
		res, _ := fetch(t, raw, cookies)
		if res.StatusCode != http.StatusFound {
			t.Fatalf("GET %s: %d", raw, res.StatusCode)
		}
		return res
	}
	start := step(authorize, nil)
	callback := step(start.Header.Get("Location"), nil).Header.Get("Location")
	done, err := url.Parse(step(callback, start.Cookies()).Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return done
}

var noFollow = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// fetch GETs raw as a browser would, with cookies, without following a redirect.
func fetch(t *testing.T, raw string, cookies []*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, raw, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func postJSON(t *testing.T, url string, body any, bearer string) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, req)
}

func get(t *testing.T, url, bearer string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// claim reads a string-array claim of a JWT (already checked by the server that took it).
func claim(t *testing.T, jwt, name string) []string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	var out []string
	if list, ok := c[name].([]any); ok {
		for _, v := range list {
			out = append(out, v.(string))
		}
	}
	return out
}

// The hosted UI's login page offers the oauth process's providers; signing in through one
// ends on the UI's callback, which exchanges the one-time code server to server and gives
// the browser a session cookie that ForwardAuth accepts.
func TestHostedUISocialSignIn(t *testing.T) {
	s := startStack(t)
	email := "ui-oauth-" + randomHex(4) + "@example.com"
	s.oidc.QueueUser(&mockoidc.MockUser{Subject: "e2e-" + randomHex(4), Email: email, EmailVerified: true})
	res, page := fetch(t, s.authURL+"/ui/login", nil)
	m := regexp.MustCompile(`<a class="provider" href="([^"]+)">Continue with ([^<]+)</a>`).FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("login page %d offers no provider:\n%s", res.StatusCode, page)
	}
	done := oidcSignInAt(t, html.UnescapeString(m[1]))
	if !strings.HasPrefix(done.String(), uiCallback+"?") || done.Query().Get("code") == "" {
		t.Fatalf("oauth sent the browser to %q", done)
	}
	// The code in the URL is single use and worth nothing without the exchange; no token
	// is in any URL.
	res, page = fetch(t, s.authURL+done.RequestURI(), nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/account" {
		t.Fatalf("callback: %d to %q: %s", res.StatusCode, res.Header.Get("Location"), page)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Host-session" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no session cookie: %v", res.Header["Set-Cookie"])
	}
	vres, _ := fetch(t, s.authURL+"/v1/auth/verify", []*http.Cookie{cookie})
	if vres.StatusCode != http.StatusOK || vres.Header.Get("X-Auth-Email") != email {
		t.Fatalf("verify with the UI's cookie: %d %v", vres.StatusCode, vres.Header)
	}
	// The same code again: refused, and no second session.
	if res, _ := fetch(t, s.authURL+done.RequestURI(), nil); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("a spent code answered %d", res.StatusCode)
	}
}
