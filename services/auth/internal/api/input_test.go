package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

const secMaxBody = 64 << 10 // API.md: request bodies over 64 KiB get 413

// secChunked hides the length of s so the client sends it chunked.
func secChunked(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }

// secCredentialsBody is a register/login body of exactly size bytes.
func secCredentialsBody(t testing.TB, email string, size int) string {
	t.Helper()
	head, tail := `{"email":"`+email+`","password":"`, `"}`
	n := size - len(head) - len(tail)
	if n < 0 {
		t.Fatalf("size %d too small", size)
	}
	b := head + strings.Repeat("a", n) + tail
	if len(b) != size {
		t.Fatalf("body is %d bytes, want %d", len(b), size)
	}
	return b
}

var secJSONHeader = http.Header{"Content-Type": {"application/json"}}

// secNoLeak fails when an error body shows internals.
func secNoLeak(t testing.TB, r *apitest.Response) {
	t.Helper()
	low := strings.ToLower(string(r.Body))
	for _, s := range []string{"goroutine", "panic", "runtime.", "json: ", "unmarshal", "struct", "sql", "pq:", "pgx", "sqlstate", "account.", "httpx", "syntax error", ".go:"} {
		if strings.Contains(low, s) {
			t.Errorf("error body leaks internals (%q): %s", s, r.Body)
		}
	}
}

// TestInputBodyLimit: bodies over 64 KiB get 413, whether the length is
// announced or the body is chunked; a body of exactly 64 KiB is read.
func TestInputBodyLimit(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("limit")
	e.Register(email)

	type tc struct {
		name    string
		path    string
		body    func() io.Reader
		status  int
		code    string
		chunked bool
	}
	over := secCredentialsBody(t, email, secMaxBody+1)
	exact := secCredentialsBody(t, email, secMaxBody)
	mb := secCredentialsBody(t, email, 1<<20)
	bigArray := "[" + strings.Repeat("1,", 5<<20) + "1]" // 10 MB
	cases := []tc{
		{"register, 64 KiB + 1 with Content-Length", "/v1/auth/register", func() io.Reader { return strings.NewReader(over) }, 413, "payload_too_large", false},
		{"register, 64 KiB + 1 chunked", "/v1/auth/register", func() io.Reader { return secChunked(over) }, 413, "payload_too_large", true},
		{"login, 64 KiB + 1 with Content-Length", "/v1/auth/login", func() io.Reader { return strings.NewReader(over) }, 413, "payload_too_large", false},
		{"login, 64 KiB + 1 chunked", "/v1/auth/login", func() io.Reader { return secChunked(over) }, 413, "payload_too_large", true},
		{"refresh, over 64 KiB chunked", "/v1/auth/refresh", func() io.Reader {
			return secChunked(`{"refresh_token":"` + strings.Repeat("r", secMaxBody) + `"}`)
		}, 413, "payload_too_large", true},
		{"register, 1 MB password", "/v1/auth/register", func() io.Reader { return strings.NewReader(mb) }, 413, "payload_too_large", false},
		{"login, 1 MB password", "/v1/auth/login", func() io.Reader { return strings.NewReader(mb) }, 413, "payload_too_large", false},
		{"register, 10 MB array", "/v1/auth/register", func() io.Reader { return strings.NewReader(bigArray) }, 413, "payload_too_large", false},
		// Controls: exactly at the limit the body is read and judged on its content.
		{"register, exactly 64 KiB", "/v1/auth/register", func() io.Reader { return strings.NewReader(exact) }, 422, "weak_password", false},
		{"register, exactly 64 KiB chunked", "/v1/auth/register", func() io.Reader { return secChunked(exact) }, 422, "weak_password", true},
		{"login, exactly 64 KiB chunked", "/v1/auth/login", func() io.Reader { return secChunked(exact) }, 401, "invalid_credentials", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ee := secEnv(e, t)
			start := time.Now()
			req, err := http.NewRequest(http.MethodPost, ee.URL+c.path, c.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if c.chunked && req.ContentLength != 0 {
				t.Fatalf("request would not be chunked (ContentLength %d)", req.ContentLength)
			}
			r, err := secSend(ee.Client, req)
			if err != nil {
				t.Fatalf("%v", err)
			}
			apitest.Expect(t, r, c.status, c.code)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			secNoLeak(t, r)
		})
	}
}

