package api_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

func TestRefreshRotatesAndDetectsReuseAfterGrace(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	e := apitest.Start(t, map[string]string{"REFRESH_REUSE_GRACE": grace.String()})
	_, p0 := e.NewUser(t)

	r := flowRefresh(e, p0.RefreshToken)
	p1 := flowPair(t, r)
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("Cache-Control = %q", r.Header.Get("Cache-Control"))
	}
	if p1.RefreshToken == p0.RefreshToken || p1.TokenType != "Bearer" || p1.ExpiresIn != 900 {
		t.Fatalf("refresh did not rotate: %+v", p1)
	}
	if flowSID(t, p1.AccessToken) != flowSID(t, p0.AccessToken) {
		t.Fatal("refresh moved to another session")
	}

	// Within the grace the previous token answers the very same successor.
	again := flowPair(t, flowRefresh(e, p0.RefreshToken))
	if again.RefreshToken != p1.RefreshToken {
		t.Fatal("the previous token within the grace minted a second live refresh token")
	}
	if again.AccessToken == p1.AccessToken || flowSID(t, again.AccessToken) != flowSID(t, p0.AccessToken) {
		t.Fatal("the replay within the grace did not answer a fresh access token of the same session")
	}
	flowExpectATAlive(t, e, again.AccessToken)

	time.Sleep(grace + 500*time.Millisecond)
	apitest.Expect(t, flowRefresh(e, p0.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")

	// Reuse ended the whole session: the live successor and every access token.
	flowExpectRTDead(t, e, p1.RefreshToken)
	for _, at := range []string{p0.AccessToken, p1.AccessToken, again.AccessToken} {
		flowExpectATDead(t, e, at)
	}
}

func TestRefreshWithoutGraceDetectsImmediateReuse(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"REFRESH_REUSE_GRACE": "0s"})
	_, p0 := e.NewUser(t)
	p1 := flowRefreshOK(t, e, p0.RefreshToken)
	time.Sleep(20 * time.Millisecond) // the grace compares milliseconds
	apitest.Expect(t, flowRefresh(e, p0.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
	flowExpectRTDead(t, e, p1.RefreshToken)
	flowExpectATDead(t, e, p1.AccessToken)
}

func TestRefreshReplayOfOlderTokenRevokesSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil) // default grace: only the token just rotated away is forgiven
	email, p0 := e.NewUser(t)
	other := e.Login(email, apitest.Password)

	p1 := flowRefreshOK(t, e, p0.RefreshToken)
	p2 := flowRefreshOK(t, e, p1.RefreshToken)
	p3 := flowRefreshOK(t, e, p2.RefreshToken)
	all := []string{p0.RefreshToken, p1.RefreshToken, p2.RefreshToken, p3.RefreshToken}
	slices.Sort(all)
	if len(slices.Compact(all)) != 4 {
		t.Fatal("rotation repeated a refresh token")
	}

	apitest.Expect(t, flowRefresh(e, p0.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
	flowExpectRTDead(t, e, p3.RefreshToken)
	flowExpectRTDead(t, e, p2.RefreshToken)
	flowExpectATDead(t, e, p3.AccessToken)
	flowExpectATDead(t, e, p0.AccessToken)

	// Only that session ended.
	flowExpectATAlive(t, e, other.AccessToken)
	flowRefreshOK(t, e, other.RefreshToken)
}

// flowForgeRT keeps the user and session of a real refresh token and replaces its secret.
func flowForgeRT(t testing.TB, rt string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(rt, "rt_"))
	if err != nil || !strings.HasPrefix(rt, "rt_") || len(raw) != 64 {
		t.Fatalf("unexpected refresh token format %q: %v", rt, err)
	}
	_, _ = rand.Read(raw[32:])
	return "rt_" + base64.RawURLEncoding.EncodeToString(raw)
}

