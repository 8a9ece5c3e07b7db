package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// ---------------------------------------------------------------------------
// Helpers shared by forgery_test.go, input_test.go, concurrency_test.go and
// wellknown_test.go. Prefixed "sec" so they never collide with other files of
// the package.
// ---------------------------------------------------------------------------

// secEnv returns a copy of e whose helpers fail t, so parallel subtests can use
// one running service.
func secEnv(e *apitest.Env, t testing.TB) *apitest.Env {
	c := *e
	c.T = t
	return &c
}

// secSend performs req without touching any testing.T, so it is safe from
// goroutines. The answer is read whole.
func secSend(client *http.Client, req *http.Request) (*apitest.Response, error) {
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &apitest.Response{Status: res.StatusCode, Header: res.Header, Body: body}, nil
}

// secPost sends a JSON body (a value marshalled to JSON) from any goroutine.
func secPost(e *apitest.Env, path string, body any, bearer string) (*apitest.Response, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return secSend(e.Client, req)
}

// secRaw sends exactly what it is given: no default Content-Type.
func secRaw(t testing.TB, e *apitest.Env, method, path string, body io.Reader, header http.Header) *apitest.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	r, err := secSend(e.Client, req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// secSigner is the service's own signing key, read from JWT_KEYS_DIR, so a test
// can put a VALID signature over bad claims.
type secSigner struct {
	kid string
	key ed25519.PrivateKey
}

func secLoadSigner(t testing.TB, e *apitest.Env) secSigner {
	t.Helper()
	entries, err := os.ReadDir(e.Cfg.JWTKeysDir)
	if err != nil {
		t.Fatal(err)
	}
	var found []secSigner
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".pem") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(e.Cfg.JWTKeysDir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s: no PEM block", ent.Name())
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", ent.Name(), err)
		}
		ed, ok := k.(ed25519.PrivateKey)
		if !ok {
			t.Fatalf("%s: key is %T; these tests assume the default JWT_ALG EdDSA", ent.Name(), k)
		}
		found = append(found, secSigner{kid: strings.TrimSuffix(ent.Name(), ".pem"), key: ed})
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one key in %s, found %d", e.Cfg.JWTKeysDir, len(found))
	}
	return found[0]
}