// TestInputMalformedJSON: malformed bodies, trailing data, wrong types and deep
// nesting get 400 invalid_json with a generic body; NUL bytes get a 4xx.
func TestInputMalformedJSON(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("malformed")
	e.Register(email)
	ok := fmt.Sprintf(`{"email":%q,"password":%q}`, email, apitest.Password)

	deepArray := strings.Repeat("[", 30000) + strings.Repeat("]", 30000)
	deepObject := strings.Repeat(`{"a":`, 10010) + "1" + strings.Repeat("}", 10010)
	deepInField := `{"email":"x@example.com","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	for _, s := range []string{deepArray, deepObject, deepInField} {
		if len(s) > secMaxBody {
			t.Fatalf("nested body of %d bytes is over the limit", len(s))
		}
	}

	invalid := []struct{ name, body string }{
		{"truncated", `{"email":`},
		{"unquoted keys", `{email: "a@example.com"}`},
		{"single quotes", `{'email':'a@example.com'}`},
		{"not json", `not json`},
		{"trailing comma", `{"email":"a@example.com",}`},
		{"two objects", `{}{}`},
		{"valid object then another", ok + `{"email":"b@example.com"}`},
		{"valid object then garbage", ok + ` x`},
		{"valid object then array", ok + `[]`},
		{"array instead of object", `[]`},
		{"string instead of object", `"a@example.com"`},
		{"number instead of object", `42`},
		{"deeply nested array", deepArray},
		{"deeply nested object", deepObject},
		{"deeply nested unknown field", deepInField},
		{"bad escape", `{"email":"a\x@example.com"}`},
		{"raw control character", "{\"email\":\"a\x01@example.com\"}"},
	}
	// Wrong types for the fields each route reads.
	credTypes := []struct{ name, body string }{
		{"email a number", `{"email":123,"password":"correct horse battery staple"}`},
		{"email an array", `{"email":["a@example.com"],"password":"correct horse battery staple"}`},
		{"email an object", `{"email":{"$gt":""},"password":"correct horse battery staple"}`},
		{"password a bool", `{"email":"a@example.com","password":true}`},
		{"password an object", `{"email":"a@example.com","password":{"$ne":null}}`},
		{"name a number", `{"email":"a@example.com","password":"correct horse battery staple","name":1}`},
	}
	typed := map[string][]struct{ name, body string }{
		"/v1/auth/register":        credTypes,
		"/v1/auth/login":           credTypes,
		"/v1/auth/refresh":         {{"refresh_token a number", `{"refresh_token":123}`}, {"refresh_token an array", `{"refresh_token":["rt_x"]}`}},
		"/v1/auth/password/forgot": {{"email a number", `{"email":123}`}, {"email an object", `{"email":{"$ne":null}}`}},
	}
	for path, extra := range typed {
		for _, c := range append(slices.Clone(invalid), extra...) {
			t.Run(path+" "+c.name, func(t *testing.T) {
				t.Parallel()
				ee := secEnv(e, t)
				r := ee.Request(http.MethodPost, path, c.body, nil)
				apitest.Expect(t, r, http.StatusBadRequest, "invalid_json")
				secNoLeak(t, r)
			})
		}
	}

	// Whitespace after the object is not trailing data.
	r := e.Request(http.MethodPost, "/v1/auth/login", ok+" \n\t ", nil)
	apitest.Expect(t, r, http.StatusOK, "")

	// NUL bytes (PostgreSQL refuses \x00 in text): a 4xx, never a 500.
	_, p := e.NewUser(t)
	nul := []struct {
		name, method, path string
		body               any
		bearer             string
		status             int
		code               string
	}{
		{"register email", "POST", "/v1/auth/register", map[string]string{"email": "nul\x00" + apitest.Email("x"), "password": apitest.Password}, "", 400, "invalid_email"},
		{"register email NUL at end", "POST", "/v1/auth/register", map[string]string{"email": apitest.Email("x") + "\x00", "password": apitest.Password}, "", 400, "invalid_email"},
		{"register password", "POST", "/v1/auth/register", map[string]string{"email": apitest.Email("nulpw"), "password": "correct horse\x00battery staple"}, "", 422, "weak_password"},
		{"register name", "POST", "/v1/auth/register", map[string]string{"email": apitest.Email("nulname"), "password": apitest.Password, "name": "Ada\x00Lovelace"}, "", 400, "invalid_name"},
		{"login email", "POST", "/v1/auth/login", map[string]string{"email": email + "\x00", "password": apitest.Password}, "", 401, "invalid_credentials"},
		{"login password", "POST", "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password + "\x00"}, "", 401, "invalid_credentials"},
		{"refresh token", "POST", "/v1/auth/refresh", map[string]string{"refresh_token": "rt_\x00"}, "", 401, "invalid_refresh_token"},
		{"verify-email token", "POST", "/v1/auth/email/verify", map[string]string{"token": strings.Repeat("\x00", 43)}, "", 400, "invalid_token"},
		{"forgot email", "POST", "/v1/auth/password/forgot", map[string]string{"email": email + "\x00"}, "", 202, ""},
		{"resend email", "POST", "/v1/auth/email/resend", map[string]string{"email": "\x00" + email}, "", 202, ""},
		{"reset token", "POST", "/v1/auth/password/reset", map[string]string{"token": strings.Repeat("\x00", 43), "password": apitest.Password}, "", 400, "invalid_token"},
		{"patch name", "PATCH", "/v1/users/me", map[string]string{"name": "Ada\x00"}, p.AccessToken, 400, "invalid_name"},
		{"change password", "POST", "/v1/users/me/password", map[string]string{"current_password": apitest.Password, "new_password": "new horse\x00battery staple"}, p.AccessToken, 422, "weak_password"},
	}
	for _, c := range nul {
		t.Run("NUL "+c.name, func(t *testing.T) {
			t.Parallel()
			ee := secEnv(e, t)
			r := ee.Do(c.method, c.path, c.body, c.bearer)
			if r.Status >= 500 {
				t.Fatalf("server error: %d %s", r.Status, r.Body)
			}
			apitest.Expect(t, r, c.status, c.code)
			secNoLeak(t, r)
		})
	}
	// Nothing of the above touched the account.
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, p.AccessToken), http.StatusOK, "")
}

// TestInputContentType: a non-empty body that is not application/json gets 415;
// routes without a body take none.
func TestInputContentType(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	jsonBody := fmt.Sprintf(`{"email":%q,"password":%q}`, apitest.Email("ct"), apitest.Password)

	refused := []struct {
		name, ctype, body string
	}{
		{"text/plain", "text/plain", jsonBody},
		{"text/plain charset", "text/plain; charset=utf-8", jsonBody},
		{"form-encoded", "application/x-www-form-urlencoded", "email=a%40example.com&password=correct+horse+battery+staple"},
		{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@example.com\r\n--x--\r\n"},
		{"xml", "application/xml", "<email>a@example.com</email>"},
		{"json-looking suffix", "application/jsonp", jsonBody},
		{"no content type", "", jsonBody},
		{"garbage content type", ";;;", jsonBody},
	}
	for _, path := range []string{"/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh"} {
		for _, c := range refused {
			t.Run(path+" "+c.name, func(t *testing.T) {
				t.Parallel()
				ee := secEnv(e, t)
				h := http.Header{}
				if c.ctype != "" {
					h.Set("Content-Type", c.ctype)
				}
				r := secRaw(t, ee, http.MethodPost, path, strings.NewReader(c.body), h)
				apitest.Expect(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
			})
		}
	}

	// Controls: JSON with parameters or in another case is JSON.
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON"} {
		r := secRaw(t, e, http.MethodPost, "/v1/auth/register",
			strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, apitest.Email("ct-ok"), apitest.Password)),
			http.Header{"Content-Type": {ct}})
		apitest.Expect(t, r, http.StatusAccepted, "")
	}

	_, p := e.NewUser(t)
	bearer := http.Header{"Authorization": {"Bearer " + p.AccessToken}}

	// A text/plain body on a bearer route is refused before it does anything.
	h := bearer.Clone()
	h.Set("Content-Type", "text/plain")
	r := secRaw(t, e, http.MethodPost, "/v1/auth/logout", strings.NewReader(`{}`), h)
	apitest.Expect(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, p.AccessToken), http.StatusOK, "")

	// GET with no body, with or without a Content-Type, works.
	r = secRaw(t, e, http.MethodGet, "/v1/auth/verify", nil, bearer)
	apitest.Expect(t, r, http.StatusOK, "")
	h = bearer.Clone()
	h.Set("Content-Type", "text/plain")
	r = secRaw(t, e, http.MethodGet, "/v1/auth/verify", nil, h)
	apitest.Expect(t, r, http.StatusOK, "")

	// POST /v1/auth/logout with an empty body and no Content-Type: 204, and the
	// session is over.
	r = secRaw(t, e, http.MethodPost, "/v1/auth/logout", nil, bearer)
	apitest.Expect(t, r, http.StatusNoContent, "")
	secWantUnauthorized(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, p.AccessToken), "after logout")

	// Same with a zero Content-Length announced explicitly and a JSON type.
	_, p2 := e.NewUser(t)
	h = http.Header{"Authorization": {"Bearer " + p2.AccessToken}, "Content-Type": {"application/json"}}
	r = secRaw(t, e, http.MethodPost, "/v1/auth/logout", strings.NewReader(""), h)
	apitest.Expect(t, r, http.StatusNoContent, "")
	secWantUnauthorized(t, e.Do(http.MethodGet, "/v1/users/me", nil, p2.AccessToken), "after logout")

	// logout-all takes no body either.
	_, p3 := e.NewUser(t)
	r = secRaw(t, e, http.MethodPost, "/v1/auth/logout-all", nil, http.Header{"Authorization": {"Bearer " + p3.AccessToken}})
	apitest.Expect(t, r, http.StatusNoContent, "")
	secWantUnauthorized(t, e.Do(http.MethodGet, "/v1/users/me", nil, p3.AccessToken), "after logout-all")
}

// TestInputMethodsAndRoutes: wrong methods get 405 and unknown routes 404, both
// as JSON error bodies.
func TestInputMethodsAndRoutes(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)

	_, p := e.NewUser(t)
	wrong := []struct {
		method, path, allow string
		bearer              bool
	}{
		{http.MethodPut, "/v1/auth/login", "POST", false},
		{"TRACE", "/v1/auth/login", "POST", false},
		{http.MethodDelete, "/v1/auth/login", "POST", false},
		{http.MethodPatch, "/v1/auth/login", "POST", false},
		{http.MethodGet, "/v1/auth/login", "POST", false},
		{http.MethodPut, "/v1/auth/register", "POST", false},
		{http.MethodPost, "/v1/auth/verify", "GET", true},
		{http.MethodPut, "/v1/users/me", "GET", true},
		{http.MethodPost, "/v1/users/me/sessions", "GET", true},
		// Outside /v1 (control: the plumbing's own routes).
		{http.MethodPost, "/healthz", "GET", false},
		{http.MethodDelete, "/.well-known/jwks.json", "GET", false},
	}
	for _, c := range wrong {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			t.Parallel()
			ee := secEnv(e, t)
			h := http.Header{}
			if c.bearer {
				h.Set("Authorization", "Bearer "+p.AccessToken)
			}
			r := secRaw(t, ee, c.method, c.path, nil, h)
			apitest.Expect(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
			}
			if allow := r.Header.Get("Allow"); !strings.Contains(allow, c.allow) {
				t.Errorf("Allow = %q, want it to name %s", allow, c.allow)
			}
		})
	}
	// TRACE with a body and a secret header is not echoed back.
	r := secRaw(t, e, "TRACE", "/v1/auth/login", nil, http.Header{"Authorization": {"Bearer secret-value-123"}})
	if strings.Contains(string(r.Body), "secret-value-123") {
		t.Errorf("TRACE echoed the Authorization header: %s", r.Body)
	}

	for _, path := range []string{"/v1/nope", "/v1/auth/nope", "/nope", "/v1/users/" + uuid.NewString(), "/v2/nope-at-all/x", "/v1/auth/login/extra/segments"} {
		t.Run("404 "+path, func(t *testing.T) {
			t.Parallel()
			ee := secEnv(e, t)
			for _, m := range []string{http.MethodGet, http.MethodPost} {
				r := secRaw(t, ee, m, path, nil, nil)
				if r.Status != http.StatusNotFound {
					t.Fatalf("%s %s: %d %s, want 404", m, path, r.Status, r.Body)
				}
				if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
					t.Errorf("%s %s: Content-Type = %q", m, path, r.Header.Get("Content-Type"))
				}
				var body struct {
					Error struct {
						Code      string `json:"code"`
						RequestID string `json:"request_id"`
					} `json:"error"`
					Code      string `json:"code"`
					RequestID string `json:"request_id"`
				}
				r.JSON(t, &body)
				code, rid := body.Error.Code, body.Error.RequestID
				if strings.HasPrefix(path, "/v2") {
					code, rid = body.Code, body.RequestID
				}
				if code != "not_found" || rid == "" || rid != r.Header.Get("X-Request-Id") {
					t.Errorf("%s %s: body %s, X-Request-Id %q", m, path, r.Body, r.Header.Get("X-Request-Id"))
				}
			}
		})
	}
}

// TestInputInjectionShapedCredentials: SQL-shaped addresses are refused as
// addresses, never run, and never log anybody in.
func TestInputInjectionShapedCredentials(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	victim := apitest.Email("victim")
	e.Register(victim)

	for _, email := range []string{`' OR 1=1--`, `admin'--`, `" OR ""="`, `' OR '1'='1`, `x@example.com' OR '1'='1`, `'; DROP TABLE users;--`, victim + `' --`} {
		t.Run(email, func(t *testing.T) {
			t.Parallel()
			ee := secEnv(e, t)
			r := ee.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": email, "password": apitest.Password}, "")
			apitest.Expect(t, r, http.StatusBadRequest, "invalid_email")
			for _, pw := range []string{apitest.Password, `' OR '1'='1`, `' OR 1=1--`} {
				r = ee.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": pw}, "")
				apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
			}
			r = ee.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, "")
			apitest.Expect(t, r, http.StatusAccepted, "")
		})
	}
	// A well-formed address that merely contains quotes: refused as credentials.
	r := e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": "admin'--@example.com", "password": `' OR '1'='1`}, "")
	apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
	// SQL in the password of a real account.
	for _, pw := range []string{`' OR '1'='1`, `' OR 1=1--`, `correct horse battery staple' OR '1'='1`} {
		r = e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": victim, "password": pw}, "")
		apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
	}
	// The table is intact and the victim still signs in with the real password.
	e.Login(victim, apitest.Password)
}

