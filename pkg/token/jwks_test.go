package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"
)

func TestJWKS(t *testing.T) {
	dir := t.TempDir()
	signers := map[string]struct {
		alg, kty, crv string
	}{
		"ed": {AlgEdDSA, "OKP", "Ed25519"},
		"es": {AlgES256, "EC", "P-256"},
		"rs": {AlgRS256, "RSA", ""},
	}
	pubs := map[string]any{}
	for kid, s := range signers {
		k := newSigner(t, s.alg)
		pubs[kid] = k.Public()
		writeKey(t, dir, kid+".pem", pkcs8PEM(t, k), time.Now())
	}
	ks, err := LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}

	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS is not {keys:[...]} of strings: %v\n%s", err, raw)
	}
	if len(set.Keys) != len(signers) {
		t.Fatalf("JWKS has %d keys, want %d", len(set.Keys), len(signers))
	}
	b64 := func(s string) []byte {
		t.Helper()
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("bad base64url %q: %v", s, err)
		}
		return b
	}
	for _, k := range set.Keys {
		kid := k["kid"]
		want, ok := signers[kid]
		if !ok {
			t.Errorf("unexpected kid %q", kid)
			continue
		}
		delete(signers, kid)
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("kid %s: private member %q published", kid, private)
			}
		}
		if k["kty"] != want.kty || k["crv"] != want.crv || k["alg"] != want.alg || k["use"] != "sig" {
			t.Errorf("kid %s: kty/crv/alg/use = %q/%q/%q/%q, want %q/%q/%q/sig",
				kid, k["kty"], k["crv"], k["alg"], k["use"], want.kty, want.crv, want.alg)
		}
		// The published material must be exactly the key's public half.
		switch pub := pubs[kid].(type) {
		case ed25519.PublicKey:
			if !bytes.Equal(b64(k["x"]), pub) {
				t.Errorf("kid %s: x does not match public key", kid)
			}
		case *ecdsa.PublicKey:
			x, y := b64(k["x"]), b64(k["y"])
			if len(x) != 32 || len(y) != 32 {
				t.Errorf("kid %s: coordinates %d/%d bytes, want 32", kid, len(x), len(y))
			}
			got, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil || !got.Equal(pub) {
				t.Errorf("kid %s: x/y do not match public key (%v)", kid, err)
			}
		case *rsa.PublicKey:
			n := new(big.Int).SetBytes(b64(k["n"]))
			e := new(big.Int).SetBytes(b64(k["e"]))
			if n.Cmp(pub.N) != 0 || e.Int64() != int64(pub.E) {
				t.Errorf("kid %s: n/e do not match public key", kid)
			}
		}
	}
	if len(signers) != 0 {
		t.Errorf("kids missing from JWKS: %v", signers)
	}

	// Callers get their own copy.
	raw[0] = 'X'
	if again, _ := ks.JWKS(); again[0] != '{' {
		t.Error("JWKS returned shared, mutable bytes")
	}
}
