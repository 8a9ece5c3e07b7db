package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/services/oauth/internal/app"
	"github.com/talentforge/auth/services/oauth/oauthtest"
)

func TestProvidersListsOnlyConfiguredOnes(t *testing.T) {
	e := start(t, nil)
	a := e.do(http.MethodGet, "/v1/oauth/providers", "", "")
	if a.status != http.StatusOK || string(a.body) != `{"providers":[{"name":"github","display_name":"GitHub"},{"name":"acme","display_name":"Acme"}]}`+"\n" {
		t.Fatalf("providers: %d %s", a.status, a.body)
	}
	if a := e.do(http.MethodGet, "/v1/oauth/google/authorize?redirect_to="+url.QueryEscape(appURL), "", ""); a.status != http.StatusNotFound || a.code() != "unknown_provider" {
		t.Fatalf("unconfigured google: %d %s", a.status, a.body)
	}
}

func TestNewUserThenReturningUserOIDC(t *testing.T) {
	e := start(t, nil)
	email := unique("new")
	e.oidc.QueueUser("sub-new-1", email, true)
	b := e.browser()
	provider := b.authorize("acme", appURL)
	q := provider.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Fatalf("authorize URL lacks PKCE S256, nonce or state: %s", provider)
	}
	if _, ok := b.cookies["__Host-tf_oauth_binding"]; !ok {
		t.Fatal("no browser binding cookie")
	}
	appAt := location(t, b.get(b.atProvider(provider).String()))
	if !strings.HasPrefix(appAt.String(), appURL+"?code=") || len(appAt.Query()) != 1 {
		t.Fatalf("app sent to %s, want only a one-time code", appAt)
	}
	p := e.exchange(appAt)
	if p.TokenType != "Bearer" || p.RefreshToken == "" || p.User.Email != email || !p.User.EmailVerified ||
		!slices.Equal(p.User.Roles, []string{"user"}) {
		t.Fatalf("pair: %+v", p)
	}
	claims, err := token.NewVerifier(e.app.Keys, "http://auth.test", "talentforge").Verify(p.AccessToken)
	if err != nil || claims.Subject != p.User.ID || !slices.Equal(claims.AMR, []string{"oauth"}) {
		t.Fatalf("access token: %+v %v", claims, err)
	}
	// The session lives in the store auth reads: its refresh works there.
	if _, _, err := session.New(e.app.Redis).Refresh(context.Background(), p.RefreshToken, session.Meta{}); err != nil {
		t.Fatalf("refresh in the shared session store: %v", err)
	}
	// The code is single use.
	if a := e.do(http.MethodPost, "/v1/oauth/token", "", `{"code":"`+appAt.Query().Get("code")+`"}`); a.status != http.StatusBadRequest || a.code() != "invalid_code" {
		t.Fatalf("code reuse: %d %s", a.status, a.body)
	}
	// Returning: the same subject signs in to the same account, even with a new address.
	e.oidc.QueueUser("sub-new-1", unique("changed"), true)
	if again := e.exchange(e.browser().signIn("acme")); again.User.ID != p.User.ID {
		t.Fatalf("returning user got account %s, want %s", again.User.ID, p.User.ID)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.oauth.signed_in' AND payload->>'user_id' = $1`, p.User.ID); n != 2 {
		t.Fatalf("signed_in events = %d, want 2", n)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.user.registered' AND payload->>'user_id' = $1`, p.User.ID); n != 1 {
		t.Fatalf("registered events = %d, want 1", n)
	}
}

func TestGitHubUsesVerifiedPrimaryEmailAndLinksVerifiedAccount(t *testing.T) {
	e := start(t, nil)
	email := unique("octo")
	local := e.localUser(email, true)
	e.gh.Queue(oauthtest.GitHubUser{ID: 4242, Login: "octo", Name: "Octo Cat", PublicEmail: unique("public"),
		Emails: []oauthtest.GitHubEmail{{Email: unique("other"), Verified: true}, {Email: email, Primary: true, Verified: true}}})
	p := e.exchange(e.browser().signIn("github"))
	if p.User.ID != local {
		t.Fatalf("signed in to %s, want the verified local account %s", p.User.ID, local)
	}
	ids := e.do(http.MethodGet, "/v1/oauth/identities", p.AccessToken, "")
	if ids.status != http.StatusOK || !strings.Contains(string(ids.body), `"provider":"github","subject":"4242","email":"`+email+`"`) {
		t.Fatalf("identities: %d %s", ids.status, ids.body)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.oauth.identity_linked' AND payload->>'user_id' = $1`, local); n != 1 {
		t.Fatalf("identity_linked events = %d", n)
	}
}