// TestInputOversizedCredentials: over-long addresses get 400 (register) or 401
// (login); a 60 KB password is refused quickly without being hashed; 1 MB is
// stopped by the body limit.
func TestInputOversizedCredentials(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("big")
	e.Register(email)

	long255 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
	if len(long255) != 255 {
		t.Fatalf("len = %d", len(long255))
	}
	for name, addr := range map[string]string{"255 chars": long255, "10 KB": strings.Repeat("a", 10<<10) + "@example.com", "local part 65": strings.Repeat("a", 65) + "@example.com"} {
		r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": addr, "password": apitest.Password}, "")
		if r.Status != http.StatusBadRequest || r.Code() != "invalid_email" {
			t.Errorf("register, email %s: %d %s, want 400 invalid_email", name, r.Status, r.Body)
		}
		r = e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": addr, "password": apitest.Password}, "")
		if r.Status != http.StatusUnauthorized || r.Code() != "invalid_credentials" {
			t.Errorf("login, email %s: %d %s, want 401 invalid_credentials", name, r.Status, r.Body)
		}
	}
	// Control: 254 characters is allowed.
	long254 := long255[:64] + "@" + long255[65:len(long255)-5] + ".com"
	if len(long254) != 254 {
		t.Fatalf("len = %d", len(long254))
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": long254, "password": apitest.Password}, ""), http.StatusAccepted, "")

	pw60k := strings.Repeat("p", 60<<10)
	start := time.Now()
	r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": apitest.Email("big2"), "password": pw60k}, "")
	apitest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("register with a 60 KB password took %v", d)
	}
	for _, who := range []string{email, apitest.Email("nobody")} {
		start = time.Now()
		r = e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": who, "password": pw60k}, "")
		apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("login with a 60 KB password took %v", d)
		}
	}
	// 1 MB: the body limit answers before any field is looked at.
	pw1m := strings.Repeat("p", 1<<20)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": apitest.Email("big3"), "password": pw1m}, ""), http.StatusRequestEntityTooLarge, "payload_too_large")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": pw1m}, ""), http.StatusRequestEntityTooLarge, "payload_too_large")
	// The account is unharmed.
	e.Login(email, apitest.Password)
}

