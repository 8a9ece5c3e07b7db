package ui_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/talentforge/auth/pkg/softauthn"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// The hosted UI against the real PostgreSQL, Redis and NATS, as a browser drives it:
// cookies kept by hand (Go's jar sends no Secure cookie over http), posts as forms with
// the page's CSRF token and our Origin. The real browser walk-through is make test-ui.

type browserClient struct {
	t       *testing.T
	e       *apitest.Env
	cookies map[string]*http.Cookie
	origin  string
}

func newBrowser(t *testing.T, e *apitest.Env) *browserClient {
	return &browserClient{t: t, e: e, cookies: map[string]*http.Cookie{}, origin: e.Cfg.PublicURL}
}

type page struct {
	status int
	header http.Header
	body   string
	set    map[string]*http.Cookie
}

func (b *browserClient) do(method, path string, form url.Values, header http.Header) page {
	b.t.Helper()
	if form == nil {
		return b.send(method, path, "", nil, header)
	}
	return b.send(method, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), header)
}

// send is one request with the browser's cookies (and Origin on a body), as a browser makes it.
func (b *browserClient) send(method, path, contentType string, body io.Reader, header http.Header) page {
	b.t.Helper()
	req, err := http.NewRequest(method, b.e.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Origin", b.origin)
	}
	req.Header.Set("Accept", "text/html")
	for k, v := range header {
		req.Header[k] = v
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := b.e.Client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(raw), set: map[string]*http.Cookie{}}
	for _, c := range resp.Cookies() {
		p.set[c.Name] = c
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return p
}

func (b *browserClient) get(path string) page {
	b.t.Helper()
	return b.do(http.MethodGet, path, nil, nil)
}

// post sends form with the CSRF token of the browser's cookie.
func (b *browserClient) post(path string, form url.Values) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if c, ok := b.cookies["__Host-csrf"]; ok && !form.Has("csrf") {
		form.Set("csrf", c.Value)
	}
	return b.do(http.MethodPost, path, form, nil)
}

func expectPage(t *testing.T, p page, status int, contains ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
	for _, s := range contains {
		if !strings.Contains(p.body, s) {
			t.Fatalf("page lacks %q:\n%s", s, p.body)
		}
	}
}

func expectRedirect(t *testing.T, p page, to string) {
	t.Helper()
	if p.status != http.StatusSeeOther || p.header.Get("Location") != to {
		t.Fatalf("answer %d to %q, want 303 to %q: %s", p.status, p.header.Get("Location"), to, p.body)
	}
}

func verify(e *apitest.Env, header http.Header) *apitest.Response {
	return e.Request(http.MethodGet, "/v1/auth/verify", nil, header)
}

