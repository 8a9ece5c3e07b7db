package token

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func extIssuer(t *testing.T) (*Issuer, *Verifier) {
	t.Helper()
	dir := t.TempDir()
	if _, err := GenerateKey(dir, AlgEdDSA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	return NewIssuer(ks, testIss, testAud, 15*time.Minute), NewVerifier(ks, testIss, testAud, WithVerifiedCache(16))
}

// Draft then Sign is Issue with room in between: the hook's claims ride under ext, the
// verifier hands them back, and a draft signed without ext has no ext claim at all.
func TestDraftSignCarriesExt(t *testing.T) {
	iss, ver := extIssuer(t)
	draft, err := iss.Draft("user-1", "sess-1", time.Now(), []string{"user"}, []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := iss.Sign(draft)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := payloadOf(t, plain)["ext"]; ok {
		t.Fatal("a token without hook claims carries an ext claim")
	}
	draft.Ext = map[string]any{"tenant": "acme", "plan": json.Number("3"), "flags": []any{"a", "b"}}
	raw, err := iss.Sign(draft)
	if err != nil {
		t.Fatal(err)
	}
	p := payloadOf(t, raw)
	ext, _ := p["ext"].(map[string]any)
	if ext["tenant"] != "acme" || ext["plan"] != float64(3) || p["sub"] != "user-1" || p["jti"] != draft.ID {
		t.Fatalf("payload = %v", p)
	}
	for range 2 { // the second answer comes from the verified cache
		got, err := ver.Verify(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.Ext["tenant"] != "acme" || got.Ext["plan"] != json.Number("3") || got.Subject != "user-1" {
			t.Fatalf("verified claims = %+v", got)
		}
	}
}

// A token the verifier would refuse for its size is never signed.
func TestSignRefusesOversizedTokens(t *testing.T) {
	iss, _ := extIssuer(t)
	draft, err := iss.Draft("user-1", "sess-1", time.Time{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	draft.Ext = map[string]any{"blob": strings.Repeat("x", MaxTokenSize)}
	if _, err := iss.Sign(draft); err == nil {
		t.Fatal("signed a token over MaxTokenSize")
	}
}
