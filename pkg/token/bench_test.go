package token

import (
	"testing"
	"time"
)

func benchKeys(b *testing.B, alg string) (*Issuer, *KeySet) {
	b.Helper()
	dir := b.TempDir()
	if _, err := GenerateKey(dir, alg, time.Now().Add(-time.Hour)); err != nil {
		b.Fatal(err)
	}
	ks, err := LoadKeySet(dir)
	if err != nil {
		b.Fatal(err)
	}
	return NewIssuer(ks, testIss, testAud, 15*time.Minute), ks
}

func BenchmarkIssueEdDSA(b *testing.B) {
	iss, _ := benchKeys(b, AlgEdDSA)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Issue("8f14e45f-ceea-467f-a0e6-2b4c1c9a7b10", "c9f0f895-fb98-4b91-9d2c-6a8d1e0a3f11", time.Time{},
			[]string{"user"}, []string{"pwd"}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerify(b *testing.B, opts ...Option) {
	iss, ks := benchKeys(b, AlgEdDSA)
	raw, _, err := iss.Issue("8f14e45f-ceea-467f-a0e6-2b4c1c9a7b10", "c9f0f895-fb98-4b91-9d2c-6a8d1e0a3f11", time.Time{},
		[]string{"user"}, []string{"pwd"})
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(ks, testIss, testAud, opts...)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyEdDSA is the full check: header, signature, claims.
func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b) }

// BenchmarkVerifyEdDSACached is a token seen before: SHA-256, a map lookup, a copy.
func BenchmarkVerifyEdDSACached(b *testing.B) { benchVerify(b, WithVerifiedCache(10000)) }