func TestSignInGivesAnOpaqueCookieThatOnlyForwardAuthAccepts(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("ui")
	e.Register(email)
	b := newBrowser(t, e)

	login := b.get("/ui/login")
	expectPage(t, login, http.StatusOK, `<label for="email">Email</label>`, `<label for="password">Password</label>`,
		">Sign in</button>", ">Sign in with a passkey</button>", `href="/ui/register"`, `href="/ui/forgot-password"`)
	csp := login.header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, d) {
			t.Fatalf("CSP %q lacks %q", csp, d)
		}
	}
	// Chromium sends "Origin: null" on a form post under no-referrer.
	if rp := login.header.Get("Referrer-Policy"); rp != "same-origin" {
		t.Fatalf("Referrer-Policy %q", rp)
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(login.body, "<script>") || strings.Contains(login.body, "style=") {
		t.Fatalf("inline script or style: %s\n%s", csp, login.body)
	}
	csrf := login.set["__Host-csrf"]
	if csrf == nil || !csrf.Secure || !csrf.HttpOnly || csrf.Path != "/" || csrf.Domain != "" || csrf.SameSite != http.SameSiteLaxMode {
		t.Fatalf("csrf cookie %+v", csrf)
	}
	if !strings.Contains(login.body, `name="csrf" value="`+csrf.Value+`"`) {
		t.Fatal("the form does not carry the CSRF token")
	}

	// Unknown address and wrong password: the same page, word for word but the address.
	wrong := b.post("/ui/login", url.Values{"email": {email}, "password": {"not the password at all"}})
	unknown := b.post("/ui/login", url.Values{"email": {apitest.Email("nobody")}, "password": {"not the password at all"}})
	expectPage(t, wrong, http.StatusUnauthorized, "The email or password is incorrect.")
	expectPage(t, unknown, http.StatusUnauthorized, "The email or password is incorrect.")
	if _, ok := wrong.set["__Host-session"]; ok {
		t.Fatal("a failed sign-in set a session cookie")
	}

	ok := b.post("/ui/login", url.Values{"email": {email}, "password": {apitest.Password}})
	expectRedirect(t, ok, "/ui/account")
	sc := ok.set["__Host-session"]
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.Path != "/" || sc.Domain != "" || sc.SameSite != http.SameSiteLaxMode || sc.MaxAge <= 0 {
		t.Fatalf("session cookie %+v", sc)
	}
	// An opaque reference: not a JWT, not a refresh token, refused as a bearer token and
	// as a cookie by every route but ForwardAuth.
	if !strings.HasPrefix(sc.Value, "bs_") || strings.Count(sc.Value, ".") > 0 {
		t.Fatalf("cookie %q is not an opaque reference", sc.Value)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, sc.Value), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Request(http.MethodGet, "/v1/users/me", nil, http.Header{"Cookie": {"__Host-session=" + sc.Value}}), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": sc.Value}, ""), http.StatusUnauthorized, "invalid_refresh_token")

	v := verify(e, http.Header{"Cookie": {"__Host-session=" + sc.Value}})
	apitest.Expect(t, v, http.StatusOK, "")
	if v.Header.Get("X-Auth-Email") != email || v.Header.Get("X-Auth-User-Id") == "" || v.Header.Get("X-Auth-Session-Id") == "" {
		t.Fatalf("verify headers %v", v.Header)
	}
	// Same live checks as a bearer token: role query, a tampered secret.
	apitest.Expect(t, e.Request(http.MethodGet, "/v1/auth/verify?role=admin", nil, http.Header{"Cookie": {"__Host-session=" + sc.Value}}), http.StatusForbidden, "forbidden")
	tampered := sc.Value[:len(sc.Value)-2] + "AA"
	if tampered == sc.Value {
		tampered = sc.Value[:len(sc.Value)-2] + "BB"
	}
	apitest.Expect(t, verify(e, http.Header{"Cookie": {"__Host-session=" + tampered}}), http.StatusUnauthorized, "")
	// A cookie of the other name (planted by a sibling host) is never read.
	apitest.Expect(t, verify(e, http.Header{"Cookie": {"__Secure-session=" + sc.Value}}), http.StatusUnauthorized, "")

	acct := b.get("/ui/account")
	expectPage(t, acct, http.StatusOK, "Your account", email, "This device", ">Sign out everywhere</button>", ">Add a passkey</button>", ">Turn on</button>")

	// Signing out ends the session: the cookie is refused from then on, wherever it was copied.
	expectRedirect(t, b.post("/ui/logout", nil), "/ui/login?notice=signed_out")
	apitest.Expect(t, verify(e, http.Header{"Cookie": {"__Host-session=" + sc.Value}}), http.StatusUnauthorized, "")
	b.cookies["__Host-session"] = sc
	gone := b.get("/ui/account")
	if gone.status != http.StatusSeeOther || !strings.HasPrefix(gone.header.Get("Location"), "http://auth.test/ui/login?return_to=") {
		t.Fatalf("account after sign-out: %d %q", gone.status, gone.header.Get("Location"))
	}
	if c := gone.set["__Host-session"]; c == nil || c.MaxAge >= 0 {
		t.Fatalf("a dead session's cookie was not removed: %+v", c)
	}
}

