package token

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

const (
	testIss = "https://auth.example.test"
	testAud = "talentforge-api"
)

func TestIssueVerifyRoundTrip(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			kid, err := GenerateKey(dir, alg, t0)
			if err != nil {
				t.Fatal(err)
			}
			clock := newTestClock(t0.Add(123 * time.Millisecond))
			ks, err := LoadKeySet(dir, WithClock(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			iss := NewIssuer(ks, testIss, testAud, 15*time.Minute, WithClock(clock.Now))
			if iss.TTL() != 15*time.Minute {
				t.Errorf("TTL() = %v", iss.TTL())
			}
			roles := []string{"recruiter"}
			authTime := t0.Add(-3 * time.Hour)
			raw, issued, err := iss.Issue("user-42", "sess-7", authTime, roles, []string{"pwd", "otp"})
			if err != nil {
				t.Fatal(err)
			}
			roles[0] = "admin" // the issuer must not alias caller slices
			if issued.Roles[0] != "recruiter" {
				t.Errorf("issued claims alias the caller's roles slice")
			}

			h := headerOf(t, raw)
			if h["alg"] != alg || h["kid"] != kid || h["typ"] != "at+jwt" {
				t.Errorf("header = %v, want alg %s kid %s typ at+jwt", h, alg, kid)
			}
			p := payloadOf(t, raw)
			if p["iss"] != testIss || p["sub"] != "user-42" || p["sid"] != "sess-7" {
				t.Errorf("payload iss/sub/sid = %v/%v/%v", p["iss"], p["sub"], p["sid"])
			}
			if p["iat"] != float64(t0.Unix()) || p["exp"] != float64(t0.Add(15*time.Minute).Unix()) {
				t.Errorf("iat/exp = %v/%v, want %d/%d", p["iat"], p["exp"], t0.Unix(), t0.Add(15*time.Minute).Unix())
			}
			if p["auth_time"] != float64(authTime.Unix()) {
				t.Errorf("auth_time = %v, want %d", p["auth_time"], authTime.Unix())
			}
			if _, err := uuid.Parse(p["jti"].(string)); err != nil {
				t.Errorf("jti %v is not a UUID", p["jti"])
			}

			got, err := NewVerifier(ks, testIss, testAud, WithClock(clock.Now)).Verify(raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != "user-42" || got.SessionID != "sess-7" || got.ID != issued.ID ||
				strings.Join(got.Roles, ",") != "recruiter" || strings.Join(got.AMR, ",") != "pwd,otp" ||
				!got.ExpiresAt.Equal(issued.ExpiresAt.Time) || !got.IssuedAt.Equal(issued.IssuedAt.Time) ||
				len(got.Audience) != 1 || got.Audience[0] != testAud ||
				got.AuthTime == nil || !got.AuthTime.Equal(authTime.Truncate(time.Second)) {
				t.Errorf("verified claims %+v differ from issued %+v", got, issued)
			}
		})
	}

	t.Run("roles and amr never null", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := GenerateKey(dir, AlgEdDSA, t0); err != nil {
			t.Fatal(err)
		}
		ks, err := LoadKeySet(dir)
		if err != nil {
			t.Fatal(err)
		}
		raw, claims, err := NewIssuer(ks, testIss, testAud, time.Minute).Issue("u", "s", time.Time{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		seg := strings.Split(raw, ".")[1]
		b, _ := base64.RawURLEncoding.DecodeString(seg)
		if !strings.Contains(string(b), `"roles":[]`) || !strings.Contains(string(b), `"amr":[]`) {
			t.Errorf("payload %s lacks empty roles/amr arrays", b)
		}
		if claims.Roles == nil || claims.AMR == nil {
			t.Errorf("returned claims have nil roles/amr")
		}
	})

	t.Run("missing user or session refused", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := GenerateKey(dir, AlgEdDSA, t0); err != nil {
			t.Fatal(err)
		}
		ks, _ := LoadKeySet(dir)
		iss := NewIssuer(ks, testIss, testAud, time.Minute)
		if _, _, err := iss.Issue("", "s", time.Time{}, nil, nil); err == nil {
			t.Error("issued a token without sub")
		}
		if _, _, err := iss.Issue("u", "", time.Time{}, nil, nil); err == nil {
			t.Error("issued a token without sid")
		}
	})
}

