package api_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// secJWKS fetches and decodes the JWKS.
func secJWKS(t testing.TB, e *apitest.Env) (*apitest.Response, []map[string]any) {
	t.Helper()
	r := e.Do(http.MethodGet, "/.well-known/jwks.json", nil, "")
	apitest.Expect(t, r, http.StatusOK, "")
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	r.JSON(t, &set)
	return r, set.Keys
}

var secMaxAge = regexp.MustCompile(`(?:^|[ ,])max-age=(\d+)(?:$|[ ,])`)

// TestWellKnownJWKS: every key has kid, alg and use; no private member is ever
// published; caches get a max-age.
func TestWellKnownJWKS(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	r, keys := secJWKS(t, e)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
	}
	cc := r.Header.Get("Cache-Control")
	m := secMaxAge.FindStringSubmatch(cc)
	if m == nil || strings.Contains(cc, "no-store") || strings.Contains(cc, "private") {
		t.Errorf("Cache-Control = %q, want a public max-age", cc)
	} else if n, _ := strconv.Atoi(m[1]); n <= 0 {
		t.Errorf("Cache-Control max-age = %d", n)
	}
	if len(keys) == 0 {
		t.Fatalf("JWKS has no keys: %s", r.Body)
	}
	kid, alg := e.App.Keys.Signing()
	found := false
	for _, k := range keys {
		for _, f := range []string{"kid", "alg", "use", "kty"} {
			if s, _ := k[f].(string); s == "" {
				t.Errorf("key %v lacks %s", k, f)
			}
		}
		if k["use"] != "sig" {
			t.Errorf("key %v: use %v, want sig", k["kid"], k["use"])
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %v publishes private member %q", k["kid"], private)
			}
		}
		if k["kid"] == kid {
			found = true
			if k["alg"] != alg {
				t.Errorf("signing key published with alg %v, signs with %s", k["alg"], alg)
			}
		}
	}
	if !found {
		t.Errorf("signing kid %s is not in the JWKS", kid)
	}
	// The document is exactly the key set's own.
	want, err := e.App.Keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != strings.TrimSpace(string(r.Body)) {
		t.Errorf("served JWKS differs from the key set:\n%s\n%s", r.Body, want)
	}
	// Whatever the private key's encoding, no byte of it appears.
	signer := secLoadSigner(t, e)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if strings.Contains(string(r.Body), enc.EncodeToString(signer.key.Seed())) {
			t.Fatal("JWKS contains the private key seed")
		}
	}
}

// TestWellKnownOpenIDConfiguration names the issuer (PUBLIC_URL) and jwks_uri.
func TestWellKnownOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	r := e.Do(http.MethodGet, "/.well-known/openid-configuration", nil, "")
	apitest.Expect(t, r, http.StatusOK, "")
	var doc map[string]any
	r.JSON(t, &doc)
	if doc["issuer"] != "http://auth.test" || doc["issuer"] != e.Cfg.PublicURL {
		t.Errorf("issuer = %v, want PUBLIC_URL %q", doc["issuer"], e.Cfg.PublicURL)
	}
	if doc["jwks_uri"] != "http://auth.test/.well-known/jwks.json" {
		t.Errorf("jwks_uri = %v", doc["jwks_uri"])
	}
	if algs, _ := doc["id_token_signing_alg_values_supported"].([]any); algs != nil {
		for _, a := range algs {
			if s, _ := a.(string); strings.EqualFold(s, "none") || strings.HasPrefix(s, "HS") {
				t.Errorf("advertises alg %q", s)
			}
		}
	}
	// The issuer of real tokens is the advertised one.
	_, p := e.NewUser(t)
	if iss := secSegment(t, p.AccessToken, 1)["iss"]; iss != doc["issuer"] {
		t.Errorf("access token iss %v, discovery issuer %v", iss, doc["issuer"])
	}
}