func TestFormsRefuseCrossSiteAndForgedPosts(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("ui-csrf")
	e.Register(email)
	b := newBrowser(t, e)
	b.get("/ui/login")
	creds := func() url.Values { return url.Values{"email": {email}, "password": {apitest.Password}} }

	// No token, a wrong token, no cookie, another origin, a cross-site fetch.
	noToken := b.do(http.MethodPost, "/ui/login", creds(), nil)
	expectPage(t, noToken, http.StatusForbidden, "Reload the page")
	bad := creds()
	bad.Set("csrf", strings.Repeat("A", 43))
	expectPage(t, b.do(http.MethodPost, "/ui/login", bad, nil), http.StatusForbidden)
	stranger := newBrowser(t, e)
	withToken := creds()
	withToken.Set("csrf", b.cookies["__Host-csrf"].Value)
	expectPage(t, stranger.do(http.MethodPost, "/ui/login", withToken, nil), http.StatusForbidden)
	for _, o := range []string{"https://evil.test", "null"} {
		b.origin = o
		expectPage(t, b.post("/ui/login", creds()), http.StatusForbidden)
	}
	b.origin = e.Cfg.PublicURL
	form := creds()
	form.Set("csrf", b.cookies["__Host-csrf"].Value)
	expectPage(t, b.do(http.MethodPost, "/ui/login", form, http.Header{"Sec-Fetch-Site": {"cross-site"}}), http.StatusForbidden)
	if len(b.cookies) != 1 {
		t.Fatalf("a refused post set cookies: %v", b.cookies)
	}
	// The same post, done right, signs in.
	expectRedirect(t, b.post("/ui/login", creds()), "/ui/account")

	// Forms are accepted under /ui/ only: the API stays JSON-only.
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/v1/auth/login", strings.NewReader(creds().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("a form post to the API answered %d, want 415", resp.StatusCode)
	}
}

func TestReturnToIsOursOrAllowlistedOnly(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"OAUTH_REDIRECT_ALLOWLIST": "https://app.example.test/welcome"})
	email := apitest.Email("ui-rt")
	e.Register(email)
	for _, tc := range []struct{ returnTo, want string }{
		{"https://app.example.test/welcome?x=1", "https://app.example.test/welcome?x=1"},
		{"/ui/account", "http://auth.test/ui/account"},
		{"https://evil.test/", "/ui/account"},
		{"//evil.test/x", "/ui/account"},
		{"/\\evil.test", "/ui/account"},
		{"https://app.example.test/welcome/../admin", "/ui/account"},
		{"https://app.example.test.evil.test/welcome", "/ui/account"},
		{"javascript:alert(1)", "/ui/account"},
	} {
		b := newBrowser(t, e)
		b.get("/ui/login?return_to=" + url.QueryEscape(tc.returnTo))
		p := b.post("/ui/login", url.Values{"email": {email}, "password": {apitest.Password}, "return_to": {tc.returnTo}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != tc.want {
			t.Errorf("return_to %q: %d to %q, want %q", tc.returnTo, p.status, p.header.Get("Location"), tc.want)
		}
	}
	// An allowlisted return_to's origin is the only other one the CSP lets forms go to.
	csp := newBrowser(t, e).get("/ui/login?return_to=" + url.QueryEscape("https://app.example.test/welcome")).header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self' https://app.example.test;") {
		t.Fatalf("CSP %q", csp)
	}
	csp = newBrowser(t, e).get("/ui/login?return_to=" + url.QueryEscape("https://evil.test/")).header.Get("Content-Security-Policy")
	if strings.Contains(csp, "evil") {
		t.Fatalf("CSP %q", csp)
	}
}