func secB64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// secSign builds a compact JWS with exactly header and claims.
func secSign(t testing.TB, header, claims map[string]any, method jwt.SigningMethod, key any) string {
	t.Helper()
	in := secB64JSON(t, header) + "." + secB64JSON(t, claims)
	sig, err := method.Sign(in, key)
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// secSegment decodes segment i (0 header, 1 payload) of a compact JWS.
func secSegment(t testing.TB, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	return m
}

// secRoles returns the roles claim of an access token.
func secRoles(t testing.TB, at string) []string {
	t.Helper()
	var out []string
	raw, ok := secSegment(t, at, 1)["roles"].([]any)
	if !ok {
		t.Fatalf("access token has no roles array: %v", secSegment(t, at, 1))
	}
	for _, r := range raw {
		s, _ := r.(string)
		out = append(out, s)
	}
	return out
}

func secClone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// secWantUnauthorized asserts the contract answer to a bad bearer token.
func secWantUnauthorized(t testing.TB, r *apitest.Response, what string) {
	t.Helper()
	if r.Status >= 500 {
		t.Fatalf("%s: server error %d %s", what, r.Status, r.Body)
	}
	if r.Status != http.StatusUnauthorized || r.Code() != "unauthorized" {
		t.Fatalf("%s: got %d %s, want 401 unauthorized", what, r.Status, r.Body)
	}
	if v := r.Header.Get("X-Auth-User-Id"); v != "" {
		t.Fatalf("%s: refused answer carries X-Auth-User-Id %q", what, v)
	}
}

// secProtected are the two routes every forgery is tried against.
var secProtected = []string{"/v1/auth/verify", "/v1/users/me"}

func secBearerHeader(scheme, tok string) http.Header {
	return http.Header{"Authorization": {scheme + tok}}
}

// ---------------------------------------------------------------------------

// TestForgeryAccessTokens sends forged, tampered, misdirected and malformed
// bearer tokens to GET /v1/auth/verify and GET /v1/users/me: each must get 401
// unauthorized, and key material named in a token header is never fetched.
func TestForgeryAccessTokens(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	signer := secLoadSigner(t, e)

	var canaryHits atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canaryHits.Add(1)
		http.Error(w, "must never be fetched", http.StatusTeapot)
	}))
	defer canary.Close()

	_, alice := e.NewUser(t)
	_, bob := e.NewUser(t)
	at := alice.AccessToken
	parts := strings.Split(at, ".")
	header := secSegment(t, at, 0)
	claims := secSegment(t, at, 1)
	if header["kid"] != signer.kid || header["alg"] != "EdDSA" || header["typ"] != "at+jwt" {
		t.Fatalf("unexpected access token header %v (kid on disk %s)", header, signer.kid)
	}
	if claims["iss"] != "http://auth.test" {
		t.Fatalf("iss = %v, want the harness PUBLIC_URL", claims["iss"])
	}
	now := time.Now()

	// valid re-signs the real claims with the real key after the edits: only
	// the edited part is wrong.
	valid := func(editHeader, editClaims func(h, c map[string]any)) string {
		h, c := secClone(header), secClone(claims)
		c["exp"] = now.Add(10 * time.Minute).Unix()
		if editHeader != nil {
			editHeader(h, c)
		}
		if editClaims != nil {
			editClaims(h, c)
		}
		return secSign(t, h, c, jwt.SigningMethodEdDSA, signer.key)
	}
	setC := func(k string, v any) func(h, c map[string]any) { return func(_, c map[string]any) { c[k] = v } }
	delC := func(k string) func(h, c map[string]any) { return func(_, c map[string]any) { delete(c, k) } }
	setH := func(k string, v any) func(h, c map[string]any) { return func(h, _ map[string]any) { h[k] = v } }
	// tamper keeps Alice's genuine signature over an edited payload.
	tamper := func(k string, v any) string {
		c := secClone(claims)
		c[k] = v
		return parts[0] + "." + secB64JSON(t, c) + "." + parts[2]
	}
	unsigned := func(alg string) string {
		h := secClone(header)
		h["alg"] = alg
		return secB64JSON(t, h) + "." + parts[1] + "."
	}
	hmacWith := func(secret []byte) string {
		h := secClone(header)
		h["alg"] = "HS256"
		return secSign(t, h, claims, jwt.SigningMethodHS256, secret)
	}

	// The public key exactly as GET /.well-known/jwks.json publishes it.
	jr := e.Do(http.MethodGet, "/.well-known/jwks.json", nil, "")
	apitest.Expect(t, jr, http.StatusOK, "")
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	jr.JSON(t, &jwks)
	var pubJWK map[string]any
	for _, k := range jwks.Keys {
		if k["kid"] == signer.kid {
			pubJWK = k
		}
	}
	if pubJWK == nil {
		t.Fatalf("kid %s not in JWKS %s", signer.kid, jr.Body)
	}
	x, _ := pubJWK["x"].(string)
	pubRaw, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil || len(pubRaw) != ed25519.PublicKeySize {
		t.Fatalf("JWKS x %q: %v", x, err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(pubRaw))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	jwkJSON, _ := json.Marshal(pubJWK)

	foreignPub, foreign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	foreignSigned := func(extra map[string]any) string {
		h := secClone(header)
		for k, v := range extra {
			h[k] = v
		}
		c := secClone(claims)
		c["roles"] = []string{"user", "admin"}
		return secSign(t, h, c, jwt.SigningMethodEdDSA, foreign)
	}
	foreignJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(foreignPub), "kid": signer.kid}
	foreignDER, _ := x509.MarshalPKIXPublicKey(foreignPub)

	// A verification token from the outbox (a fresh, unverified registration).
	pendingEmail := apitest.Email("forgery-pending")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": pendingEmail, "password": apitest.Password}, ""), http.StatusAccepted, "")
	verificationToken := e.OutboxToken(pendingEmail, "auth.email.verification_requested")

	// A session that ended (logout).
	_, loggedOut := e.NewUser(t)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout", nil, loggedOut.AccessToken), http.StatusNoContent, "")

	// A user disabled in the database behind the service's back: the cached user
	// is still being refilled after verification, so the flag is seen at once.
	disabledEmail, disabled := e.NewUser(t)
	if _, err := e.App.DB.NewRaw(`UPDATE users SET disabled_at = now() WHERE id = ?`, disabled.User.ID).
		Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout", nil, disabled.AccessToken), http.StatusUnauthorized, "unauthorized")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login",
		map[string]string{"email": disabledEmail, "password": apitest.Password}, ""), http.StatusForbidden, "account_disabled")

	// A disabled user who did not log out: the next refresh sees the flag and
	// ends the session, after which its access token is dead.
	_, disabled2 := e.NewUser(t)
	if _, err := e.App.DB.NewRaw(`UPDATE users SET disabled_at = now() WHERE id = ?`, disabled2.User.ID).
		Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/refresh",
		map[string]string{"refresh_token": disabled2.RefreshToken}, ""), http.StatusUnauthorized, "invalid_refresh_token")

	valid3 := strings.Split(valid(nil, nil), ".")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	// Controls: if these fail, the refusals below prove nothing.
	for name, tok := range map[string]string{
		"genuine token":                        at,
		"re-signed genuine claims":             valid(nil, nil),
		"re-signed, aud array containing ours": valid(nil, setC("aud", []string{"someone-else", e.Cfg.JWTAudience})),
	} {
		for _, path := range secProtected {
			r := e.Do(http.MethodGet, path, nil, tok)
			if r.Status != http.StatusOK {
				t.Fatalf("control %q on %s: %d %s", name, path, r.Status, r.Body)
			}
		}
	}

	cases := []struct {
		name string
		tok  string
	}{
		// alg none and key confusion.
		{"alg none", unsigned("none")},
		{"alg None", unsigned("None")},
		{"alg NONE", unsigned("NONE")},
		{"alg none with the genuine signature", func() string { p := strings.Split(unsigned("none"), "."); return p[0] + "." + p[1] + "." + parts[2] }()},
		{"HS256 keyed with the JWKS public key bytes", hmacWith(pubRaw)},
		{"HS256 keyed with the JWKS x string", hmacWith([]byte(x))},
		{"HS256 keyed with the public key PEM", hmacWith(pubPEM)},
		{"HS256 keyed with the public key DER", hmacWith(pkix)},
		{"HS256 keyed with the JWK JSON", hmacWith(jwkJSON)},
		{"HS256 keyed with an empty secret", hmacWith([]byte{})},

		// Tampered payload under the old signature; stripped signature.
		{"sub of another user, old signature", tamper("sub", bob.User.ID)},
		{"roles admin, old signature", tamper("roles", []string{"admin"})},
		{"roles user+admin, old signature", tamper("roles", []string{"user", "admin"})},
		{"sid of another session, old signature", tamper("sid", secSegment(t, bob.AccessToken, 1)["sid"])},
		{"exp extended, old signature", tamper("exp", now.Add(365*24*time.Hour).Unix())},
		{"stripped signature h.p.", parts[0] + "." + parts[1] + "."},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(bob.AccessToken, ".")[2]},

		// kid: never a file, never a query, never an unknown key.
		{"kid path traversal", valid(setH("kid", "../../../../dev/null"), nil)},
		{"kid path traversal, HS256 empty secret", func() string {
			h := secClone(header)
			h["alg"], h["kid"] = "HS256", "../../../../dev/null"
			return secSign(t, h, claims, jwt.SigningMethodHS256, []byte{})
		}()},
		{"kid SQL", valid(setH("kid", "' UNION SELECT 'k'--"), nil)},
		{"kid SQL 2", valid(setH("kid", signer.kid+"' OR '1'='1"), nil)},
		{"kid unknown", valid(setH("kid", "2020-retired-key"), nil)},
		{"kid 10 KB", valid(setH("kid", strings.Repeat("k", 10<<10)), nil)},
		{"kid missing", valid(func(h, _ map[string]any) { delete(h, "kid") }, nil)},
		{"kid not a string", valid(setH("kid", 7), nil)},

		// Key material named by the token: never fetched, never trusted.
		{"jku to canary, valid signature", valid(setH("jku", canary.URL+"/jwks.json"), nil)},
		{"x5u to canary, valid signature", valid(setH("x5u", canary.URL+"/cert.pem"), nil)},
		{"jwk header, valid signature", valid(setH("jwk", pubJWK), nil)},
		{"x5c header, valid signature", valid(setH("x5c", []string{base64.StdEncoding.EncodeToString(pkix)}), nil)},
		{"jku to canary, attacker key", foreignSigned(map[string]any{"jku": canary.URL + "/jwks.json"})},
		{"x5u to canary, attacker key", foreignSigned(map[string]any{"x5u": canary.URL + "/cert.pem"})},
		{"embedded attacker jwk", foreignSigned(map[string]any{"jwk": foreignJWK})},
		{"embedded attacker x5c", foreignSigned(map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(foreignDER)}})},
		{"foreign Ed25519 key with the real kid", foreignSigned(nil)},

		// Time claims (validly signed: only the claim is wrong).
		{"exp 2 minutes past", valid(nil, func(_, c map[string]any) {
			c["exp"] = now.Add(-2 * time.Minute).Unix()
			c["iat"] = now.Add(-20 * time.Minute).Unix()
		})},
		{"exp an hour past", valid(nil, func(_, c map[string]any) {
			c["exp"] = now.Add(-time.Hour).Unix()
			c["iat"] = now.Add(-2 * time.Hour).Unix()
		})},
		{"no exp", valid(nil, delC("exp"))},
		{"exp not a number", valid(nil, setC("exp", "tomorrow"))},
		{"nbf 5 minutes ahead", valid(nil, setC("nbf", now.Add(5*time.Minute).Unix()))},
		{"iat an hour ahead", valid(nil, setC("iat", now.Add(time.Hour).Unix()))},

		// Issuer and audience (validly signed).
		{"iss wrong", valid(nil, setC("iss", "http://evil.test"))},
		{"iss with trailing slash", valid(nil, setC("iss", "http://auth.test/"))},
		{"iss missing", valid(nil, delC("iss"))},
		{"aud wrong", valid(nil, setC("aud", "other-api"))},
		{"aud empty array", valid(nil, setC("aud", []string{}))},
		{"aud array without ours", valid(nil, setC("aud", []string{"a", "b"}))},
		{"aud missing", valid(nil, delC("aud"))},
		{"aud empty string", valid(nil, setC("aud", ""))},

		// Claims binding the token to a live session of its subject.
		{"sub missing", valid(nil, delC("sub"))},
		{"sid missing", valid(nil, delC("sid"))},
		{"sid unknown", valid(nil, setC("sid", "00000000-0000-4000-8000-000000000000"))},
		{"valid signature, sub of another user with own sid", valid(nil, setC("sub", bob.User.ID))},

		// Token type confusion.
		{"typ JWT", valid(setH("typ", "JWT"), nil)},
		{"typ missing", valid(func(h, _ map[string]any) { delete(h, "typ") }, nil)},
		{"refresh token as bearer", alice.RefreshToken},
		{"verification token as bearer", verificationToken},

		// Shape.
		{"2 segments", parts[0] + "." + parts[1]},
		{"4 segments", at + ".e30"},
		{"4 segments, valid first three", strings.Join(valid3, ".") + "." + valid3[2]},
		{"header bad base64", "!!!." + parts[1] + "." + parts[2]},
		{"payload bad base64", parts[0] + ".%%%." + parts[2]},
		{"signature bad base64", parts[0] + "." + parts[1] + ".***"},
		{"header not JSON", b64("not json") + "." + parts[1] + "." + parts[2]},
		{"header JSON array", b64(`["alg"]`) + "." + parts[1] + "." + parts[2]},
		{"header null", b64("null") + "." + parts[1] + "." + parts[2]},
		{"payload not JSON", parts[0] + "." + b64("not json") + "." + parts[2]},
		{"just dots", ".."},
		{"garbage", "not-a-token"},
		{"8 KiB of dots", strings.Repeat(".", 8<<10)},

		// Sessions that ended.
		{"session revoked by logout", loggedOut.AccessToken},
		{"disabled user, then logged out", disabled.AccessToken},
		{"disabled user, session ended at refresh", disabled2.AccessToken},
	}

	t.Run("refused", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ee := secEnv(e, t)
				for _, path := range secProtected {
					start := time.Now()
					r := ee.Do(http.MethodGet, path, nil, tc.tok)
					secWantUnauthorized(t, r, path)
					if d := time.Since(start); d > 5*time.Second {
						t.Errorf("%s took %v", path, d)
					}
				}
			})
		}
	})

	if n := canaryHits.Load(); n != 0 {
		t.Errorf("the service made %d requests to URLs named in token headers", n)
	}
	// The users behind the forgeries are untouched and still signed in.
	for _, p := range []apitest.Pair{alice, bob} {
		r := e.Do(http.MethodGet, "/v1/users/me", nil, p.AccessToken)
		apitest.Expect(t, r, http.StatusOK, "")
		var u apitest.User
		r.JSON(t, &u)
		if len(u.Roles) != 1 || u.Roles[0] != "user" {
			t.Errorf("roles of %s = %v after forgeries", u.Email, u.Roles)
		}
	}
}