// verifyFixture is a key dir with one key per alg whose private keys the
// test holds, so it can forge tokens that differ from valid ones in exactly
// one respect.
type verifyFixture struct {
	now  time.Time
	keys map[string]crypto.Signer // kid → key; kids "ed", "es", "rs"
	ver  *Verifier
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	f := &verifyFixture{now: t0, keys: map[string]crypto.Signer{}}
	dir := t.TempDir()
	for kid, alg := range map[string]string{"ed": AlgEdDSA, "es": AlgES256, "rs": AlgRS256} {
		k := newSigner(t, alg)
		f.keys[kid] = k
		writeKey(t, dir, kid+".pem", pkcs8PEM(t, k), t0.Add(-time.Hour))
	}
	clock := func() time.Time { return f.now }
	ks, err := LoadKeySet(dir, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	f.ver = NewVerifier(ks, testIss, testAud, WithClock(clock))
	return f
}

func (f *verifyFixture) header(kid string) map[string]any {
	alg := map[string]string{"ed": AlgEdDSA, "es": AlgES256, "rs": AlgRS256}[kid]
	return map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"}
}

func (f *verifyFixture) claims() map[string]any {
	return map[string]any{
		"iss":   testIss,
		"sub":   "user-1",
		"aud":   testAud,
		"exp":   f.now.Add(5 * time.Minute).Unix(),
		"iat":   f.now.Unix(),
		"jti":   "7f0c5a4e-0000-4000-8000-000000000001",
		"sid":   "sess-1",
		"roles": []string{"candidate"},
		"amr":   []string{"pwd"},
	}
}

// sign builds a compact JWS with exactly the given header and claims.
func sign(t *testing.T, header, claims map[string]any, method jwt.SigningMethod, key any) string {
	t.Helper()
	in := b64JSON(t, header) + "." + b64JSON(t, claims)
	sig, err := method.Sign(in, key)
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (f *verifyFixture) valid(t *testing.T, kid string, editHeader, editClaims func(map[string]any)) string {
	t.Helper()
	h, c := f.header(kid), f.claims()
	if editHeader != nil {
		editHeader(h)
	}
	if editClaims != nil {
		editClaims(c)
	}
	return sign(t, h, c, jwt.GetSigningMethod(f.header(kid)["alg"].(string)), f.keys[kid])
}

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func segmentJSON(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func headerOf(t *testing.T, raw string) map[string]any  { t.Helper(); return segmentJSON(t, raw, 0) }
func payloadOf(t *testing.T, raw string) map[string]any { t.Helper(); return segmentJSON(t, raw, 1) }

func set(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
func del(k string) func(map[string]any)        { return func(m map[string]any) { delete(m, k) } }

func TestVerify(t *testing.T) {
	f := newVerifyFixture(t)

	var canaryHits atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canaryHits.Add(1)
		http.Error(w, "should never be called", http.StatusTeapot)
	}))
	defer canary.Close()

	rsaPub := f.keys["rs"].Public().(*rsa.PublicKey)
	edPub := f.keys["ed"].Public().(ed25519.PublicKey)
	pkix := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	hmacWith := func(kid, alg string, secret []byte) string {
		h := f.header(kid)
		h["alg"] = alg
		return sign(t, h, f.claims(), jwt.GetSigningMethod(alg), secret)
	}
	unsigned := func(alg string) string {
		h := f.header("ed")
		h["alg"] = alg
		return b64JSON(t, h) + "." + b64JSON(t, f.claims()) + "."
	}
	// tamper re-encodes the payload of a genuine token but keeps its signature.
	tamper := func(kid string, edit func(map[string]any)) string {
		good := f.valid(t, kid, nil, nil)
		parts := strings.Split(good, ".")
		c := payloadOf(t, good)
		edit(c)
		return parts[0] + "." + b64JSON(t, c) + "." + parts[2]
	}
	foreignES := newSigner(t, AlgES256)
	_, foreignRS := rsaKeys()

	type tc struct {
		name string
		raw  string
		ok   bool
	}
	tests := []tc{
		// Controls: these must pass, or the rejections below prove nothing.
		{"valid EdDSA", f.valid(t, "ed", nil, nil), true},
		{"valid ES256", f.valid(t, "es", nil, nil), true},
		{"valid RS256", f.valid(t, "rs", nil, nil), true},
		{"typ in upper case", f.valid(t, "ed", set("typ", "AT+JWT"), nil), true},
		{"aud array containing ours", f.valid(t, "ed", nil, set("aud", []string{"other", testAud})), true},
		{"exp passed within leeway", f.valid(t, "ed", nil, set("exp", f.now.Add(-20*time.Second).Unix())), true},
		{"iat ahead within leeway", f.valid(t, "ed", nil, set("iat", f.now.Add(20*time.Second).Unix())), true},
		{"nbf ahead within leeway", f.valid(t, "ed", nil, set("nbf", f.now.Add(20*time.Second).Unix())), true},
		{"null roles", f.valid(t, "ed", nil, set("roles", nil)), true},

		// Shape.
		{"1 MB of dots", strings.Repeat(".", 1<<20), false},
		{"just over 8 KiB", f.valid(t, "ed", nil, set("pad", strings.Repeat("a", MaxTokenSize))), false},
		{"empty", "", false},
		{"two segments", strings.Join(strings.Split(f.valid(t, "ed", nil, nil), ".")[:2], "."), false},
		{"four segments", f.valid(t, "ed", nil, nil) + ".e30", false},
		{"header not base64", "!!!." + strings.SplitN(f.valid(t, "ed", nil, nil), ".", 2)[1], false},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + strings.SplitN(f.valid(t, "ed", nil, nil), ".", 2)[1], false},
		{"header JSON array", base64.RawURLEncoding.EncodeToString([]byte(`["alg"]`)) + "." + strings.SplitN(f.valid(t, "ed", nil, nil), ".", 2)[1], false},
		{"header null", base64.RawURLEncoding.EncodeToString([]byte(`null`)) + "." + strings.SplitN(f.valid(t, "ed", nil, nil), ".", 2)[1], false},
		{"payload not base64", func() string { p := strings.Split(f.valid(t, "ed", nil, nil), "."); return p[0] + ".%%%." + p[2] }(), false},
		{"signature not base64", func() string { p := strings.Split(f.valid(t, "ed", nil, nil), "."); return p[0] + "." + p[1] + ".%%%" }(), false},
		{"stripped signature", func() string { p := strings.Split(f.valid(t, "es", nil, nil), "."); return p[0] + "." + p[1] + "." }(), false},

		// typ: keeps refresh, ID, MFA and other JWTs out.
		{"typ JWT", f.valid(t, "ed", set("typ", "JWT"), nil), false},
		{"typ missing", f.valid(t, "ed", del("typ"), nil), false},
		{"typ not a string", f.valid(t, "ed", set("typ", 1), nil), false},

		// alg.
		{"alg none", unsigned("none"), false},
		{"alg None", unsigned("None"), false},
		{"alg NONE", unsigned("NONE"), false},
		{"alg missing", f.valid(t, "ed", del("alg"), nil), false},
		{"HS256 with RSA public key PEM (PKIX)", hmacWith("rs", "HS256", pemOf("PUBLIC KEY", pkix(rsaPub))), false},
		{"HS256 with RSA public key PEM (PKCS#1)", hmacWith("rs", "HS256", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(rsaPub))), false},
		{"HS256 with RSA public key DER", hmacWith("rs", "HS256", pkix(rsaPub)), false},
		{"HS256 with Ed25519 public key PEM", hmacWith("ed", "HS256", pemOf("PUBLIC KEY", pkix(edPub))), false},
		{"HS256 with raw Ed25519 public key", hmacWith("ed", "HS256", edPub), false},
		{"HS384 with RSA public key PEM", hmacWith("rs", "HS384", pemOf("PUBLIC KEY", pkix(rsaPub))), false},
		{"HS512 with RSA public key PEM", hmacWith("rs", "HS512", pemOf("PUBLIC KEY", pkix(rsaPub))), false},
		{"RS256 token claiming the ES256 kid", sign(t, map[string]any{"alg": "RS256", "kid": "es", "typ": "at+jwt"}, f.claims(), jwt.SigningMethodRS256, f.keys["rs"]), false},
		{"ES256 token claiming the EdDSA kid", sign(t, map[string]any{"alg": "ES256", "kid": "ed", "typ": "at+jwt"}, f.claims(), jwt.SigningMethodES256, f.keys["es"]), false},
		{"PS256 with the RSA key", sign(t, map[string]any{"alg": "PS256", "kid": "rs", "typ": "at+jwt"}, f.claims(), jwt.SigningMethodPS256, f.keys["rs"]), false},

		// Signature.
		{"tampered sub", tamper("ed", set("sub", "admin")), false},
		{"tampered roles", tamper("es", set("roles", []string{"candidate", "admin"})), false},
		{"tampered exp", tamper("rs", set("exp", f.now.Add(100*24*time.Hour).Unix())), false},
		{"foreign ES256 key with our kid", sign(t, f.header("es"), f.claims(), jwt.SigningMethodES256, foreignES), false},
		{"foreign RS256 key with our kid", sign(t, f.header("rs"), f.claims(), jwt.SigningMethodRS256, foreignRS), false},

		// kid: looked up in memory only.
		{"kid missing", f.valid(t, "ed", del("kid"), nil), false},
		{"kid empty", f.valid(t, "ed", set("kid", ""), nil), false},
		{"kid not a string", f.valid(t, "ed", set("kid", 7), nil), false},
		{"kid unknown", f.valid(t, "ed", set("kid", "2020-old"), nil), false},
		{"kid path traversal, real key", f.valid(t, "ed", set("kid", "../../../../dev/null"), nil), false},
		{"kid path traversal, HS256 empty secret", func() string {
			return sign(t, map[string]any{"alg": "HS256", "kid": "../../../../dev/null", "typ": "at+jwt"}, f.claims(), jwt.SigningMethodHS256, []byte{})
		}(), false},
		{"kid SQL", f.valid(t, "ed", set("kid", "x' UNION SELECT 'secret' --"), nil), false},
		{"kid 6 KB", f.valid(t, "ed", set("kid", strings.Repeat("k", 6<<10)), nil), false},
		{"kid 10 KB", f.valid(t, "ed", set("kid", strings.Repeat("k", 10<<10)), nil), false},

		// Key material named by the token: never fetched, never trusted.
		{"jku header", f.valid(t, "ed", set("jku", canary.URL+"/jwks.json"), nil), false},
		{"x5u header", f.valid(t, "es", set("x5u", canary.URL+"/cert.pem"), nil), false},
		{"jwk header", f.valid(t, "es", set("jwk", map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "es"}), nil), false},
		{"x5c header", f.valid(t, "rs", set("x5c", []string{base64.StdEncoding.EncodeToString(pkix(rsaPub))}), nil), false},
		{"jku with foreign key", sign(t, map[string]any{"alg": "ES256", "kid": "es", "typ": "at+jwt", "jku": canary.URL}, f.claims(), jwt.SigningMethodES256, foreignES), false},
		{"crit header", f.valid(t, "ed", set("crit", []string{"exp"}), nil), false},

		// Claims.
		{"exp passed beyond leeway", f.valid(t, "ed", nil, set("exp", f.now.Add(-31*time.Second).Unix())), false},
		{"exp missing", f.valid(t, "ed", nil, del("exp")), false},
		{"exp not a number", f.valid(t, "ed", nil, set("exp", "tomorrow")), false},
		{"nbf in the future", f.valid(t, "ed", nil, set("nbf", f.now.Add(time.Minute).Unix())), false},
		{"iat in the future", f.valid(t, "ed", nil, set("iat", f.now.Add(time.Minute).Unix())), false},
		{"iss wrong", f.valid(t, "ed", nil, set("iss", "https://evil.test")), false},
		{"iss missing", f.valid(t, "ed", nil, del("iss")), false},
		{"aud wrong", f.valid(t, "ed", nil, set("aud", "other-api")), false},
		{"aud missing", f.valid(t, "ed", nil, del("aud")), false},
		{"aud empty array", f.valid(t, "ed", nil, set("aud", []string{})), false},
		{"aud empty string", f.valid(t, "ed", nil, set("aud", "")), false},
		{"aud array without ours", f.valid(t, "ed", nil, set("aud", []string{"a", "b"})), false},
		{"sub missing", f.valid(t, "ed", nil, del("sub")), false},
		{"sid missing", f.valid(t, "ed", nil, del("sid")), false},
		{"sid empty", f.valid(t, "ed", nil, set("sid", "")), false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := f.ver.Verify(tt.raw)
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.Subject != "user-1" || claims.SessionID != "sess-1" || claims.Roles == nil {
					t.Fatalf("claims = %+v", claims)
				}
				return
			}
			if err == nil {
				t.Fatalf("forged token accepted: %+v", claims)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if claims != nil {
				t.Errorf("claims returned alongside error")
			}
			msg := err.Error()
			if len(tt.raw) > 8 && strings.Contains(msg, tt.raw) || len(msg) > 200 {
				t.Errorf("error text echoes input or is unbounded (%d bytes): %.300s", len(msg), msg)
			}
		})
	}
	if n := canaryHits.Load(); n != 0 {
		t.Errorf("verifier made %d requests to URLs named in tokens", n)
	}
}