func TestGatewaySendsBrowsersToSignInAndBack(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"PUBLIC_URL": "https://auth.example.test", "SESSION_COOKIE_DOMAIN": "example.test",
		"TRUSTED_PROXIES": "127.0.0.1/32"})
	email := apitest.Email("ui-gw")
	e.Register(email)
	fwd := func(accept, host, uri string) http.Header {
		return http.Header{"Accept": {accept}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {host},
			"X-Forwarded-Uri": {uri}, "X-Forwarded-Method": {"GET"}}
	}
	html := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

	r := verify(e, fwd(html, "app.example.test", "/private?tab=1"))
	want := "https://auth.example.test/ui/login?return_to=" + url.QueryEscape("https://app.example.test/private?tab=1")
	if r.Status != http.StatusFound || r.Header.Get("Location") != want {
		t.Fatalf("browser without a session: %d to %q, want 302 to %q", r.Status, r.Header.Get("Location"), want)
	}
	// API clients, hosts outside the cookie domain, and bearer callers keep the 401.
	apitest.Expect(t, verify(e, fwd("application/json", "app.example.test", "/private")), http.StatusUnauthorized, "")
	apitest.Expect(t, verify(e, fwd(html, "evil.test", "/")), http.StatusUnauthorized, "")
	apitest.Expect(t, verify(e, fwd(html, "example.test.evil.test", "/")), http.StatusUnauthorized, "")
	h := fwd(html, "app.example.test", "/")
	h.Set("Authorization", "Bearer nonsense")
	apitest.Expect(t, verify(e, h), http.StatusUnauthorized, "")

	// Sign in through the page the redirect named: the cookie spans the domain and the
	// browser is sent back.
	b := newBrowser(t, e)
	b.get("/ui/login?return_to=" + url.QueryEscape("https://app.example.test/private?tab=1"))
	p := b.post("/ui/login", url.Values{"email": {email}, "password": {apitest.Password}, "return_to": {"https://app.example.test/private?tab=1"}})
	expectRedirect(t, p, "https://app.example.test/private?tab=1")
	sc := p.set["__Secure-session"]
	if sc == nil || sc.Domain != "example.test" || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v", p.set)
	}
	h = fwd(html, "app.example.test", "/private")
	h.Set("Cookie", "__Secure-session="+sc.Value)
	r = verify(e, h)
	apitest.Expect(t, r, http.StatusOK, "")
	if r.Header.Get("X-Auth-Email") != email {
		t.Fatalf("verify headers %v", r.Header)
	}
	// Signed in, the login page sends the browser straight back.
	back := b.get("/ui/login?return_to=" + url.QueryEscape("https://app.example.test/x"))
	expectRedirect(t, back, "https://app.example.test/x")
}

// totpStep is the RFC 6238 code of a time step.
func totpStep(t *testing.T, secret string, step int64) string {
	t.Helper()
	c, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var secretRE = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)

func TestTOTPOnTheAccountPageAndTheSecondFactorStep(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("ui-mfa")
	e.Register(email)
	b := newBrowser(t, e)
	b.get("/ui/login")
	expectRedirect(t, b.post("/ui/login", url.Values{"email": {email}, "password": {apitest.Password}}), "/ui/account")

	on := b.post("/ui/account/totp", nil)
	expectPage(t, on, http.StatusOK, `class="qr" src="data:image/png;base64,`, `<label for="totp-code">Code</label>`, ">Confirm</button>")
	m := secretRE.FindStringSubmatch(on.body)
	if m == nil {
		t.Fatalf("no secret on the page:\n%s", on.body)
	}
	// A wrong first code: the page shows a new key to scan, and only it works.
	wrong := b.post("/ui/account/totp/confirm", url.Values{"code": {"000000"}})
	expectPage(t, wrong, http.StatusBadRequest, "That code is not right", `class="qr"`)
	m2 := secretRE.FindStringSubmatch(wrong.body)
	if m2 == nil || m2[1] == m[1] {
		t.Fatalf("no new key after a wrong code:\n%s", wrong.body)
	}
	secret := m2[1]
	// The server accepts one step either side; each step once.
	step := time.Now().Unix()/30 - 1
	done := b.post("/ui/account/totp/confirm", url.Values{"code": {totpStep(t, secret, step)}})
	expectPage(t, done, http.StatusOK, "They are shown only once.", `<ul class="codes"`)
	if n := strings.Count(done.body, "<li>"); n != 10 {
		t.Fatalf("%d recovery codes shown", n)
	}
	expectRedirect(t, b.post("/ui/logout", nil), "/ui/login?notice=signed_out")

	// Password, then the second factor: a wrong code keeps the step, the right one signs in.
	p := b.post("/ui/login", url.Values{"email": {email}, "password": {apitest.Password}})
	expectRedirect(t, p, "/ui/login/mfa")
	if c := p.set["__Host-mfa"]; c == nil || !c.HttpOnly || !c.Secure || c.MaxAge <= 0 || c.MaxAge > 600 {
		t.Fatalf("mfa cookie %+v", c)
	}
	if _, ok := p.set["__Host-session"]; ok {
		t.Fatal("a session before the second factor")
	}
	expectPage(t, b.get("/ui/login/mfa"), http.StatusOK, `<label for="code">Code</label>`, ">Verify</button>")
	expectPage(t, b.post("/ui/login/mfa", url.Values{"code": {"123456"}}), http.StatusUnauthorized, `id="code-error"`, "That code is not right. Try again.")
	ok := b.post("/ui/login/mfa", url.Values{"code": {totpStep(t, secret, step+1)}})
	expectRedirect(t, ok, "/ui/account")
	if ok.set["__Host-session"] == nil {
		t.Fatal("no session after the second factor")
	}
	if c := ok.set["__Host-mfa"]; c == nil || c.MaxAge >= 0 {
		t.Fatalf("the mfa cookie outlived the step: %+v", c)
	}
}