// TestForgeryAuthorizationSchemes checks how the Authorization header is read:
// only the Bearer scheme (case-insensitive, RFC 7235) carries a token.
func TestForgeryAuthorizationSchemes(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, p := e.NewUser(t)
	at := p.AccessToken
	basic := base64.StdEncoding.EncodeToString([]byte(email + ":" + apitest.Password))

	cases := []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{"Bearer", secBearerHeader("Bearer ", at), true},
		{"lowercase bearer", secBearerHeader("bearer ", at), true},
		{"uppercase BEARER", secBearerHeader("BEARER ", at), true},
		{"no header", http.Header{}, false},
		{"empty header", http.Header{"Authorization": {""}}, false},
		{"Bearer without token", http.Header{"Authorization": {"Bearer"}}, false},
		{"Bearer and spaces", http.Header{"Authorization": {"Bearer    "}}, false},
		{"Basic with credentials", http.Header{"Authorization": {"Basic " + basic}}, false},
		{"Basic with the access token", secBearerHeader("Basic ", at), false},
		{"Token scheme", secBearerHeader("Token ", at), false},
		{"scheme glued to token", secBearerHeader("Bearer", at), false},
		{"bare token", secBearerHeader("", at), false},
		{"Bearer with two tokens", secBearerHeader("Bearer ", at+" "+at), false},
		{"Bearer with comma list", secBearerHeader("Bearer ", at+", Basic "+basic), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ee := secEnv(e, t)
			for _, path := range secProtected {
				r := ee.Request(http.MethodGet, path, nil, tc.header)
				if tc.ok {
					apitest.Expect(t, r, http.StatusOK, "")
					continue
				}
				secWantUnauthorized(t, r, path)
			}
		})
	}
	// Two Authorization headers: refused or the first one; never a 500.
	r := e.Request(http.MethodGet, "/v1/auth/verify", nil, http.Header{"Authorization": {"Basic " + basic, "Bearer " + at}})
	secWantUnauthorized(t, r, "Basic then Bearer")
}

