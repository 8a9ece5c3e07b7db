package signin_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/services/oauth/internal/app"
	"github.com/talentforge/auth/services/oauth/internal/signin"
	"github.com/talentforge/auth/services/oauth/oauthtest"
)

var databases = platformtest.NewDatabases("signin_test_")

func TestMain(m *testing.M) {
	code := m.Run()
	databases.Drop()
	os.Exit(code)
}

const (
	// appURL is the only redirect_to the service accepts (OAUTH_REDIRECT_ALLOWLIST).
	appURL = "https://app.test/auth/done"
	// callbackBase is OAUTH_CALLBACK_BASE_URL: nothing listens there, the tests hand the
	// callback's query to Callback themselves.
	callbackBase = "http://127.0.0.1:9"
)

var client = signin.Client{IP: "203.0.113.5", UserAgent: "signin-test/1"}

type env struct {
	*app.App
	gh *oauthtest.GitHub
}

// start composes the oauth service (app.New, no server) against the real PostgreSQL
// and Redis, with GitHub emulated on a socket of its own.
func start(t *testing.T, extra map[string]string) *env {
	t.Helper()
	gh := oauthtest.StartGitHub(t)
	keys := t.TempDir()
	if _, err := token.EnsureKey(keys, "EdDSA", time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := platformtest.Settings(t, map[string]string{
		"DATABASE_URL": databases.Shared(t), "JWT_KEYS_DIR": keys, "PUBLIC_URL": "http://auth.test",
		"OAUTH_CALLBACK_BASE_URL": callbackBase, "OAUTH_REDIRECT_ALLOWLIST": appURL, "LOG_LEVEL": "error",
		"OAUTH_GITHUB_CLIENT_ID": gh.ClientID, "OAUTH_GITHUB_CLIENT_SECRET": gh.ClientSecret,
		"OAUTH_GITHUB_BASE_URL": gh.URL, "OAUTH_GITHUB_API_URL": gh.APIURL,
		"OAUTH_PROVIDER_TIMEOUT": "2s", "RATE_LIMIT_ENABLED": "false",
		"EVENT_KEYS": platformtest.KeySpec("signin-test"),
	}, extra).Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, zap.NewNop(), app.WithoutRelay())
	if err != nil {
		cancel()
		t.Fatalf("start oauth: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = a.Close() })
	platformtest.PingRedis(t, a.Redis)
	return &env{App: a, gh: gh}
}

// noRedirects is a browser that stops at every redirect.
var noRedirects = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// atProvider opens the provider's authorize URL, where the queued user approves at once,
// and returns the query GitHub sends to the callback.
func atProvider(t *testing.T, providerURL string) url.Values {
	t.Helper()
	res, err := noRedirects.Get(providerURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	to, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(to.String(), callbackBase+"/") {
		t.Fatalf("provider answered %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	return to.Query()
}

// githubUser is a GitHub account of its own with a primary address.
func githubUser(verified bool) oauthtest.GitHubUser {
	id := rand.Int64N(1<<40) + 1
	email := "gh-" + strconv.FormatInt(id, 36) + "@example.test"
	return oauthtest.GitHubUser{ID: id, Login: "octo" + strconv.FormatInt(id, 36), Name: "Octo Cat",
		Emails: []oauthtest.GitHubEmail{{Email: email, Primary: true, Verified: verified}}}
}

// signIn runs a sign-in as u up to the callback and returns where the app is sent.
func (e *env) signIn(t *testing.T, u oauthtest.GitHubUser) *url.URL {
	t.Helper()
	e.gh.Queue(u)
	st, err := e.SignIn.Authorize(context.Background(), "github", appURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	to, err := e.SignIn.Callback(context.Background(), "github", atProvider(t, st.URL), st.Binding, client)
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	return appAt(t, to)
}

func appAt(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || !strings.HasPrefix(raw, appURL+"?") {
		t.Fatalf("app sent to %q (%v), want %s?...", raw, err, appURL)
	}
	return u
}

func TestAuthorizeAllowlistedRedirect(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, redirect := range []string{appURL, appURL + "/next?tab=1"} {
		st, err := e.SignIn.Authorize(context.Background(), "github", redirect, nil)
		if err != nil || st.Failed || st.Binding == "" {
			t.Fatalf("authorize %s = %+v, %v", redirect, st, err)
		}
		to, err := url.Parse(st.URL)
		if err != nil || to.Scheme+"://"+to.Host+to.Path != e.gh.URL+"/login/oauth/authorize" {
			t.Fatalf("provider URL = %q, want GitHub's authorize page", st.URL)
		}
		q := to.Query()
		if q.Get("client_id") != e.gh.ClientID || q.Get("state") == "" || q.Get("code_challenge") == "" ||
			q.Get("code_challenge_method") != "S256" || !strings.HasPrefix(q.Get("redirect_uri"), callbackBase+"/") {
			t.Fatalf("authorize query = %v", q)
		}
		if strings.Contains(st.URL, st.Binding) {
			t.Fatal("the binding travels to the provider")
		}
	}
}

func TestAuthorizeRefusesRedirectOffAllowlist(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, redirect := range []string{"", "https://evil.test/auth/done", "http://app.test/auth/done",
		"https://app.test/auth/donex", "https://app.test/auth/done/../admin", "https://app.test/auth/done/%2e%2e/x",
		"https://user@app.test/auth/done", "https://app.test/auth/done#frag", "javascript:alert(1)", "/auth/done"} {
		if st, err := e.SignIn.Authorize(context.Background(), "github", redirect, nil); !errors.Is(err, signin.ErrInvalidRedirect) {
			t.Fatalf("authorize %q = %+v, %v; want ErrInvalidRedirect", redirect, st, err)
		}
	}
	if _, err := e.SignIn.Authorize(context.Background(), "gitlab", appURL, nil); !errors.Is(err, signin.ErrUnknownProvider) {
		t.Fatalf("unknown provider = %v, want ErrUnknownProvider", err)
	}
}

// A whole sign-in: provider, callback, a one-time code, and a pair that Authenticate
// accepts; the code works once. The new account's only way in is its GitHub identity.
func TestSignInCodeTokenIdentities(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	ctx := context.Background()
	gu := githubUser(true)
	at := e.signIn(t, gu)
	code := at.Query().Get("code")
	if code == "" || at.Query().Get("error") != "" {
		t.Fatalf("app sent to %s, want ?code=", at)
	}

	pair, err := e.SignIn.Token(ctx, code)
	if err != nil || pair.AccessToken == "" || pair.RefreshToken == "" || pair.MFARequired {
		t.Fatalf("token = %+v, %v", pair, err)
	}
	if pair.User.Email != gu.Emails[0].Email || !pair.User.Verified() {
		t.Fatalf("user = %+v, want the verified GitHub address %s", pair.User, gu.Emails[0].Email)
	}
	p, err := e.SignIn.Authenticate(ctx, pair.AccessToken)
	if err != nil || p.UserID != pair.User.ID || p.SessionID != pair.SessionID || !slices.Equal(p.AMR, []string{"oauth"}) {
		t.Fatalf("authenticate = %+v, %v", p, err)
	}
	if _, err := e.SignIn.Token(ctx, code); !errors.Is(err, signin.ErrInvalidCode) {
		t.Fatalf("the same code twice = %v, want ErrInvalidCode", err)
	}
	if _, err := e.SignIn.Token(ctx, "short"); !errors.Is(err, signin.ErrInvalidCode) {
		t.Fatalf("malformed code = %v, want ErrInvalidCode", err)
	}

	ids, err := e.SignIn.Identities(ctx, p)
	if err != nil || len(ids) != 1 || ids[0].Provider != "github" || ids[0].Subject != strconv.FormatInt(gu.ID, 10) ||
		ids[0].UserID != p.UserID || ids[0].Email != gu.Emails[0].Email {
		t.Fatalf("identities = %+v, %v; want the one github identity", ids, err)
	}
	if err := e.SignIn.Unlink(ctx, p, "github", client); !errors.Is(err, signin.ErrLastLoginMethod) {
		t.Fatalf("unlink the last login method = %v, want ErrLastLoginMethod", err)
	}
	if ids, err := e.SignIn.Identities(ctx, p); err != nil || len(ids) != 1 {
		t.Fatalf("identities after a refused unlink = %+v, %v", ids, err)
	}

	// The same GitHub account signs in to the same user again.
	again, err := e.SignIn.Token(ctx, e.signIn(t, gu).Query().Get("code"))
	if err != nil || again.User.ID != pair.User.ID || again.SessionID == pair.SessionID {
		t.Fatalf("second sign-in = %+v, %v; want a new session of user %s", again, err, pair.User.ID)
	}
}

// A callback with another browser's binding fails with browser_mismatch, and the
// state it carried is spent.
func TestCallbackWrongBinding(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	ctx := context.Background()
	e.gh.Queue(githubUser(true))
	st, err := e.SignIn.Authorize(ctx, "github", appURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := atProvider(t, st.URL)
	to, err := e.SignIn.Callback(ctx, "github", q, "another-browsers-binding", client)
	if err != nil {
		t.Fatal(err)
	}
	if at := appAt(t, to); at.Query().Get("error") != signin.CodeBrowserMismatch || at.Query().Has("code") {
		t.Fatalf("app sent to %s, want ?error=browser_mismatch and no code", at)
	}
	if _, err := e.SignIn.Callback(ctx, "github", q, st.Binding, client); !errors.Is(err, signin.ErrInvalidState) {
		t.Fatalf("replay with the right binding = %v, want ErrInvalidState", err)
	}
	if n, _ := e.gh.Stats(); n != 0 {
		t.Fatalf("GitHub saw %d code exchanges, want none", n)
	}
}

// With verification required, an address GitHub did not verify signs nobody in and
// links nothing.
func TestCallbackUnverifiedAddress(t *testing.T) {
	t.Parallel()
	e := start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "true"})
	gu := githubUser(false)
	at := e.signIn(t, gu)
	if at.Query().Get("error") != signin.CodeEmailNotVerified || at.Query().Has("code") {
		t.Fatalf("app sent to %s, want ?error=email_not_verified and no code", at)
	}
	n, err := e.DB.NewSelect().Table("identities").Where("provider = 'github' AND subject = ?", strconv.FormatInt(gu.ID, 10)).
		Count(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("identities linked = %d, %v; want 0", n, err)
	}
}