func TestEmailLinkPagesActOnlyOnPost(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("ui-link")
	b := newBrowser(t, e)
	b.get("/ui/register")
	// Errors next to their field; the password is never echoed back.
	weak := b.post("/ui/register", url.Values{"name": {"Ann"}, "email": {email}, "password": {"password"}})
	expectPage(t, weak, http.StatusUnprocessableEntity, `id="password-error"`, `value="`+email+`"`)
	if strings.Contains(weak.body, `value="password"`) {
		t.Fatal("the password was echoed into the page")
	}
	expectPage(t, b.post("/ui/register", url.Values{"name": {"Ann"}, "email": {"not-an-email"}, "password": {"plum kettle orbit 42"}}),
		http.StatusBadRequest, `id="email-error"`)
	// A new address and a taken one: the same "check your email".
	expectPage(t, b.post("/ui/register", url.Values{"name": {"Ann"}, "email": {email}, "password": {"plum kettle orbit 42"}}), http.StatusAccepted, "Check your email")
	expectPage(t, b.post("/ui/register", url.Values{"name": {"Ann"}, "email": {email}, "password": {"plum kettle orbit 42"}}), http.StatusAccepted, "Check your email")

	tok := e.OutboxToken(email, "auth.email.verification_requested")
	// A mail scanner that follows the link spends nothing: only the button's post does.
	for range 2 {
		expectPage(t, b.get("/ui/verify-email?token="+url.QueryEscape(tok)), http.StatusOK, ">Verify email</button>")
	}
	expectPage(t, b.post("/ui/verify-email", url.Values{"token": {tok}}), http.StatusOK, "Email verified")
	expectPage(t, b.post("/ui/verify-email", url.Values{"token": {tok}}), http.StatusBadRequest, "invalid, already used or expired")

	// Forgot: the same answer for an unknown address; the reset link's page resets.
	expectPage(t, b.post("/ui/forgot-password", url.Values{"email": {apitest.Email("nobody")}}), http.StatusAccepted, "Check your email")
	expectPage(t, b.post("/ui/forgot-password", url.Values{"email": {email}}), http.StatusAccepted, "Check your email")
	e.WaitEmailRequests()
	reset := e.OutboxToken(email, "auth.email.password_reset_requested")
	expectPage(t, b.get("/ui/reset-password?token="+url.QueryEscape(reset)), http.StatusOK, `<label for="password">Password</label>`, ">Reset password</button>")
	expectPage(t, b.post("/ui/reset-password", url.Values{"token": {reset}, "password": {"short"}}), http.StatusUnprocessableEntity, `id="password-error"`)
	expectPage(t, b.post("/ui/reset-password", url.Values{"token": {reset}, "password": {"quiet harbour lantern 7"}}), http.StatusOK, "Password changed")
	expectRedirect(t, b.post("/ui/login", url.Values{"email": {email}, "password": {"quiet harbour lantern 7"}}), "/ui/account")

	// Every page renders, also without its token.
	for path, status := range map[string]int{"/ui/forgot-password": 200, "/ui/register": 200, "/ui/reset-password": 400,
		"/ui/verify-email": 400, "/ui/magic-link": 400, "/ui/magic-link?token=x": 200, "/ui/login/mfa": 401, "/ui/static/ui.css": 200, "/ui/static/passkey.js": 200} {
		if p := newBrowser(t, e).get(path); p.status != status {
			t.Errorf("%s: %d, want %d: %s", path, p.status, status, p.body)
		}
	}
}