// TestForgeryOversizedBearer sends "Bearer " followed by 1 MB of dots. The
// answer must be a fast refusal with bounded memory: 401 from the service, or
// 431 from the HTTP server's header limit (nothing reaches a JWT parser). A
// token just under the header limit must get 401 unauthorized.
func TestForgeryOversizedBearer(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)

	for _, path := range secProtected {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.Repeat(".", 1<<20))
		r, err := secSend(e.Client, req)
		if err != nil {
			t.Fatalf("%s: 1 MB bearer: %v", path, err)
		}
		t.Logf("%s: 1 MB bearer answered %d", path, r.Status)
		if r.Status != http.StatusUnauthorized && r.Status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%s: 1 MB bearer: %d %s, want 401 or 431", path, r.Status, r.Body)
		}
		if r.Status == http.StatusUnauthorized && r.Code() != "unauthorized" {
			t.Fatalf("%s: 1 MB bearer: %d %s", path, r.Status, r.Body)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: 1 MB bearer took %v", path, d)
		}

		// Under the header limit the service itself must refuse it.
		r = e.Request(http.MethodGet, path, nil, secBearerHeader("Bearer ", strings.Repeat(".", 24<<10)))
		secWantUnauthorized(t, r, path+" with 24 KB of dots")
		r = e.Request(http.MethodGet, path, nil, secBearerHeader("Bearer ", strings.Repeat("a", 24<<10)))
		secWantUnauthorized(t, r, path+" with 24 KB of letters")
	}
	// The service is still healthy and the genuine token still works.
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, p.AccessToken), http.StatusOK, "")
}