func TestVerifyIssuerAudienceRequired(t *testing.T) {
	f := newVerifyFixture(t)
	raw := f.valid(t, "ed", nil, nil)
	clock := WithClock(func() time.Time { return f.now })
	if _, err := NewVerifier(f.ver.keys, testIss, testAud, clock).Verify(raw); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	for name, v := range map[string]*Verifier{
		"no issuer":   NewVerifier(f.ver.keys, "", testAud, clock),
		"no audience": NewVerifier(f.ver.keys, testIss, "", clock),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(raw); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("misconfigured verifier accepted a token: %v", err)
			}
		})
	}
}

func TestVerifyLeewayOption(t *testing.T) {
	f := newVerifyFixture(t)
	raw := f.valid(t, "ed", nil, set("exp", f.now.Add(-20*time.Second).Unix()))
	clock := func() time.Time { return f.now }
	tests := []struct {
		leeway time.Duration
		ok     bool
	}{
		{0, false},
		{10 * time.Second, false},
		{30 * time.Second, true},
	}
	for _, tt := range tests {
		v := NewVerifier(f.ver.keys, testIss, testAud, WithClock(clock), WithLeeway(tt.leeway))
		if _, err := v.Verify(raw); (err == nil) != tt.ok {
			t.Errorf("leeway %v: err = %v, want ok=%v", tt.leeway, err, tt.ok)
		}
	}
}
