// Package oauthtest runs the providers the oauth service talks to, for tests: a GitHub
// emulation speaking GitHub's real endpoints and JSON (GitHub Enterprise layout: the
// API under /api/v3), and an OpenID Connect provider (oauth2-proxy/mockoidc), each
// over a real socket.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauth2-proxy/mockoidc"
)

// GitHubUser is the person who approves the next authorization.
type GitHubUser struct {
	ID          int64
	Login, Name string
	// PublicEmail is the profile's address (GitHub does not say whether it is verified).
	PublicEmail string
	Emails      []GitHubEmail
}

// GitHubEmail is one entry of GET /user/emails.
type GitHubEmail struct {
	Email      string `json:"email"`
	Primary    bool   `json:"primary"`
	Verified   bool   `json:"verified"`
	Visibility string `json:"visibility,omitempty"`
}

// GitHub emulates github.com (or a GitHub Enterprise server): the authorize page
// approves at once as the queued user; codes are single use and PKCE is enforced,
// including refusing a verifier for a code issued without a challenge (a downgrade).
type GitHub struct {
	URL          string // web base: OAUTH_GITHUB_BASE_URL
	APIURL       string // OAUTH_GITHUB_API_URL
	ClientID     string
	ClientSecret string

	srv *httptest.Server

	mu     sync.Mutex
	queue  []GitHubUser
	codes  map[string]ghGrant
	tokens map[string]GitHubUser
	// Exchanges counts token requests; Verifiers are the code_verifiers received.
	Exchanges int
	Verifiers []string
	// Down makes every endpoint answer 503; Requests counts every request, down or not.
	Down     bool
	Requests int
}

type ghGrant struct {
	user      GitHubUser
	challenge string
	method    string
	redirect  string
}

// StartGitHub runs the emulation until the test ends.
func StartGitHub(t testing.TB) *GitHub {
	g := &GitHub{ClientID: "Iv1." + randHex(8), ClientSecret: randHex(20), codes: map[string]ghGrant{},
		tokens: map[string]GitHubUser{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.accessToken)
	mux.HandleFunc("GET /api/v3/user", g.user)
	mux.HandleFunc("GET /api/v3/user/emails", g.emails)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		down := g.Down
		g.Requests++
		g.mu.Unlock()
		if down {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	g.URL, g.APIURL = g.srv.URL, g.srv.URL+"/api/v3"
	return g
}

// Queue makes u the one who approves the next authorization.
func (g *GitHub) Queue(u GitHubUser) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queue = append(g.queue, u)
}

// SetDown makes the emulation fail every request (or recover).
func (g *GitHub) SetDown(down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.Down = down
}

// RequestCount is how many requests reached the emulation.
func (g *GitHub) RequestCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Requests
}

// Stats returns the exchanges made and the verifiers received.
func (g *GitHub) Stats() (exchanges int, verifiers []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Exchanges, append([]string(nil), g.Verifiers...)
}

func (g *GitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.ClientID {
		http.Error(w, "unknown client", http.StatusNotFound)
		return
	}
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.mu.Unlock()
		http.Error(w, "no user queued", http.StatusInternalServerError)
		return
	}
	u := g.queue[0]
	g.queue = g.queue[1:]
	code := randHex(10)
	g.codes[code] = ghGrant{user: u, challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"),
		redirect: q.Get("redirect_uri")}
	g.mu.Unlock()
	to, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	rq := to.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	to.RawQuery = rq.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

// accessToken answers like GitHub: 200 with an "error" field when the code is bad.
func (g *GitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.Exchanges++
	verifier := r.PostForm.Get("code_verifier")
	g.Verifiers = append(g.Verifiers, verifier)
	fail := func(code, desc string) {
		writeJSON(w, map[string]string{"error": code, "error_description": desc})
	}
	if id != g.ClientID || secret != g.ClientSecret {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	grant, ok := g.codes[r.PostForm.Get("code")]
	delete(g.codes, r.PostForm.Get("code")) // single use
	switch {
	case !ok:
		fail("bad_verification_code", "The code passed is incorrect or expired.")
		return
	case grant.redirect != "" && r.PostForm.Get("redirect_uri") != grant.redirect:
		fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
		return
	case grant.challenge == "" && verifier != "":
		fail("bad_verification_code", "A code_verifier was sent for a code issued without a code_challenge.")
		return
	case grant.challenge != "" && (grant.method != "S256" || s256(verifier) != grant.challenge):
		fail("bad_verification_code", "The code_verifier does not match the code_challenge.")
		return
	}
	tok := "gho_" + randHex(18)
	g.tokens[tok] = grant.user
	writeJSON(w, map[string]string{"access_token": tok, "token_type": "bearer", "scope": "read:user,user:email"})
}

func (g *GitHub) bearerUser(w http.ResponseWriter, r *http.Request) (GitHubUser, bool) {
	h := r.Header.Get("Authorization")
	tok := strings.TrimPrefix(strings.TrimPrefix(h, "Bearer "), "token ")
	g.mu.Lock()
	u, ok := g.tokens[tok]
	g.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
	}
	return u, ok
}

func (g *GitHub) user(w http.ResponseWriter, r *http.Request) {
	u, ok := g.bearerUser(w, r)
	if !ok {
		return
	}
	var email any
	if u.PublicEmail != "" {
		email = u.PublicEmail
	}
	writeJSON(w, map[string]any{"login": u.Login, "id": u.ID, "node_id": "U_" + randHex(6), "type": "User",
		"name": u.Name, "email": email, "avatar_url": g.URL + "/avatars/" + u.Login, "bio": nil, "location": nil})
}

func (g *GitHub) emails(w http.ResponseWriter, r *http.Request) {
	u, ok := g.bearerUser(w, r)
	if !ok {
		return
	}
	list := u.Emails
	if list == nil {
		list = []GitHubEmail{}
	}
	writeJSON(w, list)
}

// OIDC is an OpenID Connect provider (mockoidc) over a real socket.
type OIDC struct {
	*mockoidc.MockOIDC
}

// StartOIDC runs the provider until the test ends.
func StartOIDC(t testing.TB) *OIDC {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("start mockoidc: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return &OIDC{m}
}

// QueueUser makes the next authorization sign in as subject with email.
func (o *OIDC) QueueUser(subject, email string, verified bool) {
	o.MockOIDC.QueueUser(&mockoidc.MockUser{Subject: subject, Email: email, EmailVerified: verified,
		PreferredUsername: strings.Split(email, "@")[0]})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
