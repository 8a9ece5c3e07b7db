package keyring

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseKeyringRejectsBadSpecs(t *testing.T) {
	key := randomKey()
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name, spec string
	}{
		{"empty", ""},
		{"only commas and blanks", " , ,"},
		{"no colon", key},
		{"empty kid", ":" + key},
		{"kid too long", strings.Repeat("k", 65) + ":" + key},
		{"not base64", "a:!!!not-base64!!!"},
		{"16-byte key", "a:" + short},
		{"64-byte key", "a:" + base64.StdEncoding.EncodeToString(make([]byte, 64))},
		{"kid given twice", "a:" + key + ",a:" + randomKey()},
		{"a bad second key", "a:" + key + ",b:" + short},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse(tt.spec)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.spec, k)
			}
			// The error may name a kid, never key material.
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), short) {
				t.Fatalf("the error repeats key material: %v", err)
			}
		})
	}
}

func TestParseKeyringAcceptsEveryBase64Flavour(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb}, 32) // encodes with + and / (or - and _)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		k, err := Parse("dev:" + enc.EncodeToString(raw) + " ,  ")
		if err != nil {
			t.Fatalf("ParseKeyring: %v", err)
		}
		s, err := k.Seal([]byte("x"), "ev")
		if err != nil || s.KID != "dev" {
			t.Fatalf("Seal = %+v, %v", s, err)
		}
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	k, _ := testKeyring(t, "k1")
	for _, plain := range [][]byte{[]byte("a raw reset token"), {}, bytes.Repeat([]byte{0}, 4096)} {
		s, err := k.Seal(plain, "event-1")
		if err != nil {
			t.Fatal(err)
		}
		if s.KID != "k1" || len(s.Nonce) != 12 || len(s.Ciphertext) != len(plain)+16 {
			t.Fatalf("sealed = kid %q, %d-byte nonce, %d-byte ct", s.KID, len(s.Nonce), len(s.Ciphertext))
		}
		if len(plain) > 0 && bytes.Contains(s.Ciphertext, plain) {
			t.Fatal("the ciphertext holds the plaintext")
		}
		got, err := k.Open(s, "event-1")
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	// Two seals of one value differ (a fresh nonce each time).
	a, _ := k.Seal([]byte("same"), "e")
	b, _ := k.Seal([]byte("same"), "e")
	if bytes.Equal(a.Nonce, b.Nonce) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Fatal("two seals share a nonce")
	}
}

func TestSealedJSONShape(t *testing.T) {
	k, _ := testKeyring(t, "k1")
	s, _ := k.Seal([]byte("tok"), "e")
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if len(m) != 3 || m["kid"] != "k1" || m["nonce"] == nil || m["ct"] == nil {
		t.Fatalf("sealed JSON = %s, want {kid, nonce, ct}", b)
	}
	if _, err := base64.StdEncoding.DecodeString(m["ct"].(string)); err != nil {
		t.Fatalf("ct is not standard base64: %s", b)
	}
	var back Sealed
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Open(back, "e"); err != nil || string(got) != "tok" {
		t.Fatalf("Open after a JSON round trip = %q, %v", got, err)
	}
}

func TestOpenFailsOutsideItsEvent(t *testing.T) {
	k, _ := testKeyring(t, "k1")
	other, _ := testKeyring(t, "k1") // the same kid, another key
	s, _ := k.Seal([]byte("token"), "event-1")
	flip := func(b []byte) []byte { c := bytes.Clone(b); c[0] ^= 1; return c }
	tests := []struct {
		name    string
		keys    *Keyring
		sealed  Sealed
		eventID string
		want    error // nil: any error
	}{
		{"another event id (AAD)", k, s, "event-2", nil},
		{"an empty event id", k, s, "", nil},
		{"another key under the same kid", other, s, "event-1", nil},
		{"an unknown kid", k, Sealed{KID: "k9", Nonce: s.Nonce, Ciphertext: s.Ciphertext}, "event-1", ErrUnknownKey},
		{"a flipped ciphertext bit", k, Sealed{KID: s.KID, Nonce: s.Nonce, Ciphertext: flip(s.Ciphertext)}, "event-1", nil},
		{"a flipped nonce bit", k, Sealed{KID: s.KID, Nonce: flip(s.Nonce), Ciphertext: s.Ciphertext}, "event-1", nil},
		{"a short nonce", k, Sealed{KID: s.KID, Nonce: s.Nonce[:4], Ciphertext: s.Ciphertext}, "event-1", nil},
		{"no ciphertext", k, Sealed{KID: s.KID, Nonce: s.Nonce}, "event-1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keys.Open(tt.sealed, tt.eventID)
			if err == nil {
				t.Fatalf("Open = %q, want an error", got)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey := "old:" + randomKey()
	before, err := Parse(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealedBefore, _ := before.Seal([]byte("issued before the rotation"), "e1")

	// Rotation: the new key is prepended; it seals, the old one still opens.
	newKey := "new:" + randomKey()
	after, err := Parse(newKey + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := after.Open(sealedBefore, "e1"); err != nil || string(got) != "issued before the rotation" {
		t.Fatalf("a value sealed by the old key: Open = %q, %v", got, err)
	}
	sealedAfter, _ := after.Seal([]byte("issued after"), "e2")
	if sealedAfter.KID != "new" {
		t.Fatalf("sealed with %q, want the first key", sealedAfter.KID)
	}
	// A consumer that has not got the new key yet cannot open it, and says why.
	if _, err := before.Open(sealedAfter, "e2"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with a keyring lacking the key = %v, want ErrUnknownKey", err)
	}
	// Once the old key is dropped, what it sealed no longer opens.
	dropped, _ := Parse(newKey)
	if _, err := dropped.Open(sealedBefore, "e1"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open after dropping the old key = %v, want ErrUnknownKey", err)
	}
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func testKeyring(t testing.TB, kids ...string) (*Keyring, string) {
	t.Helper()
	spec := ""
	for i, kid := range kids {
		if i > 0 {
			spec += ","
		}
		spec += kid + ":" + randomKey()
	}
	k, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return k, spec
}
