package token

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func cachedVerifier(t *testing.T, size int) (dir, kid string, clock *testClock, ks *KeySet, iss *Issuer, v *Verifier) {
	t.Helper()
	dir = t.TempDir()
	kid, err := GenerateKey(dir, AlgEdDSA, t0)
	if err != nil {
		t.Fatal(err)
	}
	clock = newTestClock(t0.Add(time.Second))
	if ks, err = LoadKeySet(dir, WithClock(clock.Now)); err != nil {
		t.Fatal(err)
	}
	iss = NewIssuer(ks, testIss, testAud, time.Minute, WithClock(clock.Now))
	v = NewVerifier(ks, testIss, testAud, WithClock(clock.Now), WithLeeway(0), WithVerifiedCache(size))
	return dir, kid, clock, ks, iss, v
}

func TestVerifiedCacheHitReturnsCopy(t *testing.T) {
	_, _, _, _, iss, v := cachedVerifier(t, 8)
	raw, _, err := iss.Issue("u1", "s1", time.Time{}, []string{"user"}, []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if v.cache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", v.cache.len())
	}
	a.Roles[0] = "admin" // a caller's change must not reach the cache
	b, err := v.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.Roles[0] != "user" || b.Subject != "u1" || b.SessionID != "s1" {
		t.Fatalf("cached claims = %+v", b)
	}
	// A token differing in one byte of the signature is checked in full.
	tampered := raw[:len(raw)-2] + map[bool]string{true: "AA", false: "AB"}[!strings.HasSuffix(raw, "AA")]
	if _, err := v.Verify(tampered); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered token: %v", err)
	}
}

func TestVerifiedCacheNeverOutlivesExp(t *testing.T) {
	_, _, clock, _, iss, v := cachedVerifier(t, 8)
	raw, c, err := iss.Issue("u1", "s1", time.Time{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(raw); err != nil {
		t.Fatal(err)
	}
	clock.Set(c.ExpiresAt.Add(time.Second))
	if _, err := v.Verify(raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token passed: %v", err)
	}
	if v.cache.len() != 0 {
		t.Fatalf("expired entry kept")
	}
}

func TestVerifiedCacheDropsRemovedKey(t *testing.T) {
	dir, kid, _, ks, iss, v := cachedVerifier(t, 8)
	raw, _, err := iss.Issue("u1", "s1", time.Time{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(raw); err != nil {
		t.Fatal(err)
	}
	// A second key keeps the set loadable; the first one goes.
	if _, err := GenerateKey(dir, AlgEdDSA, t0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, kid+".pem")); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a removed key passed: %v", err)
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	_, _, _, _, iss, v := cachedVerifier(t, 32)
	for i := range 200 {
		raw, _, err := iss.Issue("u1", "s"+string(rune('a'+i%26))+time.Duration(i).String(), time.Time{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n > 32+cacheShards {
		t.Fatalf("cache holds %d entries, bound 32", n)
	}
}
