package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/softauthn"
	"github.com/talentforge/auth/services/auth/apidoc"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// The OpenAPI description (services/auth/openapi.yaml) against the real server: every
// request these tests send and every answer they get goes through libopenapi-validator,
// so the description cannot drift from the code. A request a test sends on purpose
// outside the description (no token, malformed JSON, a missing field) is marked with
// oaInvalid: the validator must refuse it, and its answer is still validated.

// oaInvalid marks a request as outside the description; the transport removes it.
const oaInvalid = "X-Openapi-Test-Invalid"

// oaTraffic validates the traffic of one Env and records which routes answered.
type oaTraffic struct {
	base   http.RoundTripper
	v      validator.Validator
	routes []oaRoute

	mu   sync.Mutex
	errs []string
	hits map[string][]int // "METHOD /route" -> statuses answered
}

type oaRoute struct {
	method, path string
	re           *regexp.Regexp
}

var oaParam = regexp.MustCompile(`:[A-Za-z_]+`)

func oaStart(t *testing.T, env map[string]string) (*apitest.Env, *oaTraffic) {
	t.Helper()
	doc, err := libopenapi.NewDocument(apidoc.YAML)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		t.Fatalf("openapi.yaml: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3.1 document:\n%s", oaFormat(verrs))
	}
	e := apitest.Start(t, env)
	tr := &oaTraffic{base: e.Client.Transport, v: v, hits: map[string][]int{}}
	if tr.base == nil {
		tr.base = http.DefaultTransport
	}
	for _, r := range e.App.Server.Echo.Routes() {
		if hostedUI(r.Path) {
			continue
		}
		re := regexp.MustCompile("^" + oaParam.ReplaceAllString(regexp.QuoteMeta(r.Path), `[^/]+`) + "$")
		tr.routes = append(tr.routes, oaRoute{r.Method, r.Path, re})
	}
	e.Client.Transport = tr
	t.Cleanup(func() {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if len(tr.errs) > 0 {
			t.Errorf("%d exchanges disagree with openapi.yaml:\n%s", len(tr.errs), strings.Join(tr.errs, "\n"))
		}
	})
	return e, tr
}

func (tr *oaTraffic) RoundTrip(req *http.Request) (*http.Response, error) {
	invalid := req.Header.Get(oaInvalid) != ""
	req = req.Clone(req.Context())
	req.Header.Del(oaInvalid)
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
	}
	withBody := func() *http.Request {
		r := req.Clone(req.Context())
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		return r
	}
	name := req.Method + " " + req.URL.Path
	ok, verrs := tr.v.ValidateHttpRequestSync(withBody())
	switch {
	case invalid && ok:
		tr.fail("%s: request marked invalid passed the description: %s", name, oaTrim(body))
	case !invalid && !ok:
		tr.fail("%s: request:\n%s", name, oaFormat(verrs))
	}

	res, err := tr.base.RoundTrip(withBody())
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	check := *res
	check.Body = io.NopCloser(bytes.NewReader(out))
	if ok, verrs := tr.v.ValidateHttpResponse(withBody(), &check); !ok {
		tr.fail("%s -> %d %s: answer:\n%s", name, res.StatusCode, oaTrim(out), oaFormat(verrs))
	}
	if res.Header.Get("X-Request-Id") == "" {
		tr.fail("%s -> %d: no X-Request-Id", name, res.StatusCode)
	}
	res.Body = io.NopCloser(bytes.NewReader(out))

	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, r := range tr.routes {
		if r.method == req.Method && r.re.MatchString(req.URL.Path) {
			key := r.method + " " + r.path
			tr.hits[key] = append(tr.hits[key], res.StatusCode)
		}
	}
	return res, nil
}

func (tr *oaTraffic) fail(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.errs = append(tr.errs, "  "+fmt.Sprintf(format, args...))
}

func oaFormat(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "    - %s: %s", e.Message, e.Reason)
		for _, s := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n        %s at %s (%s)", s.Reason, s.FieldPath, s.KeywordLocation)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