// TestInputMassAssignment: no body field can set roles, ids, verification or
// timestamps, whatever the case of the key, and duplicate keys do not help.
func TestInputMassAssignment(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	ctx := context.Background()

	type tc struct {
		name string
		body func(email, id string) string
	}
	pw := fmt.Sprintf("%q", apitest.Password)
	cases := []tc{
		{"roles", func(m, _ string) string { return `{"email":"` + m + `","password":` + pw + `,"roles":["admin"]}` }},
		{"Roles", func(m, _ string) string { return `{"email":"` + m + `","password":` + pw + `,"Roles":["admin"]}` }},
		{"ROLES", func(m, _ string) string { return `{"email":"` + m + `","password":` + pw + `,"ROLES":["admin"]}` }},
		{"role", func(m, _ string) string { return `{"email":"` + m + `","password":` + pw + `,"role":"admin"}` }},
		{"Role", func(m, _ string) string { return `{"email":"` + m + `","password":` + pw + `,"Role":"admin"}` }},
		{"is_admin", func(m, _ string) string {
			return `{"email":"` + m + `","password":` + pw + `,"is_admin":true,"isAdmin":true,"admin":true}`
		}},
		{"email_verified", func(m, _ string) string {
			return `{"email":"` + m + `","password":` + pw + `,"email_verified":true,"EmailVerified":true,"email_verified_at":"2020-01-01T00:00:00Z","EmailVerifiedAt":"2020-01-01T00:00:00Z","verified":true}`
		}},
		{"id", func(m, id string) string {
			return `{"email":"` + m + `","password":` + pw + `,"id":"` + id + `","ID":"` + id + `","user_id":"` + id + `"}`
		}},
		{"timestamps and flags", func(m, _ string) string {
			return `{"email":"` + m + `","password":` + pw + `,"created_at":"2000-01-01T00:00:00Z","CreatedAt":"2000-01-01T00:00:00Z","disabled_at":null,"mfa_enabled":true,"MFAEnabled":true,"password_hash":"x"}`
		}},
		{"nested user", func(m, _ string) string {
			return `{"email":"` + m + `","password":` + pw + `,"user":{"roles":["admin"],"email_verified":true}}`
		}},
		{"duplicate roles keys", func(m, _ string) string {
			return `{"email":"` + m + `","password":` + pw + `,"roles":["user"],"roles":["admin"],"Roles":["admin"]}`
		}},
		{"everything at once", func(m, id string) string {
			return `{"id":"` + id + `","email":"` + m + `","password":` + pw + `,"roles":["admin","user"],"email_verified":true,"is_admin":true,"created_at":"2000-01-01T00:00:00Z"}`
		}},
	}
	check := func(t *testing.T, ee *apitest.Env, r *apitest.Response, email, injectedID string) {
		t.Helper()
		apitest.Expect(t, r, http.StatusCreated, "")
		var u apitest.User
		r.JSON(t, &u)
		if !slices.Equal(u.Roles, []string{"user"}) || u.EmailVerified || u.MFAEnabled || u.ID == injectedID || u.Email != email {
			t.Fatalf("created user %+v (injected id %s)", u, injectedID)
		}
		if _, err := uuid.Parse(u.ID); err != nil {
			t.Fatalf("id %q: %v", u.ID, err)
		}
		if created, err := time.Parse(time.RFC3339Nano, u.CreatedAt); err != nil || time.Since(created) > time.Hour {
			t.Fatalf("created_at %q", u.CreatedAt)
		}
		var row struct {
			Roles    []string   `bun:"roles,array"`
			Verified *time.Time `bun:"email_verified_at"`
			Created  time.Time  `bun:"created_at"`
			MFA      bool       `bun:"mfa_enabled"`
		}
		if err := ee.App.DB.NewRaw(`SELECT COALESCE((SELECT array_agg(role ORDER BY role) FROM user_roles WHERE user_id = u.id), '{}') AS roles,
			email_verified_at, created_at, mfa_enabled FROM users u WHERE u.id = ?`, u.ID).Scan(ctx, &row); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(row.Roles, []string{"user"}) || row.Verified != nil || row.MFA || time.Since(row.Created) > time.Hour {
			t.Fatalf("stored user: %+v", row)
		}
		n, err := ee.App.DB.NewSelect().Table("users").Where("id = ?", injectedID).Count(ctx)
		if err != nil || n != 0 {
			t.Fatalf("a user with the injected id exists (%d, %v)", n, err)
		}
		p := ee.Login(email, apitest.Password)
		if roles := secRoles(t, p.AccessToken); !slices.Equal(roles, []string{"user"}) {
			t.Fatalf("access token roles = %v", roles)
		}
		v := ee.Do(http.MethodGet, "/v1/auth/verify", nil, p.AccessToken)
		apitest.Expect(t, v, http.StatusOK, "")
		if got := v.Header.Get("X-Auth-Roles"); got != "user" {
			t.Fatalf("X-Auth-Roles = %q", got)
		}
		apitest.Expect(t, ee.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, p.AccessToken), http.StatusForbidden, "forbidden")
	}
	for _, c := range cases {
		t.Run("register "+c.name, func(t *testing.T) {
			t.Parallel()
			ee := secEnv(e, t)
			email, id := apitest.Email("mass"), uuid.NewString()
			r := ee.Request(http.MethodPost, "/v1/auth/register", c.body(email, id), nil)
			check(t, ee, r, email, id)
		})
	}

	t.Run("register duplicate email keys", func(t *testing.T) {
		t.Parallel()
		ee := secEnv(e, t)
		a, b := apitest.Email("dup-a"), apitest.Email("dup-b")
		r := ee.Request(http.MethodPost, "/v1/auth/register",
			`{"email":"`+a+`","email":"`+b+`","password":`+pw+`,"roles":["admin"]}`, nil)
		apitest.Expect(t, r, http.StatusCreated, "")
		var u apitest.User
		r.JSON(t, &u)
		n, err := ee.App.DB.NewSelect().Table("users").Where("email IN (?, ?)", a, b).Count(ctx)
		if err != nil || n != 1 {
			t.Fatalf("%d accounts for the two addresses (%v), want 1", n, err)
		}
		if u.Email != a && u.Email != b {
			t.Fatalf("account for %q", u.Email)
		}
		check(t, ee, &apitest.Response{Status: r.Status, Header: r.Header, Body: r.Body}, u.Email, uuid.NewString())
	})

	t.Run("patch me", func(t *testing.T) {
		t.Parallel()
		ee := secEnv(e, t)
		email := apitest.Email("mass-patch")
		r := ee.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": email, "password": apitest.Password}, "")
		apitest.Expect(t, r, http.StatusCreated, "")
		var before apitest.User
		r.JSON(t, &before)
		p := ee.Login(email, apitest.Password)
		other := apitest.Email("mass-other")
		r = ee.Request(http.MethodPatch, "/v1/users/me",
			`{"name":"New Name","roles":["admin"],"Roles":["admin"],"email":"`+other+`","Email":"`+other+`","email_verified":true,"id":"`+uuid.NewString()+`","mfa_enabled":true,"created_at":"2000-01-01T00:00:00Z"}`,
			http.Header{"Authorization": {"Bearer " + p.AccessToken}})
		apitest.Expect(t, r, http.StatusOK, "")
		var after apitest.User
		r.JSON(t, &after)
		if after.Name != "New Name" || after.ID != before.ID || after.Email != email || after.EmailVerified ||
			!slices.Equal(after.Roles, []string{"user"}) || after.MFAEnabled || after.CreatedAt != before.CreatedAt {
			t.Fatalf("after PATCH: %+v (before %+v)", after, before)
		}
		rr := ee.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": p.RefreshToken}, "")
		apitest.Expect(t, rr, http.StatusOK, "")
		var np apitest.Pair
		rr.JSON(t, &np)
		if roles := secRoles(t, np.AccessToken); !slices.Equal(roles, []string{"user"}) {
			t.Fatalf("refreshed access token roles = %v", roles)
		}
		apitest.Expect(t, ee.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": other, "password": apitest.Password}, ""),
			http.StatusUnauthorized, "invalid_credentials")
	})

	// With verification required, "email_verified": true does not open the door.
	t.Run("verification required", func(t *testing.T) {
		t.Parallel()
		v := apitest.Start(t, nil)
		email := apitest.Email("mass-unverified")
		r := v.Request(http.MethodPost, "/v1/auth/register",
			`{"email":"`+email+`","password":`+pw+`,"email_verified":true,"EMAIL_VERIFIED":true,"email_verified_at":"2020-01-01T00:00:00Z"}`, nil)
		apitest.Expect(t, r, http.StatusAccepted, "")
		apitest.Expect(t, v.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, ""),
			http.StatusForbidden, "email_not_verified")
	})
}