func TestRefreshRejectsInvalidTokens(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	_, victim := e.NewUser(t)
	flipped := []byte(p.RefreshToken)
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}

	cases := map[string]string{
		"empty":                 "",
		"garbage":               "garbage",
		"prefixed garbage":      "rt_" + strings.Repeat("x", 20),
		"forged secret":         flowForgeRT(t, p.RefreshToken),
		"forged for other user": flowForgeRT(t, victim.RefreshToken),
		"one character changed": string(flipped),
		"access token":          p.AccessToken,
		"long":                  "rt_" + strings.Repeat("A", 4096),
	}
	for name, rt := range cases {
		r := flowRefresh(e, rt)
		if r.Status != http.StatusUnauthorized || r.Code() != "invalid_refresh_token" {
			t.Fatalf("%s: got %d %s, want 401 invalid_refresh_token", name, r.Status, r.Body)
		}
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/refresh", nil, ""), http.StatusUnauthorized, "invalid_refresh_token")

	// Forged secrets end nobody's session.
	flowExpectATAlive(t, e, p.AccessToken)
	flowRefreshOK(t, e, p.RefreshToken)
	flowExpectATAlive(t, e, victim.AccessToken)
	flowRefreshOK(t, e, victim.RefreshToken)
}

func TestRefreshDisabledUser(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	flowExec(t, e, "UPDATE users SET disabled_at = now() WHERE id = ?", p.User.ID)
	r := flowRefresh(e, p.RefreshToken)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("refresh for a disabled user: %d %s, want 401", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "access_token") {
		t.Fatalf("tokens for a disabled user: %s", r.Body)
	}
}

func TestRefreshedAccessTokenWorks(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, p0 := e.NewUser(t)
	p1 := flowRefreshOK(t, e, p0.RefreshToken)
	if p1.AccessToken == p0.AccessToken {
		t.Fatal("refresh answered the same access token")
	}
	flowExpectATAlive(t, e, p1.AccessToken)
	r := e.Do(http.MethodGet, "/v1/auth/verify", nil, p1.AccessToken)
	if r.Header.Get("X-Auth-User-Id") != p0.User.ID || r.Header.Get("X-Auth-Email") != email ||
		r.Header.Get("X-Auth-Session-Id") != flowSID(t, p0.AccessToken) {
		t.Fatalf("verify headers = %v", r.Header)
	}
	if p1.User.ID != p0.User.ID || p1.User.Email != email {
		t.Fatalf("refresh user = %+v", p1.User)
	}
	// The new refresh token keeps rotating.
	flowRefreshOK(t, e, p1.RefreshToken)
}

func TestRefreshRolesFollowDatabase(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p0 := e.NewUser(t)
	if got := flowClaimStrings(t, p0.AccessToken, "roles"); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("roles at login = %v", got)
	}

	flowExec(t, e, "INSERT INTO user_roles (user_id, role) VALUES (?, 'admin')", p0.User.ID)
	e.ForgetCachedUser(p0.User.ID) // behind the service's back: it cannot invalidate
	p1 := flowRefreshOK(t, e, p0.RefreshToken)
	if got := flowClaimStrings(t, p1.AccessToken, "roles"); !slices.Equal(got, []string{"admin", "user"}) {
		t.Fatalf("roles after a grant = %v", got)
	}
	if !slices.Equal(p1.User.Roles, []string{"admin", "user"}) {
		t.Fatalf("user roles after a grant = %v", p1.User.Roles)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, p1.AccessToken), http.StatusOK, "")

	flowExec(t, e, "DELETE FROM user_roles WHERE user_id = ? AND role = 'admin'", p0.User.ID)
	e.ForgetCachedUser(p0.User.ID)
	p2 := flowRefreshOK(t, e, p1.RefreshToken)
	if got := flowClaimStrings(t, p2.AccessToken, "roles"); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("roles after a revoke = %v", got)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, p2.AccessToken), http.StatusForbidden, "forbidden")
}