// With EMAIL_VERIFICATION_REQUIRED (the default), a provider that does not vouch for
// an address gets no session and links nothing: the answer is ?error=email_not_verified
// whether the address has an account or not (no oracle for a stranger), and the
// address gets our own email: a verification link for a new or unproven account, a
// notice for a verified one.
func TestUnverifiedProviderEmailNeverSignsIn(t *testing.T) {
	e := start(t, nil)
	email := unique("victim")
	local := e.localUser(email, true)
	// OIDC saying the address is not verified.
	e.oidc.QueueUser("sub-attacker", email, false)
	taken := e.browser().signIn("acme")
	if taken.Query().Get("error") != "email_not_verified" || taken.Query().Get("code") != "" {
		t.Fatalf("unverified provider address of an account: app sent to %s", taken)
	}
	// GitHub: a public profile address equal to the victim's, primary one unverified.
	e.gh.Queue(oauthtest.GitHubUser{ID: 666, Login: "mallory", PublicEmail: email,
		Emails: []oauthtest.GitHubEmail{{Email: email, Primary: true, Verified: false}}})
	if appAt := e.browser().signIn("github"); appAt.Query().Get("error") != "email_not_verified" {
		t.Fatalf("unverified GitHub address: app sent to %s", appAt)
	}
	if n := e.count(`SELECT count(*) FROM identities WHERE user_id = $1`, local); n != 0 {
		t.Fatalf("identities linked to the victim: %d", n)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.email.register_existing' AND payload->>'user_id' = $1`, local); n != 2 {
		t.Fatalf("notices to the owner = %d, want 2", n)
	}

	// An address nobody has: the same answer, an unverified account with nothing
	// linked, and a verification link bound to the identity.
	fresh := unique("fresh")
	e.oidc.QueueUser("sub-fresh", fresh, false)
	pending := e.browser().signIn("acme")
	if pending.String() != taken.String() {
		t.Fatalf("new address: app sent to %s, want the answer of a taken one (%s)", pending, taken)
	}
	var uid string
	var verified bool
	if err := e.db.QueryRow(`SELECT id, email_verified_at IS NOT NULL FROM users WHERE email = $1`, fresh).Scan(&uid, &verified); err != nil || verified {
		t.Fatalf("pending account: %v, verified %v", err, verified)
	}
	if n := e.count(`SELECT count(*) FROM identities WHERE user_id = $1`, uid); n != 0 {
		t.Fatalf("%d identities linked before the address was proven", n)
	}
	if n := e.count(`SELECT count(*) FROM one_time_tokens WHERE user_id = $1 AND purpose = 'email_verification'
		AND identity_provider = 'acme' AND identity_subject = 'sub-fresh' AND used_at IS NULL`, uid); n != 1 {
		t.Fatalf("identity-bound verification tokens = %d, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.email.verification_requested'
		AND payload->>'user_id' = $1 AND payload->'payload' ? 'token_sealed' AND NOT payload->'payload' ? 'token'`, uid); n != 1 {
		t.Fatalf("verification emails with a sealed token = %d, want 1", n)
	}
	// Again before proving: still no session; a new link retires the old one.
	e.oidc.QueueUser("sub-fresh", fresh, false)
	if again := e.browser().signIn("acme"); again.Query().Get("error") != "email_not_verified" {
		t.Fatalf("second unproven sign-in: %s", again)
	}
	if n := e.count(`SELECT count(*) FROM one_time_tokens WHERE user_id = $1 AND used_at IS NULL`, uid); n != 1 {
		t.Fatalf("live verification tokens = %d, want only the newest", n)
	}
}

// Without verification required, an unverified provider address gets an unverified
// account as a password sign-up does, and a taken address answers email_taken (as
// register's 409 does then); the identity is marked linked-while-unproven.
func TestUnverifiedProviderEmailWithoutVerificationRequired(t *testing.T) {
	e := start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	email := unique("victim")
	e.localUser(email, true)
	e.oidc.QueueUser("sub-attacker", email, false)
	if appAt := e.browser().signIn("acme"); appAt.Query().Get("error") != "email_taken" {
		t.Fatalf("unverified provider address of an account: app sent to %s", appAt)
	}
	fresh := unique("fresh")
	e.oidc.QueueUser("sub-fresh", fresh, false)
	p := e.exchange(e.browser().signIn("acme"))
	if p.User.Email != fresh || p.User.EmailVerified {
		t.Fatalf("fresh unverified: %+v", p.User)
	}
	if n := e.count(`SELECT count(*) FROM identities WHERE user_id = $1 AND attached_unverified`, p.User.ID); n != 1 {
		t.Fatalf("identities marked linked-while-unproven = %d, want 1", n)
	}
}

func TestPreHijackedUnverifiedAccountIsReplaced(t *testing.T) {
	e := start(t, nil)
	email := unique("prehijack")
	attacker := e.localUser(email, false) // registered by someone who never proved the address
	e.oidc.QueueUser("sub-owner", email, true)
	p := e.exchange(e.browser().signIn("acme"))
	if p.User.ID == attacker || p.User.Email != email || !p.User.EmailVerified {
		t.Fatalf("owner got %+v; the attacker's account was %s", p.User, attacker)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1`, attacker); n != 0 {
		t.Fatal("the pre-registered account survived")
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1 AND password_hash IS NULL`, p.User.ID); n != 1 {
		t.Fatal("the attacker's password survived on the owner's account")
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.oauth.unverified_account_replaced' AND payload->'payload'->>'replaced_user_id' = $1`, attacker); n != 1 {
		t.Fatalf("replaced events = %d", n)
	}
}

func TestForgedAndReplayedState(t *testing.T) {
	e := start(t, nil)
	b := e.browser()
	res := b.get(e.url + "/v1/oauth/acme/callback?code=x&state=" + strings.Repeat("A", 43))
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Fatalf("forged state: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if a := e.do(http.MethodGet, "/v1/oauth/acme/callback?code=x", "", ""); a.status != http.StatusBadRequest || a.code() != "invalid_state" {
		t.Fatalf("no state: %d %s", a.status, a.body)
	}
	e.oidc.QueueUser("sub-replay", unique("replay"), true)
	cb := b.atProvider(b.authorize("acme", appURL))
	binding := b.cookies["__Host-tf_oauth_binding"]
	if first := location(t, b.get(cb.String())); first.Query().Get("code") == "" {
		t.Fatalf("first callback: %s", first)
	}
	b.cookies["__Host-tf_oauth_binding"] = binding
	if res := b.get(cb.String()); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed callback: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// A state is bound to its provider's path too.
	e.oidc.QueueUser("sub-path", unique("path"), true)
	b2 := e.browser()
	cb = b2.atProvider(b2.authorize("acme", appURL))
	wrong := strings.Replace(cb.String(), "/v1/oauth/acme/", "/v1/oauth/github/", 1)
	if appAt := location(t, b2.get(wrong)); appAt.Query().Get("error") != "invalid_state" || appAt.Query().Get("code") != "" {
		t.Fatalf("callback on another provider's path: %s", appAt)
	}
}

func TestCallbackInAnotherBrowserFails(t *testing.T) {
	e := start(t, nil)
	e.oidc.QueueUser("sub-csrf", unique("csrf"), true)
	attacker := e.browser()
	cb := attacker.atProvider(attacker.authorize("acme", appURL))
	// The victim's browser is sent the attacker's callback (login CSRF).
	appAt := location(t, e.browser().get(cb.String()))
	if appAt.Query().Get("error") != "browser_mismatch" || appAt.Query().Get("code") != "" {
		t.Fatalf("callback without the binding cookie: %s", appAt)
	}
}

func TestPKCEStrippedOrCodeInjectedIsRefused(t *testing.T) {
	e := start(t, nil)
	// The authorize URL carries an S256 challenge of the verifier sent at the exchange.
	e.gh.Queue(oauthtest.GitHubUser{ID: 1, Login: "pk", Emails: []oauthtest.GitHubEmail{{Email: unique("pk"), Primary: true, Verified: true}}})
	b := e.browser()
	provider := b.authorize("github", appURL)
	appAt := location(t, b.get(b.atProvider(provider).String()))
	if appAt.Query().Get("code") == "" {
		t.Fatalf("plain GitHub sign-in: %s", appAt)
	}
	_, verifiers := e.gh.Stats()
	sum := sha256.Sum256([]byte(verifiers[len(verifiers)-1]))
	if got := base64.RawURLEncoding.EncodeToString(sum[:]); got != provider.Query().Get("code_challenge") {
		t.Fatalf("verifier does not match the challenge: %s vs %s", got, provider.Query().Get("code_challenge"))
	}

	// PKCE stripped from the authorization request: the provider issues a code without a
	// challenge, and the exchange, which always sends the verifier, is refused.
	e.gh.Queue(oauthtest.GitHubUser{ID: 2, Login: "strip", Emails: []oauthtest.GitHubEmail{{Email: unique("strip"), Primary: true, Verified: true}}})
	b = e.browser()
	provider = b.authorize("github", appURL)
	q := provider.Query()
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	provider.RawQuery = q.Encode()
	if appAt := location(t, b.get(b.atProvider(provider).String())); appAt.Query().Get("error") != "exchange_failed" {
		t.Fatalf("PKCE stripped: %s", appAt)
	}

	// Code injection: the attacker's own code pasted into the victim's callback.
	e.gh.Queue(oauthtest.GitHubUser{ID: 3, Login: "attacker", Emails: []oauthtest.GitHubEmail{{Email: unique("atk"), Primary: true, Verified: true}}})
	attacker := e.browser()
	attackerCode := attacker.atProvider(attacker.authorize("github", appURL)).Query().Get("code")
	e.gh.Queue(oauthtest.GitHubUser{ID: 4, Login: "victim", Emails: []oauthtest.GitHubEmail{{Email: unique("vic"), Primary: true, Verified: true}}})
	victim := e.browser()
	cb := victim.atProvider(victim.authorize("github", appURL))
	cq := cb.Query()
	cq.Set("code", attackerCode)
	cb.RawQuery = cq.Encode()
	if appAt := location(t, victim.get(cb.String())); appAt.Query().Get("error") != "exchange_failed" {
		t.Fatalf("injected code: %s", appAt)
	}
}

func TestNonceMismatchIsRefused(t *testing.T) {
	e := start(t, nil)
	e.oidc.QueueUser("sub-nonce", unique("nonce"), true)
	b := e.browser()
	provider := b.authorize("acme", appURL)
	q := provider.Query()
	q.Set("nonce", "attacker-chosen-nonce")
	provider.RawQuery = q.Encode()
	appAt := location(t, b.get(b.atProvider(provider).String()))
	if appAt.Query().Get("error") != "invalid_id_token" || appAt.Query().Get("code") != "" {
		t.Fatalf("nonce mismatch: %s", appAt)
	}
}

func TestBadRedirectTargetsAreRefused(t *testing.T) {
	e := start(t, nil)
	for _, bad := range []string{
		"", "//evil.test/auth/done", "https://app.test.evil.test/auth/done", "https://app.test@evil.test/auth/done",
		"javascript:alert(1)", "JavaScript://app.test/auth/done", "https://evil.test/auth/done", "http://app.test/auth/done",
		"https://app.test/auth/donex", "https://app.test/other", "https:\\\\evil.test", "/auth/done",
		"https://app.test:444/auth/done", "data:text/html,x", "https://app.test/auth/done\r\nX: y",
	} {
		a := e.do(http.MethodGet, "/v1/oauth/acme/authorize?redirect_to="+url.QueryEscape(bad), "", "")
		if a.status != http.StatusBadRequest || a.code() != "invalid_redirect" {
			t.Errorf("redirect_to %q: %d %s", bad, a.status, a.body)
		}
	}
	for _, good := range []string{appURL, appURL + "/deeper?x=1", "https://APP.test/auth/done"} {
		if a := e.do(http.MethodGet, "/v1/oauth/acme/authorize?redirect_to="+url.QueryEscape(good), "", ""); a.status != http.StatusFound {
			t.Errorf("redirect_to %q: %d %s", good, a.status, a.body)
		}
	}
}

func TestLinkListAndUnlink(t *testing.T) {
	e := start(t, nil)
	e.oidc.QueueUser("sub-linker", unique("linker"), true)
	p := e.exchange(e.browser().signIn("acme"))

	// Only OIDC so far: it is the last way in.
	if a := e.do(http.MethodDelete, "/v1/oauth/identities/acme", p.AccessToken, ""); a.status != http.StatusConflict || a.code() != "last_login_method" {
		t.Fatalf("unlink the last method: %d %s", a.status, a.body)
	}
	if a := e.do(http.MethodPost, "/v1/oauth/github/link", "", ""); a.status != http.StatusUnauthorized {
		t.Fatalf("link without a token: %d", a.status)
	}
	b := e.browser()
	a := e.do(http.MethodPost, "/v1/oauth/github/link", p.AccessToken, `{"redirect_to":"`+appURL+`"}`)
	if a.status != http.StatusOK {
		t.Fatalf("link: %d %s", a.status, a.body)
	}
	var started struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	mustJSON(t, a.body, &started)
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		b.cookies[c.Name] = c.Value
	}
	e.gh.Queue(oauthtest.GitHubUser{ID: 777, Login: "linker", Emails: []oauthtest.GitHubEmail{{Email: unique("gh-linker"), Primary: true, Verified: false}}})
	provider, _ := url.Parse(started.AuthorizeURL)
	appAt := location(t, b.get(b.atProvider(provider).String()))
	if appAt.Query().Get("linked") != "github" || appAt.Query().Get("code") != "" {
		t.Fatalf("link finished at %s", appAt)
	}
	ids := e.do(http.MethodGet, "/v1/oauth/identities", p.AccessToken, "")
	if !strings.Contains(string(ids.body), `"provider":"acme"`) || !strings.Contains(string(ids.body), `"provider":"github","subject":"777"`) {
		t.Fatalf("identities: %s", ids.body)
	}
	// The GitHub identity now signs in to this account.
	e.gh.Queue(oauthtest.GitHubUser{ID: 777, Login: "linker", Emails: []oauthtest.GitHubEmail{{Email: unique("gh-linker"), Primary: true, Verified: false}}})
	if viaGitHub := e.exchange(e.browser().signIn("github")); viaGitHub.User.ID != p.User.ID {
		t.Fatalf("linked identity signed in to %s", viaGitHub.User.ID)
	}
	// A second GitHub identity cannot be linked.
	if a := e.do(http.MethodPost, "/v1/oauth/github/link", p.AccessToken, ""); a.status != http.StatusConflict || a.code() != "identity_taken" {
		t.Fatalf("second github link: %d %s", a.status, a.body)
	}
	// Someone else cannot link the same GitHub identity.
	e.oidc.QueueUser("sub-other", unique("other"), true)
	other := e.exchange(e.browser().signIn("acme"))
	ob := e.browser()
	a = e.do(http.MethodPost, "/v1/oauth/github/link", other.AccessToken, "")
	mustJSON(t, a.body, &started)
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		ob.cookies[c.Name] = c.Value
	}
	e.gh.Queue(oauthtest.GitHubUser{ID: 777, Login: "linker"})
	provider, _ = url.Parse(started.AuthorizeURL)
	if appAt := location(t, ob.get(ob.atProvider(provider).String())); appAt.Query().Get("error") != "identity_taken" {
		t.Fatalf("linking a taken identity: %s", appAt)
	}
	// With two ways in, one can go.
	if a := e.do(http.MethodDelete, "/v1/oauth/identities/github", p.AccessToken, ""); a.status != http.StatusNoContent {
		t.Fatalf("unlink: %d %s", a.status, a.body)
	}
	if a := e.do(http.MethodDelete, "/v1/oauth/identities/github", p.AccessToken, ""); a.status != http.StatusNotFound {
		t.Fatalf("unlink again: %d %s", a.status, a.body)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE subject = 'auth.oauth.identity_unlinked' AND payload->>'user_id' = $1`, p.User.ID); n != 1 {
		t.Fatalf("unlinked events = %d", n)
	}
}

func TestProviderDownIsARedirectAndAMetric(t *testing.T) {
	e := start(t, nil)
	e.gh.Queue(oauthtest.GitHubUser{ID: 9, Login: "down", Emails: []oauthtest.GitHubEmail{{Email: unique("down"), Primary: true, Verified: true}}})
	b := e.browser()
	cb := b.atProvider(b.authorize("github", appURL))
	e.gh.SetDown(true)
	appAt := location(t, b.get(cb.String()))
	if appAt.Query().Get("error") != "provider_unavailable" {
		t.Fatalf("provider down: %s", appAt)
	}
	res, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `oauth_provider_errors_total{provider="github",reason="unavailable"} 1`) ||
		!strings.Contains(string(body), `oauth_sign_ins_total{provider="github",result="provider_unavailable"} 1`) {
		t.Fatalf("metrics lack the provider error:\n%s", grep(string(body), "oauth_"))
	}
}

func TestDisabledAndMFAAccounts(t *testing.T) {
	e := start(t, nil)
	email := unique("disabled")
	id := e.localUser(email, true)
	if _, err := e.db.Exec(`UPDATE users SET disabled_at = now() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	e.oidc.QueueUser("sub-disabled", email, true)
	if appAt := e.browser().signIn("acme"); appAt.Query().Get("error") != "account_disabled" {
		t.Fatalf("disabled: %s", appAt)
	}
	mfa := unique("mfa")
	id = e.localUser(mfa, true)
	if _, err := e.db.Exec(`UPDATE users SET mfa_enabled = true WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	e.oidc.QueueUser("sub-mfa", mfa, true)
	appAt := e.browser().signIn("acme")
	a := e.do(http.MethodPost, "/v1/oauth/token", "", `{"code":"`+appAt.Query().Get("code")+`"}`)
	var mfaAnswer struct {
		MFARequired bool     `json:"mfa_required"`
		MFAToken    string   `json:"mfa_token"`
		AccessToken string   `json:"access_token"`
		Factors     []string `json:"factors"`
	}
	mustJSON(t, a.body, &mfaAnswer)
	// As auth answers a password: the factors the account accepts (no passkey here).
	if a.status != http.StatusOK || !mfaAnswer.MFARequired || mfaAnswer.AccessToken != "" ||
		!slices.Equal(mfaAnswer.Factors, []string{"totp", "recovery_code"}) {
		t.Fatalf("MFA account: %d %s", a.status, a.body)
	}
	// The challenge waits for auth's /v1/auth/login/mfa, remembering the first factor.
	hash, ok := mfachallenge.HashToken(mfaAnswer.MFAToken)
	if !ok {
		t.Fatalf("mfa_token shape: %q", mfaAnswer.MFAToken)
	}
	ch, err := mfachallenge.New(e.app.Redis).Get(context.Background(), hash)
	if err != nil || ch.UserID != id || !slices.Equal(ch.AMR, []string{"oauth"}) {
		t.Fatalf("challenge: %+v %v", ch, err)
	}
	// It is no bearer token.
	if a := e.do(http.MethodGet, "/v1/oauth/identities", mfaAnswer.MFAToken, ""); a.status != http.StatusUnauthorized {
		t.Fatalf("mfa_token as bearer: %d", a.status)
	}
}

func TestTokenRefusesBadBodies(t *testing.T) {
	e := start(t, nil)
	for body, want := range map[string]string{`{}`: "invalid_code", `{"code":"short"}`: "invalid_code",
		`{"code":"` + strings.Repeat("a", 43) + `"}`: "invalid_code", `{"code":`: "invalid_json"} {
		if a := e.do(http.MethodPost, "/v1/oauth/token", "", body); a.status != http.StatusBadRequest || a.code() != want {
			t.Errorf("%s: %d %s", body, a.status, a.body)
		}
	}
}

// Five provider failures in a row open GitHub's breaker: the next callback fails at once
// without calling GitHub, still as a redirect.
func TestProviderBreakerOpens(t *testing.T) {
	e := start(t, nil)
	type flow struct {
		b  *browser
		cb *url.URL
	}
	var flows []flow
	for i := range 6 {
		e.gh.Queue(oauthtest.GitHubUser{ID: int64(100 + i), Login: "brk"})
		b := e.browser()
		flows = append(flows, flow{b, b.atProvider(b.authorize("github", appURL))})
	}
	e.gh.SetDown(true)
	for i, f := range flows {
		before := e.gh.RequestCount()
		appAt := location(t, f.b.get(f.cb.String()))
		if appAt.Query().Get("error") != "provider_unavailable" {
			t.Fatalf("callback %d: %s", i, appAt)
		}
		if reached := e.gh.RequestCount() > before; reached != (i < 5) {
			t.Fatalf("callback %d reached GitHub: %v", i, reached)
		}
	}
}

// Each client IP has a budget over every oauth route (RATE_LIMIT_GLOBAL).
func TestRateLimitPerClientIP(t *testing.T) {
	e := start(t, map[string]string{"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_GLOBAL": "3/h", "TRUSTED_PROXIES": "127.0.0.1/32"})
	ip := fmt.Sprintf("10.%d.%d.%d", mrand.IntN(256), mrand.IntN(256), mrand.IntN(256)) // a budget of its own
	call := func(path string) answer {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		req.Header.Set("X-Forwarded-For", ip)
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return answer{res.StatusCode, res.Header, b}
	}
	for i := range 3 {
		if a := call("/v1/oauth/providers"); a.status != http.StatusOK {
			t.Fatalf("call %d: %d", i, a.status)
		}
	}
	a := call("/v1/oauth/acme/authorize?redirect_to=" + url.QueryEscape(appURL))
	if a.status != http.StatusTooManyRequests || a.code() != "rate_limited" || a.header.Get("Retry-After") == "" ||
		a.header.Get("RateLimit-Limit") != "3" {
		t.Fatalf("fourth call: %d %v %s", a.status, a.header, a.body)
	}
	if a := e.do(http.MethodGet, "/healthz", "", ""); a.status != http.StatusOK {
		t.Fatalf("probes are not limited: %d", a.status)
	}
}

// An IPv6 client picks any address of its /64: the addresses of one /64 spend one
// budget (RATE_LIMIT_IPV6_PREFIX, 64), the next /64 has its own.
func TestRateLimitIPv6ByPrefix(t *testing.T) {
	e := start(t, map[string]string{"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_GLOBAL": "3/h", "TRUSTED_PROXIES": "127.0.0.1/32"})
	prefix := fmt.Sprintf("2001:db8:%x:%x:", mrand.IntN(1<<16), mrand.IntN(1<<16)) // a /64 of its own
	call := func(ip string) int {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/oauth/providers", nil)
		req.Header.Set("X-Forwarded-For", ip)
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 3 {
		if st := call(fmt.Sprintf("%s%x::%x", prefix, i+1, mrand.IntN(1<<16)+1)); st != http.StatusOK {
			t.Fatalf("call %d: %d", i, st)
		}
	}
	if st := call(prefix + "ffff::1"); st != http.StatusTooManyRequests {
		t.Fatalf("a fourth address of the same /64: %d, want 429", st)
	}
	other := fmt.Sprintf("2001:db8:%x:%x::1", mrand.IntN(1<<16), mrand.IntN(1<<16))
	if st := call(other); st != http.StatusOK {
		t.Fatalf("another /64: %d, want its own budget", st)
	}
}

// A redirect_to must not climb out of its allowlisted path: dot segments, plain or
// percent-encoded (once or twice), encoded slashes and backslashes, empty segments,
// user info, fragments and other schemes all answer 400 invalid_redirect.
func TestRedirectToCannotLeaveTheAllowedPath(t *testing.T) {
	e := start(t, map[string]string{
		"OAUTH_REDIRECT_ALLOWLIST": appURL + ",http://localhost:3000/auth/done,http://localhost:4000",
	})
	for _, bad := range []string{
		"http://localhost:3000/auth/done/../../x",
		"http://localhost:3000/auth/done/../x",
		"http://localhost:3000/auth/done/..",
		"http://localhost:3000/auth/done/.",
		"http://localhost:3000/auth/done/./x",
		"http://localhost:3000/auth/done/x/../../other",
		"http://localhost:3000/auth/done/%2e%2e/%2e%2e/x",
		"http://localhost:3000/auth/done/%2E%2e/x",
		"http://localhost:3000/auth/done/%2E%2e/",
		"http://localhost:3000/auth/done/.%2e/x",
		"http://localhost:3000/auth/done/%2e./x",
		"http://localhost:3000/auth/done/%2e/x",
		"http://localhost:3000/auth/done/..%2f..%2fx",
		"http://localhost:3000/auth/done/..%2F..%2Fx",
		"http://localhost:3000/auth/done%2f..%2f..%2fx",
		"http://localhost:3000/auth/done/x%2fy",
		"http://localhost:3000/auth/done/%5c..%5c..%5cx",
		"http://localhost:3000/auth/done/..%5Cx",
		"http://localhost:3000/auth/done/..\\..\\x",
		"http://localhost:3000/auth/done\\..\\x",
		"http://localhost:3000/auth/done/%252e%252e/%252e%252e/x",
		"http://localhost:3000/auth/done/%252e%252E/x",
		"http://localhost:3000/auth/done/..%252fx",
		"http://localhost:3000/auth/done/%25",
		"http://localhost:3000/auth/done//evil.test",
		"http://localhost:3000/auth/done/%00",
		"http://localhost:3000/auth/done/ x",
		"http://localhost:3000@evil.com",
		"http://localhost:3000@evil.com/auth/done",
		"http://user:pass@localhost:3000/auth/done",
		"http://localhost:3000%2F@evil.com/auth/done",
		"http://localhost:3000/auth/done#frag",
		"http://localhost:3000/auth/done#",
		"http://localhost:3000/auth/done?x=1#/../../x",
		"ftp://localhost:3000/auth/done",
		"ws://localhost:3000/auth/done",
		"javascript://localhost:3000/auth/done",
		"http://localhost:4000/../x",
		"http://localhost:4000/%2e%2e/x",
		"http://localhost:4000/.",
		"https://app.test/auth/done/../../evil",
		"https://app.test/auth/done/%2e%2e/evil",
	} {
		a := e.do(http.MethodGet, "/v1/oauth/acme/authorize?redirect_to="+url.QueryEscape(bad), "", "")
		if a.status != http.StatusBadRequest || a.code() != "invalid_redirect" {
			t.Errorf("redirect_to %q: %d %s, want 400 invalid_redirect", bad, a.status, a.body)
		}
	}
	for _, good := range []string{
		"http://localhost:3000/auth/done",
		"http://localhost:3000/auth/done/",
		"http://localhost:3000/auth/done/deeper/x?y=1",
		"http://localhost:3000/auth/done?next=../../x",
		"http://localhost:3000/auth/done/a.b/..c/c../...",
		"http://localhost:3000/auth/done/caf%C3%A9",
		"http://localhost:4000",
		"http://localhost:4000/",
		"http://localhost:4000/anywhere/at/all",
		appURL, appURL + "/deeper?x=1", "https://APP.test/auth/done",
	} {
		if a := e.do(http.MethodGet, "/v1/oauth/acme/authorize?redirect_to="+url.QueryEscape(good), "", ""); a.status != http.StatusFound {
			t.Errorf("redirect_to %q: %d %s, want 302", good, a.status, a.body)
		}
	}
}

// setCookie returns the attributes of the one Set-Cookie of name in h, or fails.
func setCookie(t *testing.T, h http.Header, name string) (value string, attrs []string) {
	t.Helper()
	var found []string
	for _, line := range h.Values("Set-Cookie") {
		parts := strings.Split(line, ";")
		n, v, _ := strings.Cut(strings.TrimSpace(parts[0]), "=")
		if n != name {
			continue
		}
		found = append(found, line)
		value = v
		for _, p := range parts[1:] {
			attrs = append(attrs, strings.TrimSpace(p))
		}
	}
	if len(found) != 1 {
		t.Fatalf("Set-Cookie %s: %q (all: %q), want exactly one", name, found, h.Values("Set-Cookie"))
	}
	slices.Sort(attrs)
	return value, attrs
}

// The binding cookie is a __Host- cookie (no Domain, Path=/, Secure), so a sibling
// subdomain cannot toss one of its own into the flow.
func TestBindingCookieIsHostPrefixed(t *testing.T) {
	e := start(t, nil)
	const name = "__Host-tf_oauth_binding"
	want := []string{"HttpOnly", "Max-Age=600", "Path=/", "SameSite=Lax", "Secure"}

	// Start of a sign-in.
	e.oidc.QueueUser("sub-host-cookie", unique("hostcookie"), true)
	b := e.browser()
	res := b.get(e.url + "/v1/oauth/acme/authorize?redirect_to=" + url.QueryEscape(appURL))
	v, attrs := setCookie(t, res.Header, name)
	if len(v) < 43 || !slices.Equal(attrs, want) {
		t.Fatalf("authorize Set-Cookie %s=%s; %q, want %q", name, v, attrs, want)
	}
	for _, old := range []string{"tf_oauth_binding"} {
		if _, ok := b.cookies[old]; ok {
			t.Fatalf("authorize still sets %s", old)
		}
	}
	// The callback spends it with the same attributes (a __Host- cookie is only
	// replaced by one with Secure and Path=/).
	res = b.get(b.atProvider(location(t, res)).String())
	if appAt := location(t, res); appAt.Query().Get("code") == "" {
		t.Fatalf("sign-in with the __Host- cookie: %s", appAt)
	}
	v, attrs = setCookie(t, res.Header, name)
	if wantGone := []string{"HttpOnly", "Max-Age=0", "Path=/", "SameSite=Lax", "Secure"}; v != "" || !slices.Equal(attrs, wantGone) {
		t.Fatalf("callback Set-Cookie %s=%s; %q, want %q", name, v, attrs, wantGone)
	}

	// Start of a link.
	e.oidc.QueueUser("sub-host-cookie-2", unique("hostcookie2"), true)
	p := e.exchange(e.browser().signIn("acme"))
	a := e.do(http.MethodPost, "/v1/oauth/github/link", p.AccessToken, `{"redirect_to":"`+appURL+`"}`)
	if a.status != http.StatusOK {
		t.Fatalf("link: %d %s", a.status, a.body)
	}
	if v, attrs := setCookie(t, a.header, name); len(v) < 43 || !slices.Equal(attrs, want) {
		t.Fatalf("link Set-Cookie %s=%s; %q, want %q", name, v, attrs, want)
	}
}

// A callback whose binding arrives under any other name (the old one, a tossed
// cookie without the prefix, the prefix in another case) is a callback without one.
func TestCallbackRefusesUnprefixedBindingCookie(t *testing.T) {
	e := start(t, nil)
	for i, other := range []string{"tf_oauth_binding", "__host-tf_oauth_binding", "__Secure-tf_oauth_binding", "__HOST-tf_oauth_binding"} {
		e.oidc.QueueUser(fmt.Sprintf("sub-tossed-%d", i), unique("tossed"), true)
		b := e.browser()
		cb := b.atProvider(b.authorize("acme", appURL))
		value, ok := b.cookies["__Host-tf_oauth_binding"]
		if !ok {
			// Before the fix the cookie has the old name: present its value all the same.
			value = b.cookies["tf_oauth_binding"]
		}
		if value == "" {
			t.Fatalf("no binding cookie after authorize: %v", b.cookies)
		}
		b.cookies = map[string]string{other: value}
		appAt := location(t, b.get(cb.String()))
		if appAt.Query().Get("error") != "browser_mismatch" || appAt.Query().Get("code") != "" {
			t.Errorf("callback with the binding as %s: %s, want ?error=browser_mismatch", other, appAt)
		}
	}
}

// The __Host- binding cookie is Secure, which browsers drop from plain-http origins
// other than localhost and loopback: such a callback base stops the service at start.
func TestPlainHTTPCallbackBaseOffLocalhostStopsStart(t *testing.T) {
	for base, ok := range map[string]bool{
		"http://oauth.internal:8082": false, "http://192.168.1.10": false, "http://localhost.evil.test": false,
		"http://localhost:8081": true, "http://auth.localhost": true, "http://127.0.0.1:8082": true, "http://[::1]:8082": true,
		"https://api.example.test": true,
	} {
		vars := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1",
			"JWT_KEYS_DIR": t.TempDir(), "OAUTH_CALLBACK_BASE_URL": base}
		cfg, err := config.Load("127.0.0.1:0", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Fatalf("config %s: %v", base, err)
		}
		_, err = app.New(context.Background(), cfg, zap.NewNop(), app.WithoutRelay())
		if refused := err != nil && strings.HasPrefix(err.Error(), "OAUTH_CALLBACK_BASE_URL: "); refused == ok {
			t.Errorf("callback base %s: %v, want refused %v", base, err, !ok)
		}
	}
}