var secRequestIDShape = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// TestInputResponseHeaders: every answer, success or error, carries nosniff and
// an X-Request-Id; error bodies name the same request id; token answers are
// never cached.
func TestInputResponseHeaders(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, p := e.NewUser(t)
	_, gone := e.NewUser(t)
	over := secCredentialsBody(t, email, secMaxBody+1)

	type tc struct {
		name    string
		method  string
		path    string
		body    func() io.Reader
		header  http.Header
		status  int
		isError bool
	}
	auth := func(at string) http.Header { return http.Header{"Authorization": {"Bearer " + at}} }
	js := func(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }
	cases := []tc{
		{"healthz", "GET", "/healthz", nil, nil, 200, false},
		{"readyz", "GET", "/readyz", nil, nil, 200, false},
		{"metrics", "GET", "/metrics", nil, nil, 200, false},
		{"jwks", "GET", "/.well-known/jwks.json", nil, nil, 200, false},
		{"openid-configuration", "GET", "/.well-known/openid-configuration", nil, nil, 200, false},
		{"verify 200", "GET", "/v1/auth/verify", nil, auth(p.AccessToken), 200, false},
		{"me 200", "GET", "/v1/users/me", nil, auth(p.AccessToken), 200, false},
		{"register 202", "POST", "/v1/auth/register", js(fmt.Sprintf(`{"email":%q,"password":%q}`, apitest.Email("hdr"), apitest.Password)), secJSONHeader, 202, false},
		{"forgot 202", "POST", "/v1/auth/password/forgot", js(`{"email":"nobody@example.com"}`), secJSONHeader, 202, false},
		{"logout 204", "POST", "/v1/auth/logout", nil, auth(gone.AccessToken), 204, false},
		{"invalid json 400", "POST", "/v1/auth/login", js(`{`), secJSONHeader, 400, true},
		{"invalid email 400", "POST", "/v1/auth/register", js(`{"email":"nope","password":"x"}`), secJSONHeader, 400, true},
		{"no token 401", "GET", "/v1/users/me", nil, nil, 401, true},
		{"bad credentials 401", "POST", "/v1/auth/login", js(fmt.Sprintf(`{"email":%q,"password":"wrong password here"}`, email)), secJSONHeader, 401, true},
		{"forbidden 403", "GET", "/v1/auth/verify?role=admin", nil, auth(p.AccessToken), 403, true},
		{"not found 404", "GET", "/v1/nothing-here", nil, nil, 404, true},
		{"method 405", "PUT", "/healthz", nil, nil, 405, true},
		// PUT /v1/auth/login should be 405 too (TestInputMethodsAndRoutes); its
		// headers are checked whatever the status.
		{"wrong method on a v1 route", "PUT", "/v1/auth/login", nil, nil, 0, true},
		{"too large 413", "POST", "/v1/auth/login", js(over), secJSONHeader, 413, true},
		{"too large chunked 413", "POST", "/v1/auth/login", func() io.Reader { return secChunked(over) }, secJSONHeader, 413, true},
		{"media type 415", "POST", "/v1/auth/login", js(`{}`), http.Header{"Content-Type": {"text/plain"}}, 415, true},
		{"weak password 422", "POST", "/v1/auth/register", js(fmt.Sprintf(`{"email":%q,"password":"short"}`, apitest.Email("hdr"))), secJSONHeader, 422, true},
		{"invalid refresh 401", "POST", "/v1/auth/refresh", js(`{"refresh_token":"rt_nope"}`), secJSONHeader, 401, true},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		var body io.Reader
		if c.body != nil {
			body = c.body()
		}
		r := secRaw(t, e, c.method, c.path, body, c.header)
		if r.Status != c.status && !(c.status == 0 && (r.Status == 404 || r.Status == 405)) {
			t.Errorf("%s: status %d %s, want %d", c.name, r.Status, r.Body, c.status)
			continue
		}
		if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q", c.name, got)
		}
		rid := r.Header.Get("X-Request-Id")
		if !secRequestIDShape.MatchString(rid) {
			t.Errorf("%s: X-Request-Id = %q", c.name, rid)
		}
		if seen[rid] {
			t.Errorf("%s: X-Request-Id %q reused", c.name, rid)
		}
		seen[rid] = true
		if c.isError {
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: Content-Type = %q", c.name, r.Header.Get("Content-Type"))
			}
			var b struct {
				Error struct {
					Code      string `json:"code"`
					Message   string `json:"message"`
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			r.JSON(t, &b)
			if b.Error.Code == "" || b.Error.Message == "" || b.Error.RequestID != rid {
				t.Errorf("%s: error body %s, X-Request-Id %q", c.name, r.Body, rid)
			}
		}
	}

	// Answers holding tokens are never cached.
	lr := e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, "")
	apitest.Expect(t, lr, http.StatusOK, "")
	var lp apitest.Pair
	lr.JSON(t, &lp)
	rr := e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": lp.RefreshToken}, "")
	apitest.Expect(t, rr, http.StatusOK, "")
	for name, r := range map[string]*apitest.Response{"login": lr, "refresh": rr} {
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%s: Cache-Control = %q, want no-store", name, cc)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", name)
		}
	}
}