// TestWellKnownTokenVerifiesWithJWKS: an access token's kid is in the JWKS and
// its signature verifies with that published public key (a relying party can
// check tokens offline).
func TestWellKnownTokenVerifiesWithJWKS(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	_, keys := secJWKS(t, e)
	h := secSegment(t, p.AccessToken, 0)
	if h["typ"] != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", h["typ"])
	}
	var jwk map[string]any
	for _, k := range keys {
		if k["kid"] == h["kid"] {
			jwk = k
		}
	}
	if jwk == nil {
		t.Fatalf("token kid %v is not in the JWKS", h["kid"])
	}
	if jwk["alg"] != h["alg"] || jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" || h["alg"] != "EdDSA" {
		t.Fatalf("token alg %v, key %v", h["alg"], jwk)
	}
	x, _ := jwk["x"].(string)
	pub, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("x %q: %v", x, err)
	}
	parts := strings.Split(p.AccessToken, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("the access token does not verify with the published key")
	}
	// And a token of the refresh flow too.
	r := e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": p.RefreshToken}, "")
	apitest.Expect(t, r, http.StatusOK, "")
	at := secPairOf(t, r).AccessToken
	parts = strings.Split(at, ".")
	sig, _ = base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("the refreshed access token does not verify with the published key")
	}
	// Tampering is visible to the same offline check (sanity of the check above).
	if ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]+"x"), sig) {
		t.Fatal("offline check accepts anything")
	}
}

// TestWellKnownHealth: /healthz is 200; /readyz is 200 naming postgres, redis
// and nats as ok.
func TestWellKnownHealth(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	apitest.Expect(t, e.Do(http.MethodGet, "/healthz", nil, ""), http.StatusOK, "")

	r := e.Do(http.MethodGet, "/readyz", nil, "")
	apitest.Expect(t, r, http.StatusOK, "")
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	r.JSON(t, &body)
	for _, dep := range []string{"postgres", "redis", "nats"} {
		if body.Checks[dep] != "ok" {
			t.Errorf("readyz check %s = %q: %s", dep, body.Checks[dep], r.Body)
		}
	}
	if body.Status != "ok" {
		t.Errorf("readyz status %q", body.Status)
	}
	// Probes are not cached.
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") && !strings.Contains(cc, "no-cache") {
		t.Errorf("readyz Cache-Control = %q", cc)
	}
}

// TestWellKnownMetrics: /metrics is Prometheus text with http_requests_total
// labelled by route template, never by a raw path or id.
func TestWellKnownMetrics(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	other := e.Login(p.User.Email, apitest.Password)
	otherSID, _ := secSegment(t, other.AccessToken, 1)["sid"].(string)
	unknownSID := uuid.NewString()
	strayID := uuid.NewString()

	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/sessions/"+otherSID, nil, p.AccessToken), http.StatusNoContent, "")
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/sessions/"+unknownSID, nil, p.AccessToken), http.StatusNotFound, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, p.AccessToken), http.StatusOK, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/no-such-route/"+strayID, nil, ""), http.StatusNotFound, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/no-such-route/"+strayID+"?token=secret-in-query", nil, ""), http.StatusNotFound, "")

	r := e.Do(http.MethodGet, "/metrics", nil, "")
	apitest.Expect(t, r, http.StatusOK, "")
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type = %q", ct)
	}
	text := string(r.Body)
	if !strings.Contains(text, "# TYPE http_requests_total counter") {
		t.Fatalf("no http_requests_total counter in:\n%.2000s", text)
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "http_requests_total{") {
			lines = append(lines, l)
		}
	}
	wantRoute := func(route, method, status string) {
		t.Helper()
		for _, l := range lines {
			if strings.Contains(l, `route="`+route+`"`) && strings.Contains(l, `method="`+method+`"`) && strings.Contains(l, `status="`+status+`"`) {
				return
			}
		}
		t.Errorf("no http_requests_total sample for route=%q method=%s status=%s in:\n%s", route, method, status, strings.Join(lines, "\n"))
	}
	wantRoute("/v1/users/me/sessions/:id", "DELETE", "204")
	wantRoute("/v1/users/me/sessions/:id", "DELETE", "404")
	wantRoute("/v1/users/me", "GET", "200")
	wantRoute("/v1/auth/login", "POST", "200")
	for _, id := range []string{otherSID, unknownSID, strayID, "secret-in-query"} {
		if strings.Contains(text, id) {
			t.Errorf("metrics contain the raw value %s", id)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "no-such-route") {
			t.Errorf("an unmatched path became a label: %s", l)
		}
	}
}