func TestMagicLinkSignsInOnItsPostOnly(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("ui-otp")
	e.Register(email)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/otp", map[string]string{"email": email}, ""), http.StatusAccepted, "")
	e.WaitEmailRequests()
	tok := e.OutboxToken(email, "auth.email.otp_requested")
	b := newBrowser(t, e)
	expectPage(t, b.get("/ui/magic-link?token="+url.QueryEscape(tok)), http.StatusOK, ">Sign in</button>")
	p := b.post("/ui/magic-link", url.Values{"token": {tok}})
	expectRedirect(t, p, "/ui/account")
	if p.set["__Host-session"] == nil {
		t.Fatal("no session cookie")
	}
	// Single use.
	again := newBrowser(t, e)
	again.get("/ui/magic-link?token=" + url.QueryEscape(tok))
	expectPage(t, again.post("/ui/magic-link", url.Values{"token": {tok}}), http.StatusUnauthorized, "invalid, already used or expired")
}

func TestEmailedCodeSignsIn(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("ui-code")
	e.Register(email)
	b := newBrowser(t, e)
	expectPage(t, b.get("/ui/login"), http.StatusOK, `href="/ui/login/link"`, "Email me a sign-in link")
	expectPage(t, b.get("/ui/login/link"), http.StatusOK, `<label for="email">Email</label>`, ">Send sign-in link</button>")
	// Known and unknown addresses: the same answer.
	unknown := b.post("/ui/login/link", url.Values{"email": {apitest.Email("nobody")}})
	known := b.post("/ui/login/link", url.Values{"email": {email}})
	expectPage(t, unknown, http.StatusAccepted, "Check your email", `<label for="code">Code</label>`)
	expectPage(t, known, http.StatusAccepted, "Check your email", `<label for="code">Code</label>`)
	e.WaitEmailRequests()
	code := e.OutboxCode(email, "auth.email.otp_requested")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	expectPage(t, b.post("/ui/login/code", url.Values{"email": {email}, "code": {wrong}}), http.StatusUnauthorized, `id="code-error"`, "That code is not right")
	p := b.post("/ui/login/code", url.Values{"email": {email}, "code": {code}})
	expectRedirect(t, p, "/ui/account")
	if p.set["__Host-session"] == nil {
		t.Fatal("no session cookie")
	}
}

// beginCeremony calls a passkey begin endpoint as passkey.js does: JSON, the CSRF header.
func (b *browserClient) beginCeremony(path string, body string) json.RawMessage {
	b.t.Helper()
	p := b.send(http.MethodPost, path, "application/json", strings.NewReader(body),
		http.Header{"X-Csrf-Token": {b.cookies["__Host-csrf"].Value}})
	if p.status != http.StatusOK {
		b.t.Fatalf("%s: %d %s", path, p.status, p.body)
	}
	return json.RawMessage(p.body)
}