func oaTrim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// oaExpect fails unless the answer has the status and, when given, the code (v1 body
// or v2 problem).
func oaExpect(t *testing.T, r *apitest.Response, status int, code string) {
	t.Helper()
	var body struct {
		Code  string `json:"code"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &body)
	got := body.Error.Code + body.Code
	if r.Status != status || (code != "" && got != code) {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
}

func oaHeader(bearer string, kv ...string) http.Header {
	h := http.Header{}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// oaTOTP hands out codes of time steps never used before and valid now (±1 step).
type oaTOTP struct {
	secret string
	last   int64
}

func (c *oaTOTP) code(t *testing.T, step int64) string {
	t.Helper()
	code, err := hotp.GenerateCodeCustom(c.secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func (c *oaTOTP) next(t *testing.T) string {
	t.Helper()
	for {
		now := time.Now().Unix() / 30
		step := max(c.last+1, now-1)
		if step == now-1 && time.Now().Unix()%30 >= 28 {
			step = max(c.last+1, now)
		}
		if step <= now+1 {
			c.last = step
			return c.code(t, step)
		}
		time.Sleep(time.Until(time.Unix((step-1)*30, 0)) + 100*time.Millisecond)
	}
}

func (c *oaTOTP) wrong(t *testing.T) string {
	t.Helper()
	now := time.Now().Unix() / 30
	bad := map[string]bool{}
	for d := int64(-3); d <= 3; d++ {
		bad[c.code(t, now+d)] = true
	}
	for _, cand := range []string{"000000", "123456", "999999", "424242"} {
		if !bad[cand] {
			return cand
		}
	}
	t.Fatal("no wrong code")
	return ""
}

// oaClient is one API version seen by a client: v1 keeps the refresh token from the
// body, v2 from the cookie.
type oaClient struct {
	t   *testing.T
	e   *apitest.Env
	ver string // "/v1" or "/v2"
}

type oaPair struct {
	Access, Refresh string
	User            apitest.User
}

func (c oaClient) v2() bool { return c.ver == "/v2" }

// tokenHeader is what a token route needs: the CSRF header on v2, the cookie when set.
func (c oaClient) tokenHeader(bearer, cookie string) http.Header {
	h := oaHeader(bearer)
	if c.v2() {
		h.Set("X-Requested-With", "XMLHttpRequest")
		if cookie != "" {
			h.Set("Cookie", "tf_refresh="+cookie)
		}
	}
	return h
}

func (c oaClient) pair(r *apitest.Response) oaPair {
	c.t.Helper()
	oaExpect(c.t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(c.t, &p)
	out := oaPair{Access: p.AccessToken, Refresh: p.RefreshToken, User: p.User}
	if c.v2() {
		for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
			if ck.Name == "tf_refresh" {
				out.Refresh = ck.Value
			}
		}
		if p.RefreshToken != "" || out.Refresh == "" {
			c.t.Fatalf("v2 pair: refresh token in body %q, cookie %q", p.RefreshToken, out.Refresh)
		}
	}
	return out
}

func (c oaClient) register(email string) apitest.User {
	c.t.Helper()
	r := c.e.Do(http.MethodPost, c.ver+"/auth/register", map[string]string{"email": email, "password": apitest.Password, "name": "OA"}, "")
	oaExpect(c.t, r, http.StatusAccepted, "")
	tok := c.e.OutboxToken(email, "auth.email.verification_requested")
	r = c.e.Do(http.MethodPost, c.ver+"/auth/email/verify", map[string]string{"token": tok}, "")
	oaExpect(c.t, r, http.StatusOK, "")
	var u apitest.User
	r.JSON(c.t, &u)
	return u
}

func (c oaClient) loginRaw(email, password string) *apitest.Response {
	c.t.Helper()
	return c.e.Request(http.MethodPost, c.ver+"/auth/login", map[string]string{"email": email, "password": password}, c.tokenHeader("", ""))
}

func (c oaClient) login(email string) oaPair {
	c.t.Helper()
	return c.pair(c.loginRaw(email, apitest.Password))
}

func (c oaClient) refresh(rt string) *apitest.Response {
	c.t.Helper()
	if c.v2() {
		return c.e.Request(http.MethodPost, c.ver+"/auth/refresh", nil, c.tokenHeader("", rt))
	}
	return c.e.Request(http.MethodPost, c.ver+"/auth/refresh", map[string]string{"refresh_token": rt}, nil)
}

func (c oaClient) do(method, path string, body any, bearer string) *apitest.Response {
	c.t.Helper()
	return c.e.Do(method, c.ver+path, body, bearer)
}

// invalid sends a request that is outside the description on purpose.
func (c oaClient) invalid(method, path string, body any, h http.Header) *apitest.Response {
	c.t.Helper()
	if h == nil {
		h = http.Header{}
	}
	h.Set(oaInvalid, "1")
	return c.e.Request(method, c.ver+path, body, h)
}

// hostedUI reports whether path is one of the hosted UI's HTML pages (package ui): not
// API, not in the OpenAPI description, tested by ui's tests and the browser walk-through.
func hostedUI(path string) bool { return path == "/ui" || strings.HasPrefix(path, "/ui/") }

func TestOpenAPIServedCoversEveryRoute(t *testing.T) {
	t.Parallel()
	e, _ := oaStart(t, nil)
	r := e.Do(http.MethodGet, "/openapi.json", nil, "")
	oaExpect(t, r, http.StatusOK, "")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r.JSON(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var missing []string
	registered := map[string]bool{}
	for _, rt := range e.App.Server.Echo.Routes() {
		if hostedUI(rt.Path) {
			continue
		}
		path := oaParam.ReplaceAllStringFunc(rt.Path, func(s string) string { return "{" + s[1:] + "}" })
		registered[strings.ToLower(rt.Method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(rt.Method)]; !ok {
			missing = append(missing, rt.Method+" "+path)
		}
	}
	var extra []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" && m != "summary" && m != "description" && !registered[m+" "+path] {
				extra = append(extra, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("openapi.yaml and the server disagree:\n  registered, not described: %v\n  described, not registered: %v", missing, extra)
	}
}

func TestOpenAPIValidatesTraffic(t *testing.T) {
	t.Parallel()
	adminEmail := apitest.Email("oa-admin")
	e, tr := oaStart(t, map[string]string{"ADMIN_EMAILS": adminEmail, "REFRESH_REUSE_GRACE": "1ms", "SMS_PROVIDER": "twilio"})

	// Meta.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/.well-known/openid-configuration", "/openapi.json"} {
		oaExpect(t, e.Do(http.MethodGet, p, nil, ""), http.StatusOK, "")
	}

	for _, ver := range []string{"/v1", "/v2"} {
		c := oaClient{t: t, e: e, ver: ver}
		oaAccountFlows(c)
		oaMFAFlows(c)
		oaPasskeyFlows(c)
		oaOTPFlows(c)
		oaAdminFlows(c, adminEmail)
		oaWebhookFlows(c, adminEmail)
		oaFlagFlows(c, adminEmail)
	}

	// Every registered route answered at least once with a success.
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var unseen []string
	for _, r := range tr.routes {
		key := r.method + " " + r.path
		if !slices.ContainsFunc(tr.hits[key], func(s int) bool { return s < 300 }) {
			unseen = append(unseen, fmt.Sprintf("%s %v", key, tr.hits[key]))
		}
	}
	if len(unseen) > 0 {
		slices.Sort(unseen)
		t.Errorf("routes never answered with a success:\n  %s", strings.Join(unseen, "\n  "))
	}
}

func oaAccountFlows(c oaClient) {
	t, e := c.t, c.e
	t.Helper()

	// Register: bad email, weak password, malformed JSON, not JSON, too large, pending.
	oaExpect(t, c.do(http.MethodPost, "/auth/register", map[string]string{"email": "nope", "password": apitest.Password}, ""), http.StatusBadRequest, "invalid_email")
	oaExpect(t, c.do(http.MethodPost, "/auth/register", map[string]string{"email": apitest.Email("oa-weak"), "password": "short"}, ""), http.StatusUnprocessableEntity, "weak_password")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/register", "{", nil), http.StatusBadRequest, "invalid_json")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/register", "email=x", http.Header{"Content-Type": {"text/plain"}}), http.StatusUnsupportedMediaType, "unsupported_media_type")
	oaExpect(t, c.do(http.MethodPost, "/auth/register", map[string]string{"email": apitest.Email("oa-big"), "password": apitest.Password, "name": strings.Repeat("x", 70<<10)}, ""), http.StatusRequestEntityTooLarge, "payload_too_large")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/register", map[string]string{"email": apitest.Email("oa-nopw")}, nil), http.StatusUnprocessableEntity, "weak_password")

	email := apitest.Email("oa-user")
	c.register(email)
	oaExpect(t, c.do(http.MethodPost, "/auth/register", map[string]string{"email": email, "password": apitest.Password}, ""), http.StatusAccepted, "")
	oaExpect(t, c.do(http.MethodPost, "/auth/email/verify", map[string]string{"token": "nope"}, ""), http.StatusBadRequest, "invalid_token")
	oaExpect(t, c.do(http.MethodPost, "/auth/email/resend", map[string]string{"email": email}, ""), http.StatusAccepted, "")

	// Login: unverified, wrong password, missing field, success.
	unverified := apitest.Email("oa-unverified")
	oaExpect(t, c.do(http.MethodPost, "/auth/register", map[string]string{"email": unverified, "password": apitest.Password}, ""), http.StatusAccepted, "")
	oaExpect(t, c.loginRaw(unverified, apitest.Password), http.StatusForbidden, "email_not_verified")
	oaExpect(t, c.loginRaw(email, "wrong password entirely"), http.StatusUnauthorized, "invalid_credentials")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/login", map[string]string{"email": email}, c.tokenHeader("", "")), http.StatusBadRequest, "invalid_request")
	if c.v2() {
		oaExpect(t, c.do(http.MethodPost, "/auth/login", map[string]string{"email": email, "password": apitest.Password}, ""), http.StatusForbidden, "csrf_failed")
	}
	p := c.login(email)

	// Refresh: unknown, rotation, reuse of the rotated token after the grace.
	oaExpect(t, c.refresh("not-a-token"), http.StatusUnauthorized, "invalid_refresh_token")
	p2 := c.pair(c.refresh(p.Refresh))
	time.Sleep(20 * time.Millisecond)
	oaExpect(t, c.refresh(p.Refresh), http.StatusUnauthorized, "refresh_token_reused")
	if !c.v2() {
		oaExpect(t, c.invalid(http.MethodPost, "/auth/refresh", map[string]string{}, nil), http.StatusUnauthorized, "invalid_refresh_token")
	}
	_ = p2
	p = c.login(email)

	// Verify (ForwardAuth) and the profile.
	oaExpect(t, c.invalid(http.MethodGet, "/auth/verify", nil, nil), http.StatusUnauthorized, "unauthorized")
	oaExpect(t, c.do(http.MethodGet, "/auth/verify", nil, "not.a.jwt"), http.StatusUnauthorized, "unauthorized")
	r := c.do(http.MethodGet, "/auth/verify", nil, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	if r.Header.Get("X-Auth-User-Id") != p.User.ID {
		t.Fatalf("X-Auth-User-Id %q", r.Header.Get("X-Auth-User-Id"))
	}
	oaExpect(t, c.do(http.MethodGet, "/auth/verify?role=admin", nil, p.Access), http.StatusForbidden, "forbidden")
	oaExpect(t, c.do(http.MethodGet, "/auth/verify?permission=jobs:write", nil, p.Access), http.StatusForbidden, "forbidden")
	oaExpect(t, c.do(http.MethodGet, "/users/me", nil, p.Access), http.StatusOK, "")
	oaExpect(t, c.invalid(http.MethodGet, "/users/me", nil, nil), http.StatusUnauthorized, "unauthorized")
	oaExpect(t, c.do(http.MethodPatch, "/users/me", map[string]string{"name": "New Name"}, p.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodPatch, "/users/me", map[string]string{}, p.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodPatch, "/users/me", map[string]string{"name": "bad\x01name"}, p.Access), http.StatusBadRequest, "invalid_name")

	// Sessions: list, end another one, an unknown one.
	other := c.login(email)
	r = c.do(http.MethodGet, "/users/me/sessions", nil, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	var sessions struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	r.JSON(t, &sessions)
	var otherID string
	for _, s := range sessions.Sessions {
		if !s.Current {
			otherID = s.ID
		}
	}
	if otherID == "" {
		t.Fatalf("no other session in %s", r.Body)
	}
	oaExpect(t, c.do(http.MethodDelete, "/users/me/sessions/"+otherID, nil, p.Access), http.StatusNoContent, "")
	oaExpect(t, c.do(http.MethodDelete, "/users/me/sessions/00000000-0000-4000-8000-000000000000", nil, p.Access), http.StatusNotFound, "not_found")
	oaExpect(t, c.do(http.MethodGet, "/users/me", nil, other.Access), http.StatusUnauthorized, "")

	// Password change: wrong current, weak new, success.
	const newPassword = "another correct horse battery"
	oaExpect(t, c.do(http.MethodPost, "/users/me/password", map[string]string{"current_password": "wrong password here", "new_password": newPassword}, p.Access), http.StatusUnauthorized, "invalid_credentials")
	oaExpect(t, c.do(http.MethodPost, "/users/me/password", map[string]string{"current_password": apitest.Password, "new_password": "short"}, p.Access), http.StatusUnprocessableEntity, "weak_password")
	oaExpect(t, c.do(http.MethodPost, "/users/me/password", map[string]string{"current_password": apitest.Password, "new_password": newPassword}, p.Access), http.StatusNoContent, "")

	// Password reset: unknown token, weak password, success (back to apitest.Password).
	oaExpect(t, c.do(http.MethodPost, "/auth/password/forgot", map[string]string{"email": email}, ""), http.StatusAccepted, "")
	tok := e.OutboxToken(email, "auth.email.password_reset_requested")
	oaExpect(t, c.do(http.MethodPost, "/auth/password/reset", map[string]string{"token": "nope", "password": apitest.Password}, ""), http.StatusBadRequest, "invalid_token")
	oaExpect(t, c.do(http.MethodPost, "/auth/password/reset", map[string]string{"token": tok, "password": "short"}, ""), http.StatusUnprocessableEntity, "weak_password")
	oaExpect(t, c.do(http.MethodPost, "/auth/password/reset", map[string]string{"token": tok, "password": apitest.Password}, ""), http.StatusNoContent, "")

	// Logout, logout-all.
	p = c.login(email)
	q := c.login(email)
	if c.v2() {
		oaExpect(t, c.e.Request(http.MethodPost, c.ver+"/auth/logout", nil, oaHeader(p.Access)), http.StatusForbidden, "csrf_failed")
		oaExpect(t, c.e.Request(http.MethodPost, c.ver+"/auth/logout", nil, c.tokenHeader(p.Access, p.Refresh)), http.StatusNoContent, "")
	} else {
		oaExpect(t, c.do(http.MethodPost, "/auth/logout", map[string]string{"refresh_token": p.Refresh}, p.Access), http.StatusNoContent, "")
	}
	oaExpect(t, c.invalid(http.MethodPost, "/auth/logout", nil, c.tokenHeader("", "")), http.StatusUnauthorized, "unauthorized")
	oaExpect(t, c.do(http.MethodPost, "/auth/logout-all", nil, q.Access), http.StatusNoContent, "")
	oaExpect(t, c.do(http.MethodPost, "/auth/logout-all", nil, q.Access), http.StatusUnauthorized, "unauthorized")
}

func oaMFAFlows(c oaClient) {
	t := c.t
	t.Helper()
	email := apitest.Email("oa-mfa")
	c.register(email)
	p := c.login(email)

	oaExpect(t, c.do(http.MethodDelete, "/users/me/mfa/totp", map[string]string{"code": "123456"}, p.Access), http.StatusBadRequest, "mfa_not_enabled")
	r := c.do(http.MethodPost, "/users/me/mfa/totp", nil, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	var en struct {
		Secret string `json:"secret"`
	}
	r.JSON(t, &en)
	clock := &oaTOTP{secret: en.Secret}
	oaExpect(t, c.do(http.MethodPost, "/users/me/mfa/totp/confirm", map[string]string{"code": clock.wrong(t)}, p.Access), http.StatusBadRequest, "invalid_mfa_code")
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/mfa/totp/confirm", map[string]string{}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_request")
	r = c.do(http.MethodPost, "/users/me/mfa/totp/confirm", map[string]string{"code": clock.next(t)}, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.JSON(t, &rc)
	oaExpect(t, c.do(http.MethodPost, "/users/me/mfa/totp", map[string]string{}, p.Access), http.StatusConflict, "mfa_already_enabled")

	// Login with MFA: the challenge, a wrong code, a recovery code.
	r = c.loginRaw(email, apitest.Password)
	oaExpect(t, r, http.StatusOK, "")
	var ch struct {
		MFAToken string `json:"mfa_token"`
	}
	r.JSON(t, &ch)
	if ch.MFAToken == "" {
		t.Fatalf("no MFA challenge: %s", r.Body)
	}
	mfa := func(code string) *apitest.Response {
		return c.e.Request(http.MethodPost, c.ver+"/auth/login/mfa", map[string]string{"mfa_token": ch.MFAToken, "code": code}, c.tokenHeader("", ""))
	}
	oaExpect(t, mfa(clock.wrong(t)), http.StatusUnauthorized, "invalid_mfa_code")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/login/mfa", map[string]string{"code": "123456"}, c.tokenHeader("", "")), http.StatusBadRequest, "invalid_request")
	p = c.pair(mfa(rc.RecoveryCodes[0]))

	// Turn it off: a wrong code, then a right one.
	oaExpect(t, c.do(http.MethodDelete, "/users/me/mfa/totp", map[string]string{"code": clock.wrong(t)}, p.Access), http.StatusBadRequest, "invalid_mfa_code")
	oaExpect(t, c.do(http.MethodDelete, "/users/me/mfa/totp", map[string]string{"code": clock.next(t)}, p.Access), http.StatusNoContent, "")
}

// oaPasskeyFlows drives every passkey route: registration and its refusals, the list,
// renaming, sign-in with a passkey alone, the passkey second factor of an account with
// TOTP on (both forms of login/mfa), and removal. The authenticator answers for
// pkOrigin, the tests' PUBLIC_URL.
func oaPasskeyFlows(c oaClient) {
	t := c.t
	t.Helper()
	email := apitest.Email("oa-passkey")
	c.register(email)
	p := c.login(email)
	a := softauthn.New()
	opts := softauthn.Options{Origin: pkOrigin}

	ceremony := func(r *apitest.Response) pkCeremony {
		t.Helper()
		oaExpect(t, r, http.StatusOK, "")
		var cer pkCeremony
		r.JSON(t, &cer)
		if cer.FlowID == "" || len(cer.PublicKey) == 0 {
			t.Fatalf("ceremony %s", r.Body)
		}
		return cer
	}
	finishLogin := func(body any) *apitest.Response {
		t.Helper()
		return c.e.Request(http.MethodPost, c.ver+"/auth/passkey/finish", body, c.tokenHeader("", ""))
	}
	loginMFA := func(body any) *apitest.Response {
		t.Helper()
		return c.e.Request(http.MethodPost, c.ver+"/auth/login/mfa", body, c.tokenHeader("", ""))
	}
	challenge := func() (string, []string) {
		t.Helper()
		r := c.loginRaw(email, apitest.Password)
		oaExpect(t, r, http.StatusOK, "")
		var ch struct {
			MFAToken string   `json:"mfa_token"`
			Factors  []string `json:"factors"`
		}
		r.JSON(t, &ch)
		if ch.MFAToken == "" {
			t.Fatalf("no MFA challenge: %s", r.Body)
		}
		return ch.MFAToken, ch.Factors
	}

	// TOTP on first: without a passkey the passkey second factor is refused.
	r := c.do(http.MethodPost, "/users/me/mfa/totp", map[string]string{}, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	var en struct {
		Secret string `json:"secret"`
	}
	r.JSON(t, &en)
	clock := &oaTOTP{secret: en.Secret}
	oaExpect(t, c.do(http.MethodPost, "/users/me/mfa/totp/confirm", map[string]string{"code": clock.next(t)}, p.Access), http.StatusOK, "")
	tok, factors := challenge()
	if !slices.Equal(factors, []string{"totp", "recovery_code"}) {
		t.Fatalf("factors without a passkey: %v", factors)
	}
	oaExpect(t, c.do(http.MethodPost, "/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok}, ""), http.StatusBadRequest, "no_passkeys")

	// Registration: no token, a refused answer (which uses the flow up), names, a
	// missing credential, success, the used flow.
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/passkeys/begin", map[string]any{}, nil), http.StatusUnauthorized, "unauthorized")
	cer := ceremony(c.do(http.MethodPost, "/users/me/passkeys/begin", map[string]any{}, p.Access))
	evil, _, err := softauthn.New().Create(cer.PublicKey, softauthn.Options{Origin: "https://evil.example"})
	if err != nil {
		t.Fatal(err)
	}
	oaExpect(t, c.do(http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": cer.FlowID, "credential": evil}, p.Access), http.StatusBadRequest, "invalid_passkey")
	cer = ceremony(c.do(http.MethodPost, "/users/me/passkeys/begin", nil, p.Access))
	cred, _, err := a.Create(cer.PublicKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	oaExpect(t, c.do(http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": cer.FlowID, "name": "bad\x01name", "credential": cred}, p.Access), http.StatusBadRequest, "invalid_name")
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": cer.FlowID, "name": strings.Repeat("n", 65), "credential": cred}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_name")
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": cer.FlowID}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": cer.FlowID, "credential": nil}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_request")
	r = c.do(http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": cer.FlowID, "name": "Laptop", "credential": cred}, p.Access)
	oaExpect(t, r, http.StatusCreated, "")
	var added pkView
	r.JSON(t, &added)
	if added.Name != "Laptop" || added.LastUsedAt != nil {
		t.Fatalf("finish answered %s", r.Body)
	}
	oaExpect(t, c.do(http.MethodPost, "/users/me/passkeys/finish", map[string]any{"flow_id": cer.FlowID, "credential": cred}, p.Access), http.StatusBadRequest, "invalid_flow")

	// The list, renaming.
	oaExpect(t, c.invalid(http.MethodGet, "/users/me/passkeys", nil, nil), http.StatusUnauthorized, "unauthorized")
	r = c.do(http.MethodGet, "/users/me/passkeys", nil, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	var list struct {
		Passkeys []pkView `json:"passkeys"`
	}
	r.JSON(t, &list)
	if len(list.Passkeys) != 1 || list.Passkeys[0].ID != added.ID {
		t.Fatalf("list %s", r.Body)
	}
	oaExpect(t, c.do(http.MethodPatch, "/users/me/passkeys/"+added.ID, map[string]string{"name": "Work laptop"}, p.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodPatch, "/users/me/passkeys/"+added.ID, map[string]string{"name": "bad\x01name"}, p.Access), http.StatusBadRequest, "invalid_name")
	oaExpect(t, c.invalid(http.MethodPatch, "/users/me/passkeys/"+added.ID, map[string]string{"name": ""}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_name")
	oaExpect(t, c.invalid(http.MethodPatch, "/users/me/passkeys/"+added.ID, map[string]string{}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_name")
	oaExpect(t, c.do(http.MethodPatch, "/users/me/passkeys/00000000-0000-4000-8000-000000000000", map[string]string{"name": "Other"}, p.Access), http.StatusNotFound, "not_found")
	oaExpect(t, c.do(http.MethodPatch, "/users/me/passkeys/not-a-uuid", map[string]string{"name": "Other"}, p.Access), http.StatusNotFound, "not_found")

	// Sign-in with the passkey alone: no TOTP asked for, the flow finishes once, a
	// refused answer, missing fields, and on v2 the CSRF guard.
	cer = ceremony(c.do(http.MethodPost, "/auth/passkey/begin", map[string]any{}, ""))
	cred, err = a.Get(cer.PublicKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"flow_id": cer.FlowID, "credential": cred}
	if c.v2() {
		oaExpect(t, c.do(http.MethodPost, "/auth/passkey/finish", body, ""), http.StatusForbidden, "csrf_failed")
	}
	alone := c.pair(finishLogin(body))
	if amr := mfaAMR(t, alone.Access); !slices.Equal(amr, []string{"webauthn"}) {
		t.Fatalf("passkey sign-in amr %v", amr)
	}
	oaExpect(t, finishLogin(body), http.StatusBadRequest, "invalid_flow")
	r = c.do(http.MethodGet, "/users/me/passkeys", nil, alone.Access)
	oaExpect(t, r, http.StatusOK, "")
	r.JSON(t, &list)
	if len(list.Passkeys) != 1 || list.Passkeys[0].LastUsedAt == nil {
		t.Fatalf("list after sign-in %s", r.Body)
	}
	cer = ceremony(c.do(http.MethodPost, "/auth/passkey/begin", nil, ""))
	noUV, err := a.Get(cer.PublicKey, softauthn.Options{Origin: pkOrigin, NoUV: true})
	if err != nil {
		t.Fatal(err)
	}
	oaExpect(t, finishLogin(map[string]any{"flow_id": cer.FlowID, "credential": noUV}), http.StatusUnauthorized, "invalid_passkey")
	oaExpect(t, finishLogin(map[string]any{"flow_id": "unknown-flow", "credential": noUV}), http.StatusBadRequest, "invalid_flow")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/passkey/finish", map[string]any{"flow_id": cer.FlowID}, c.tokenHeader("", "")), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/passkey/finish", map[string]any{"credential": noUV}, c.tokenHeader("", "")), http.StatusBadRequest, "invalid_request")

	// The passkey second factor: the factors, a bad mfa_token, a flow of another
	// purpose, a refused answer, both forms at once or half of one, then success.
	tok, factors = challenge()
	if !slices.Equal(factors, []string{"totp", "recovery_code", "webauthn"}) {
		t.Fatalf("factors with a passkey: %v", factors)
	}
	oaExpect(t, c.do(http.MethodPost, "/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": "not-a-token"}, ""), http.StatusUnauthorized, "invalid_mfa_code")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/login/mfa/passkey/begin", map[string]string{}, nil), http.StatusBadRequest, "invalid_request")
	login := ceremony(c.do(http.MethodPost, "/auth/passkey/begin", map[string]any{}, ""))
	other, err := a.Get(login.PublicKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	oaExpect(t, loginMFA(map[string]any{"mfa_token": tok, "flow_id": login.FlowID, "credential": other}), http.StatusBadRequest, "invalid_flow")
	cer = ceremony(c.do(http.MethodPost, "/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok}, ""))
	var allow struct {
		AllowCredentials []json.RawMessage `json:"allowCredentials"`
	}
	if err := json.Unmarshal(cer.PublicKey, &allow); err != nil || len(allow.AllowCredentials) != 1 {
		t.Fatalf("second-factor options %s", cer.PublicKey)
	}
	noUV, err = a.Get(cer.PublicKey, softauthn.Options{Origin: pkOrigin, NoUV: true})
	if err != nil {
		t.Fatal(err)
	}
	oaExpect(t, loginMFA(map[string]any{"mfa_token": tok, "flow_id": cer.FlowID, "credential": noUV}), http.StatusUnauthorized, "invalid_passkey")
	cer = ceremony(c.do(http.MethodPost, "/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok}, ""))
	cred, err = a.Get(cer.PublicKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	oaExpect(t, c.invalid(http.MethodPost, "/auth/login/mfa", map[string]any{"mfa_token": tok, "code": "123456", "flow_id": cer.FlowID, "credential": cred}, c.tokenHeader("", "")), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/login/mfa", map[string]any{"mfa_token": tok, "flow_id": cer.FlowID}, c.tokenHeader("", "")), http.StatusBadRequest, "invalid_request")
	second := c.pair(loginMFA(map[string]any{"mfa_token": tok, "flow_id": cer.FlowID, "credential": cred}))
	if amr := mfaAMR(t, second.Access); !slices.Equal(amr, []string{"pwd", "webauthn"}) {
		t.Fatalf("second-factor amr %v", amr)
	}
	oaExpect(t, c.do(http.MethodPost, "/auth/login/mfa/passkey/begin", map[string]string{"mfa_token": tok}, ""), http.StatusUnauthorized, "invalid_mfa_code")

	// Removal: unknown ids, no token, success (the passkey's session ends with it), gone.
	oaExpect(t, c.do(http.MethodDelete, "/users/me/passkeys/00000000-0000-4000-8000-000000000000", nil, p.Access), http.StatusNotFound, "not_found")
	oaExpect(t, c.do(http.MethodDelete, "/users/me/passkeys/not-a-uuid", map[string]string{}, p.Access), http.StatusNotFound, "not_found")
	oaExpect(t, c.invalid(http.MethodDelete, "/users/me/passkeys/"+added.ID, nil, nil), http.StatusUnauthorized, "unauthorized")
	oaExpect(t, c.do(http.MethodDelete, "/users/me/passkeys/"+added.ID, map[string]string{"current_password": apitest.Password}, p.Access), http.StatusNoContent, "")
	oaExpect(t, c.do(http.MethodGet, "/users/me", nil, alone.Access), http.StatusUnauthorized, "unauthorized")
	oaExpect(t, c.do(http.MethodDelete, "/users/me/passkeys/"+added.ID, nil, p.Access), http.StatusNotFound, "not_found")
	cer = ceremony(c.do(http.MethodPost, "/auth/passkey/begin", map[string]any{}, ""))
	gone, err := a.Get(cer.PublicKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	oaExpect(t, finishLogin(map[string]any{"flow_id": cer.FlowID, "credential": gone}), http.StatusUnauthorized, "invalid_passkey")
}

// oaOTPFlows drives every one-time code route: an emailed code and link, SMS sign-in,
// the phone number proven by its SMS code, their refusals, and the MFA challenge a code
// sign-in answers for an account with TOTP on. The codes are read from the outbox;
// numbers are random, since their SMS budgets live in the shared Redis.
func oaOTPFlows(c oaClient) {
	t, e := c.t, c.e
	t.Helper()
	email := apitest.Email("oa-otp")
	c.register(email)
	verify := func(body map[string]string) *apitest.Response {
		t.Helper()
		return e.Request(http.MethodPost, c.ver+"/auth/otp/verify", body, c.tokenHeader("", ""))
	}
	ask := func(body map[string]string) {
		t.Helper()
		oaExpect(t, c.do(http.MethodPost, "/auth/otp", body, ""), http.StatusAccepted, "")
	}
	expectAMR := func(p oaPair, want ...string) {
		t.Helper()
		if amr := mfaAMR(t, p.Access); !slices.Equal(amr, want) {
			t.Fatalf("amr %v, want %v", amr, want)
		}
	}

	// An emailed code: a wrong one, on v2 the CSRF guard, the right one once.
	ask(map[string]string{"email": email})
	code := e.OutboxCode(email, events.SubjectOTPRequested)
	oaExpect(t, verify(map[string]string{"email": email, "code": wrongCode(code)}), http.StatusUnauthorized, "invalid_code")
	if c.v2() {
		oaExpect(t, c.do(http.MethodPost, "/auth/otp/verify", map[string]string{"email": email, "code": code}, ""), http.StatusForbidden, "csrf_failed")
	}
	p := c.pair(verify(map[string]string{"email": email, "code": code}))
	expectAMR(p, "otp")
	oaExpect(t, verify(map[string]string{"email": email, "code": code}), http.StatusUnauthorized, "invalid_code")

	// The emailed link, once.
	ask(map[string]string{"email": email})
	link := e.OutboxToken(email, events.SubjectOTPRequested)
	expectAMR(c.pair(verify(map[string]string{"token": link})), "otp")
	oaExpect(t, verify(map[string]string{"token": link}), http.StatusUnauthorized, "invalid_code")

	// Unknown addresses: the same 202, the same 401. Malformed requests: 400.
	ask(map[string]string{"email": apitest.Email("oa-otp-unknown")})
	oaExpect(t, verify(map[string]string{"email": apitest.Email("oa-otp-unknown"), "code": code}), http.StatusUnauthorized, "invalid_code")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/otp", map[string]string{}, nil), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.invalid(http.MethodPost, "/auth/otp", map[string]string{"email": email, "phone": randomPhone(t)}, nil), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.do(http.MethodPost, "/auth/otp", map[string]string{"phone": "hello"}, ""), http.StatusBadRequest, "invalid_phone")
	for _, body := range []map[string]string{{}, {"email": email}, {"code": code}, {"email": email, "code": code, "token": link},
		{"token": link, "code": code}, {"email": email, "phone": randomPhone(t), "code": code}} {
		oaExpect(t, c.invalid(http.MethodPost, "/auth/otp/verify", body, c.tokenHeader("", "")), http.StatusBadRequest, "invalid_request")
	}

	// The phone: no token, malformed requests, a bad number, a wrong current password,
	// a wrong code, then the right one.
	p = c.login(email)
	number := randomPhone(t)
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/phone", map[string]string{"phone": number}, nil), http.StatusUnauthorized, "unauthorized")
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/phone", map[string]string{}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone", map[string]string{"phone": "hello"}, p.Access), http.StatusBadRequest, "invalid_phone")
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone", map[string]string{"phone": number, "current_password": "wrong password here"}, p.Access),
		http.StatusUnauthorized, "invalid_credentials")
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone/verify", map[string]string{"code": "123456"}, p.Access), http.StatusBadRequest, "invalid_code")
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone", map[string]string{"phone": number}, p.Access), http.StatusAccepted, "")
	_, code, ok := e.OutboxSMS(number)
	if !ok {
		t.Fatalf("no SMS to %s", number)
	}
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/phone/verify", map[string]string{}, oaHeader(p.Access)), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.invalid(http.MethodPost, "/users/me/phone/verify", map[string]string{"code": code}, nil), http.StatusUnauthorized, "unauthorized")
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone/verify", map[string]string{"code": wrongCode(code)}, p.Access), http.StatusBadRequest, "invalid_code")
	r := c.do(http.MethodPost, "/users/me/phone/verify", map[string]string{"code": code}, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	var u apitest.User
	r.JSON(t, &u)
	if u.Phone == nil || *u.Phone != number || !u.PhoneVerified {
		t.Fatalf("after phone/verify: %s", r.Body)
	}
	oaExpect(t, c.do(http.MethodGet, "/users/me", nil, p.Access), http.StatusOK, "")

	// SMS sign-in: a wrong code, the right one once; an unknown number gets the same 202.
	ask(map[string]string{"phone": number})
	_, code, ok = e.OutboxSMS(number)
	if !ok {
		t.Fatalf("no sign-in SMS to %s", number)
	}
	oaExpect(t, verify(map[string]string{"phone": number, "code": wrongCode(code)}), http.StatusUnauthorized, "invalid_code")
	sms := c.pair(verify(map[string]string{"phone": number, "code": code}))
	expectAMR(sms, "sms")
	if sms.User.Phone == nil || *sms.User.Phone != number {
		t.Fatalf("SMS sign-in user %+v", sms.User)
	}
	oaExpect(t, verify(map[string]string{"phone": number, "code": code}), http.StatusUnauthorized, "invalid_code")
	ask(map[string]string{"phone": randomPhone(t)})

	// Another account's number: the SMS goes, its code is refused with 409.
	otherEmail := apitest.Email("oa-otp-other")
	c.register(otherEmail)
	other := c.login(otherEmail)
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone", map[string]string{"phone": number, "current_password": apitest.Password}, other.Access),
		http.StatusAccepted, "")
	_, code, _ = e.OutboxSMS(number)
	oaExpect(t, c.do(http.MethodPost, "/users/me/phone/verify", map[string]string{"code": code}, other.Access), http.StatusConflict, "phone_taken")

	// With TOTP on, a code sign-in answers the MFA challenge (no tokens, no cookie),
	// finished at login/mfa.
	r = c.do(http.MethodPost, "/users/me/mfa/totp", nil, p.Access)
	oaExpect(t, r, http.StatusOK, "")
	var en struct {
		Secret string `json:"secret"`
	}
	r.JSON(t, &en)
	clock := &oaTOTP{secret: en.Secret}
	oaExpect(t, c.do(http.MethodPost, "/users/me/mfa/totp/confirm", map[string]string{"code": clock.next(t)}, p.Access), http.StatusOK, "")
	ask(map[string]string{"email": email})
	r = verify(map[string]string{"email": email, "code": e.OutboxCode(email, events.SubjectOTPRequested)})
	oaExpect(t, r, http.StatusOK, "")
	var ch struct {
		MFAToken    string `json:"mfa_token"`
		AccessToken string `json:"access_token"`
	}
	r.JSON(t, &ch)
	if ch.MFAToken == "" || ch.AccessToken != "" || r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("code sign-in with MFA on answered %s (Set-Cookie %q)", r.Body, r.Header.Get("Set-Cookie"))
	}
	r = e.Request(http.MethodPost, c.ver+"/auth/login/mfa", map[string]string{"mfa_token": ch.MFAToken, "code": clock.next(t)}, c.tokenHeader("", ""))
	expectAMR(c.pair(r), "otp", "mfa")
}

func oaAdminFlows(c oaClient, adminEmail string) {
	t, e := c.t, c.e
	t.Helper()
	var a oaPair
	if c.v2() {
		a = c.login(adminEmail)
	} else {
		c.register(adminEmail)
		a = c.login(adminEmail)
	}
	userEmail := apitest.Email("oa-target")
	u := c.register(userEmail)
	up := c.login(userEmail)

	// Users: pages, filters, bad cursor, bad limit, forbidden.
	r := c.do(http.MethodGet, "/admin/users?limit=1", nil, a.Access)
	oaExpect(t, r, http.StatusOK, "")
	var page struct {
		NextCursor *string `json:"next_cursor"`
	}
	r.JSON(t, &page)
	if page.NextCursor == nil {
		t.Fatalf("no next_cursor: %s", r.Body)
	}
	oaExpect(t, c.do(http.MethodGet, "/admin/users?limit=1&cursor="+*page.NextCursor, nil, a.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodGet, "/admin/users?email="+userEmail, nil, a.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodGet, "/admin/users?cursor=garbage", nil, a.Access), http.StatusBadRequest, "invalid_cursor")
	oaExpect(t, c.invalid(http.MethodGet, "/admin/users?limit=0", nil, oaHeader(a.Access)), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.do(http.MethodGet, "/admin/users", nil, up.Access), http.StatusForbidden, "forbidden")
	oaExpect(t, c.invalid(http.MethodGet, "/admin/users", nil, nil), http.StatusUnauthorized, "unauthorized")

	oaExpect(t, c.do(http.MethodGet, "/admin/users/"+u.ID, nil, a.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodGet, "/admin/users/00000000-0000-4000-8000-000000000000", nil, a.Access), http.StatusNotFound, "not_found")

	// Roles of a user.
	oaExpect(t, c.do(http.MethodPut, "/admin/users/"+u.ID+"/roles", map[string][]string{"roles": {"user"}}, a.Access), http.StatusOK, "")
	oaExpect(t, c.do(http.MethodPut, "/admin/users/"+u.ID+"/roles", map[string][]string{"roles": {"no-such-role"}}, a.Access), http.StatusBadRequest, "unknown_role")
	oaExpect(t, c.invalid(http.MethodPut, "/admin/users/"+u.ID+"/roles", map[string]string{}, oaHeader(a.Access)), http.StatusBadRequest, "invalid_request")
	oaExpect(t, c.do(http.MethodPut, "/admin/users/00000000-0000-4000-8000-000000000000/roles", map[string][]string{"roles": {"user"}}, a.Access), http.StatusNotFound, "not_found")

	// Disable, enable.
	oaExpect(t, c.do(http.MethodPost, "/admin/users/"+u.ID+"/disable", nil, a.Access), http.StatusNoContent, "")
	oaExpect(t, c.loginRaw(userEmail, apitest.Password), http.StatusForbidden, "account_disabled")
	oaExpect(t, c.do(http.MethodPost, "/admin/users/"+u.ID+"/enable", nil, a.Access), http.StatusNoContent, "")
	up = c.login(userEmail) // disabling ended every session
	oaExpect(t, c.do(http.MethodPost, "/admin/users/00000000-0000-4000-8000-000000000000/disable", nil, a.Access), http.StatusNotFound, "not_found")
	oaExpect(t, c.do(http.MethodPost, "/admin/users/00000000-0000-4000-8000-000000000000/enable", nil, a.Access), http.StatusNotFound, "not_found")

	// Roles.
	oaExpect(t, c.do(http.MethodGet, "/admin/roles", nil, a.Access), http.StatusOK, "")
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	role := "oa_" + hex.EncodeToString(rb[:])
	oaExpect(t, c.do(http.MethodPost, "/admin/roles", map[string]any{"name": role, "permissions": []string{"jobs:write"}}, a.Access), http.StatusCreated, "")
	oaExpect(t, c.do(http.MethodPost, "/admin/roles", map[string]any{"name": role}, a.Access), http.StatusConflict, "role_exists")
	oaExpect(t, c.invalid(http.MethodPost, "/admin/roles", map[string]any{"name": "Bad Role"}, oaHeader(a.Access)), http.StatusBadRequest, "invalid_role")
	oaExpect(t, c.do(http.MethodPost, "/admin/roles", map[string]any{"name": role + "x", "permissions": []string{"Not A Permission"}}, a.Access), http.StatusBadRequest, "invalid_permission")
	r = c.do(http.MethodGet, "/auth/verify?permission=jobs:write", nil, up.Access)
	oaExpect(t, r, http.StatusForbidden, "forbidden")
	oaExpect(t, c.do(http.MethodDelete, "/admin/roles/"+role, nil, a.Access), http.StatusNoContent, "")
	oaExpect(t, c.do(http.MethodDelete, "/admin/roles/admin", nil, a.Access), http.StatusConflict, "role_protected")
	oaExpect(t, c.do(http.MethodDelete, "/admin/roles/"+role, nil, up.Access), http.StatusForbidden, "forbidden")
	_ = e
}

// TestOpenAPIPhoneOff validates 404 feature_disabled of the phone routes and SMS codes,
// the answers without an SMS provider (SMS_PROVIDER=none).
func TestOpenAPIPhoneOff(t *testing.T) {
	t.Parallel()
	e, _ := oaStart(t, nil)
	for _, ver := range []string{"/v1", "/v2"} {
		c := oaClient{t: t, e: e, ver: ver}
		email := apitest.Email("oa-nophone")
		c.register(email)
		p := c.login(email)
		number := randomPhone(t)
		oaExpect(t, c.do(http.MethodPost, "/users/me/phone", map[string]string{"phone": number}, p.Access), http.StatusNotFound, "feature_disabled")
		oaExpect(t, c.do(http.MethodPost, "/users/me/phone/verify", map[string]string{"code": "123456"}, p.Access), http.StatusNotFound, "feature_disabled")
		oaExpect(t, c.do(http.MethodPost, "/auth/otp", map[string]string{"phone": number}, ""), http.StatusNotFound, "feature_disabled")
		oaExpect(t, e.Request(http.MethodPost, ver+"/auth/otp/verify", map[string]string{"phone": number, "code": "123456"}, c.tokenHeader("", "")),
			http.StatusNotFound, "feature_disabled")
	}
}

// TestOpenAPIRateLimited validates the 429 answers (Retry-After, RateLimit-*) of v1 and v2.
func TestOpenAPIRateLimited(t *testing.T) {
	t.Parallel()
	e, _ := oaStart(t, map[string]string{"RATE_LIMIT_ENABLED": "true", "TRUSTED_PROXIES": "127.0.0.1/32", "RATE_LIMIT_LOGIN": "1/m"})
	for _, ver := range []string{"/v1", "/v2"} {
		ip := oaIP()
		h := http.Header{"X-Forwarded-For": {ip}, "X-Requested-With": {"XMLHttpRequest"}}
		body := map[string]string{"email": apitest.Email("oa-rl"), "password": "wrong password here"}
		oaExpect(t, e.Request(http.MethodPost, ver+"/auth/login", body, h), http.StatusUnauthorized, "invalid_credentials")
		r := e.Request(http.MethodPost, ver+"/auth/login", body, h)
		oaExpect(t, r, http.StatusTooManyRequests, "too_many_attempts")
		if r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Limit") != "1" {
			t.Fatalf("429 headers %v", r.Header)
		}
	}
}

// oaIP is a random client address of 2001:db8::/32 that no other test uses.
func oaIP() string {
	var b [16]byte
	_, _ = rand.Read(b[4:])
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	return netip.AddrFrom16(b).String()
}

// TestOpenAPIRegisterWithoutVerification validates 201 and 409 email_taken of register,
// the answers when EMAIL_VERIFICATION_REQUIRED is false.
func TestOpenAPIRegisterWithoutVerification(t *testing.T) {
	t.Parallel()
	e, _ := oaStart(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	for _, ver := range []string{"/v1", "/v2"} {
		body := map[string]string{"email": apitest.Email("oa-noverify"), "password": apitest.Password}
		oaExpect(t, e.Do(http.MethodPost, ver+"/auth/register", body, ""), http.StatusCreated, "")
		oaExpect(t, e.Do(http.MethodPost, ver+"/auth/register", body, ""), http.StatusConflict, "email_taken")
	}
}
