package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/talentforge/auth/pkg/tokenhook/tokenhooktest"
)

// oauth mints its pairs through the same core as auth, so the access-token hook sees
// a provider's sign-in too (amr oauth), and fails it closed the same way.
func TestTokenHookAtProviderSignIn(t *testing.T) {
	rc := tokenhooktest.Start(t)
	rc.AnswerClaims(map[string]any{"tenant": "acme", "sub": "evil"})
	e := start(t, map[string]string{"ACCESS_TOKEN_HOOK_URL": rc.URL, "ACCESS_TOKEN_HOOK_SECRET": rc.Secret})
	email := unique("hook")
	e.oidc.QueueUser("sub-hook-1", email, true)
	p := e.exchange(e.browser().signIn("acme"))

	parts := strings.Split(p.AccessToken, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string         `json:"sub"`
		AMR []string       `json:"amr"`
		Ext map[string]any `json:"ext"`
	}
	mustJSON(t, raw, &claims)
	if claims.Sub != p.User.ID || claims.Ext["tenant"] != "acme" || claims.Ext["sub"] != "evil" || !slices.Equal(claims.AMR, []string{"oauth"}) {
		t.Fatalf("access token claims %s", raw)
	}
	calls := rc.Calls() // signed, checked by the official library
	if len(calls) != 1 {
		t.Fatalf("%d hook calls, want 1", len(calls))
	}
	c := calls[0].Request
	amr, _ := json.Marshal(c.Session["amr"])
	if c.Type != "token.issued" || c.User["email"] != email || c.Claims["sub"] != p.User.ID || string(amr) != `["oauth"]` {
		t.Fatalf("the hook was sent %s", calls[0].Body)
	}

	// The hook down: the code's exchange answers 503 unavailable, without tokens.
	rc.Answer(http.StatusInternalServerError, `{}`)
	e.oidc.QueueUser("sub-hook-1", email, true)
	appAt := e.browser().signIn("acme")
	a := e.do(http.MethodPost, "/v1/oauth/token", "", `{"code":"`+appAt.Query().Get("code")+`"}`)
	if a.status != http.StatusServiceUnavailable || a.code() != "unavailable" || strings.Contains(string(a.body), "access_token") {
		t.Fatalf("token with the hook down: %d %s", a.status, a.body)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.oauth.signed_in' AND payload->>'user_id' = $1`, p.User.ID); n < 1 {
		t.Fatalf("signed_in events = %d", n)
	}
}