func TestPasskeysOnThePages(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("ui-pk")
	e.Register(email)
	b := newBrowser(t, e)
	b.get("/ui/login")
	expectRedirect(t, b.post("/ui/login", url.Values{"email": {email}, "password": {apitest.Password}}), "/ui/account")
	a := softauthn.New()
	origin := softauthn.Options{Origin: e.Cfg.PublicURL}
	var cer struct {
		FlowID    string          `json:"flow_id"`
		PublicKey json.RawMessage `json:"publicKey"`
	}
	// A begin without the CSRF header is refused like a form without its token.
	noHeader := b.do(http.MethodPost, "/ui/account/passkeys/begin", url.Values{}, nil)
	expectPage(t, noHeader, http.StatusForbidden)

	if err := json.Unmarshal(b.beginCeremony("/ui/account/passkeys/begin", `{}`), &cer); err != nil {
		t.Fatal(err)
	}
	cred, _, err := a.Create(cer.PublicKey, origin)
	if err != nil {
		t.Fatal(err)
	}
	expectRedirect(t, b.post("/ui/account/passkeys", url.Values{"flow_id": {cer.FlowID}, "name": {"Laptop"}, "credential": {string(cred)}}),
		"/ui/account?notice=passkey_added")
	expectPage(t, b.get("/ui/account?notice=passkey_added"), http.StatusOK, "Passkey added.", "<strong>Laptop</strong>", ">Remove</button>")
	// The same flow twice: refused, shown next to the passkey button.
	expectPage(t, b.post("/ui/account/passkeys", url.Values{"flow_id": {cer.FlowID}, "name": {"Again"}, "credential": {string(cred)}}),
		http.StatusBadRequest, `id="passkey-error" role="alert">The passkey request expired`)

	// Turn TOTP on, then the second factor can be the passkey.
	on := b.post("/ui/account/totp", nil)
	secret := secretRE.FindStringSubmatch(on.body)[1]
	expectPage(t, b.post("/ui/account/totp/confirm", url.Values{"code": {totpStep(t, secret, time.Now().Unix()/30)}}), http.StatusOK, "They are shown only once.")
	expectRedirect(t, b.post("/ui/logout", nil), "/ui/login?notice=signed_out")
	expectRedirect(t, b.post("/ui/login", url.Values{"email": {email}, "password": {apitest.Password}}), "/ui/login/mfa")
	expectPage(t, b.get("/ui/login/mfa"), http.StatusOK, ">Use a passkey</button>")
	if err := json.Unmarshal(b.beginCeremony("/ui/login/mfa/passkey/begin", `{}`), &cer); err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(cer.PublicKey, origin)
	if err != nil {
		t.Fatal(err)
	}
	p := b.post("/ui/login/mfa/passkey", url.Values{"flow_id": {cer.FlowID}, "credential": {string(got)}})
	expectRedirect(t, p, "/ui/account")
	if p.set["__Host-session"] == nil {
		t.Fatal("no session after the passkey second factor")
	}

	// A passkey alone signs in from the login page, in another browser.
	other := newBrowser(t, e)
	other.get("/ui/login")
	if err := json.Unmarshal(other.beginCeremony("/ui/login/passkey/begin", `{}`), &cer); err != nil {
		t.Fatal(err)
	}
	if got, err = a.Get(cer.PublicKey, origin); err != nil {
		t.Fatal(err)
	}
	expectRedirect(t, other.post("/ui/login/passkey", url.Values{"flow_id": {cer.FlowID}, "credential": {string(got)}}), "/ui/account")
	// A forged assertion: the page says so, no session.
	other2 := newBrowser(t, e)
	other2.get("/ui/login")
	if err := json.Unmarshal(other2.beginCeremony("/ui/login/passkey/begin", `{}`), &cer); err != nil {
		t.Fatal(err)
	}
	bad := other2.post("/ui/login/passkey", url.Values{"flow_id": {cer.FlowID}, "credential": {`{"id":"AAAA","type":"public-key"}`}})
	if bad.status < 400 || bad.status >= 500 || bad.set["__Host-session"] != nil {
		t.Fatalf("a forged passkey answered %d %v", bad.status, bad.set)
	}

	// Remove it from the account page.
	acct := b.get("/ui/account")
	id := regexp.MustCompile(`/ui/account/passkeys/([0-9a-f-]{36})/delete`).FindStringSubmatch(acct.body)
	if id == nil {
		t.Fatalf("no remove form:\n%s", acct.body)
	}
	expectRedirect(t, b.post("/ui/account/passkeys/"+id[1]+"/delete", nil), "/ui/account?notice=passkey_removed")
	expectPage(t, b.get("/ui/account"), http.StatusOK, "No passkeys yet.")
}
