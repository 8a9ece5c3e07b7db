package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/services/oauth/internal/app"
	"github.com/talentforge/auth/services/oauth/oauthtest"
)

var databases = platformtest.NewDatabases("oauth_test_")

// eventKeys seals the tokens of the events the tests' services write (EVENT_KEYS).
var eventKeys = platformtest.KeySpec("oauth-test")

func TestMain(m *testing.M) {
	code := m.Run()
	databases.Drop()
	os.Exit(code)
}

// The app the tests send browsers back to; redirect_to must start with it.
const appURL = "https://app.test/auth/done"

type env struct {
	t      *testing.T
	url    string
	app    *app.App
	cfg    *config.Config
	db     *sql.DB
	gh     *oauthtest.GitHub
	oidc   *oauthtest.OIDC
	client *http.Client
}

// start runs the oauth service against the real PostgreSQL, Redis and NATS, with a
// GitHub emulation and an OIDC provider ("acme") on their own sockets.
func start(t *testing.T, extra map[string]string) *env {
	t.Helper()
	gh := oauthtest.StartGitHub(t)
	op := oauthtest.StartOIDC(t)
	keys := t.TempDir()
	if _, err := token.EnsureKey(keys, "EdDSA", time.Now()); err != nil {
		t.Fatal(err)
	}
	ln := platformtest.Listen(t)
	base := "http://" + ln.Addr().String()
	cfg := platformtest.Settings(t, map[string]string{
		"DATABASE_URL": databases.Shared(t), "JWT_KEYS_DIR": keys, "PUBLIC_URL": "http://auth.test",
		"OAUTH_CALLBACK_BASE_URL": base, "OAUTH_REDIRECT_ALLOWLIST": appURL, "LOG_LEVEL": "error",
		"OAUTH_GITHUB_CLIENT_ID": gh.ClientID, "OAUTH_GITHUB_CLIENT_SECRET": gh.ClientSecret,
		"OAUTH_GITHUB_BASE_URL": gh.URL, "OAUTH_GITHUB_API_URL": gh.APIURL,
		"OAUTH_OIDC_NAME": "acme", "OAUTH_OIDC_ISSUER": op.Issuer(),
		"OAUTH_OIDC_CLIENT_ID": op.ClientID, "OAUTH_OIDC_CLIENT_SECRET": op.ClientSecret,
		"OAUTH_PROVIDER_TIMEOUT": "2s", "RATE_LIMIT_ENABLED": "false",
		"EVENT_KEYS": eventKeys,
	}, extra).Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, zap.NewNop(), app.WithoutRelay())
	if err != nil {
		cancel()
		t.Fatalf("start oauth: %v", err)
	}
	platformtest.PingRedis(t, a.Redis)
	db, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	platformtest.Serve(t, "server", cancel, func() error { return a.Server.Serve(ctx, ln) }, a.Close, db.Close)
	return &env{t: t, url: base, app: a, cfg: cfg, db: db, gh: gh, oidc: op,
		client: &http.Client{Timeout: 20 * time.Second, Transport: newOpenAPICheck(t, http.DefaultTransport, base),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// browser is one browser: it keeps the cookies the oauth service sets and follows
// redirects one by one, so a test can tamper with a step.
type browser struct {
	e       *env
	cookies map[string]string
}

func (e *env) browser() *browser { return &browser{e: e, cookies: map[string]string{}} }

func (b *browser) get(raw string) *http.Response {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if strings.HasPrefix(raw, b.e.url) {
		for k, v := range b.cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
	}
	res, err := b.e.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if strings.HasPrefix(raw, b.e.url) {
		for _, c := range res.Cookies() {
			if c.MaxAge < 0 {
				delete(b.cookies, c.Name)
			} else {
				b.cookies[c.Name] = c.Value
			}
		}
	}
	return res
}

func location(t *testing.T, res *http.Response) *url.URL {
	t.Helper()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", res.StatusCode)
	}
	u, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// authorize starts a sign-in and returns the provider URL.
func (b *browser) authorize(provider, redirectTo string) *url.URL {
	b.e.t.Helper()
	return location(b.e.t, b.get(b.e.url+"/v1/oauth/"+provider+"/authorize?redirect_to="+url.QueryEscape(redirectTo)))
}

// atProvider approves at the provider and returns the callback URL it sends back.
func (b *browser) atProvider(providerURL *url.URL) *url.URL {
	b.e.t.Helper()
	cb := location(b.e.t, b.get(providerURL.String()))
	if !strings.HasPrefix(cb.String(), b.e.url+"/v1/oauth/") {
		b.e.t.Fatalf("provider sent the browser to %s", cb)
	}
	return cb
}

// signIn runs the whole flow and returns where the app was sent.
func (b *browser) signIn(provider string) *url.URL {
	b.e.t.Helper()
	return location(b.e.t, b.get(b.atProvider(b.authorize(provider, appURL)).String()))
}

type pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	User         struct {
		ID            string   `json:"id"`
		Email         string   `json:"email"`
		Name          string   `json:"name"`
		EmailVerified bool     `json:"email_verified"`
		Roles         []string `json:"roles"`
	} `json:"user"`
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) code() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(a.body, &b)
	return b.Error.Code
}

func (e *env) do(method, path, bearer, body string) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, b}
}

// exchange trades the code in the app's URL for a pair.
func (e *env) exchange(appAt *url.URL) pair {
	e.t.Helper()
	code := appAt.Query().Get("code")
	if code == "" {
		e.t.Fatalf("no code in %s", appAt)
	}
	a := e.do(http.MethodPost, "/v1/oauth/token", "", `{"code":"`+code+`"}`)
	if a.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", a.status, a.body)
	}
	var p pair
	if err := json.Unmarshal(a.body, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func unique(prefix string) string { return prefix + "-" + uuid.NewString()[:8] + "@example.test" }

// localUser makes a password account directly in the database.
func (e *env) localUser(email string, verified bool) string {
	e.t.Helper()
	id := uuid.NewString()
	var at any
	if verified {
		at = time.Now()
	}
	if _, err := e.db.Exec(`INSERT INTO users (id, email, name, password_hash, email_verified_at) VALUES ($1, $2, 'Local', '$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA', $3)`,
		id, email, at); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Exec(`INSERT INTO user_roles (user_id, role) VALUES ($1, 'user')`, id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