// TestInputRequestID: a well-formed incoming X-Request-Id is echoed, also in
// the error body; a malformed or huge one is replaced.
func TestInputRequestID(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)

	good := []string{"tf-" + uuid.NewString(), "abc_DEF.123:456", strings.Repeat("a", 128)}
	for _, id := range good {
		for _, c := range []struct {
			method, path string
			bearer       string
			status       int
		}{
			{"GET", "/v1/auth/verify", p.AccessToken, 200},
			{"GET", "/v1/users/me", "", 401},
			{"GET", "/v1/nothing", "", 404},
			{"PUT", "/healthz", "", 405},
		} {
			h := http.Header{"X-Request-Id": {id}}
			if c.bearer != "" {
				h.Set("Authorization", "Bearer "+c.bearer)
			}
			r := secRaw(t, e, c.method, c.path, nil, h)
			if r.Status != c.status {
				t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
			}
			if got := r.Header.Get("X-Request-Id"); got != id {
				t.Errorf("%s %s: X-Request-Id %q, want the incoming %q", c.method, c.path, got, id)
			}
			if c.status >= 400 {
				var b struct {
					Error struct {
						RequestID string `json:"request_id"`
					} `json:"error"`
				}
				r.JSON(t, &b)
				if b.Error.RequestID != id {
					t.Errorf("%s %s: body request_id %q, want %q", c.method, c.path, b.Error.RequestID, id)
				}
			}
		}
	}

	bad := []string{
		"has space",
		"<script>alert(1)</script>",
		"quote\"inside",
		"line\\nbreak",
		"émoji-ünïcode",
		"a/b?c=d",
		strings.Repeat("a", 129),
		strings.Repeat("x", 8<<10),
	}
	for _, id := range bad {
		for _, c := range []struct {
			path   string
			status int
		}{{"/v1/users/me", 401}, {"/healthz", 200}} {
			r := secRaw(t, e, http.MethodGet, c.path, nil, http.Header{"X-Request-Id": {id}})
			if r.Status != c.status {
				t.Fatalf("%s: %d %s", c.path, r.Status, r.Body)
			}
			got := r.Header.Get("X-Request-Id")
			if got == id || !secRequestIDShape.MatchString(got) {
				t.Errorf("%s: incoming %.40q answered X-Request-Id %.60q, want a fresh well-formed id", c.path, id, got)
			}
			if strings.Contains(string(r.Body), id) {
				t.Errorf("%s: body echoes the malformed id", c.path)
			}
			if c.status == 401 {
				var b struct {
					Error struct {
						RequestID string `json:"request_id"`
					} `json:"error"`
				}
				r.JSON(t, &b)
				if b.Error.RequestID != got {
					t.Errorf("%s: body request_id %q, header %q", c.path, b.Error.RequestID, got)
				}
			}
		}
	}
}
