package token

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to a Verifier holding real keys of every
// algorithm. Nothing the fuzzer makes can carry a valid signature, so every
// input but the genuine tokens issued here must be refused, with an error
// wrapping ErrInvalidToken that does not echo the token.
//
// The kids are fixed ("ed", "es", "rs"), so the seeds in
// testdata/fuzz/FuzzVerify, signed by other keys under those kids, get past
// the header checks to the signature check.
func FuzzVerify(f *testing.F) {
	now := time.Now().Truncate(time.Second)
	clock := WithClock(func() time.Time { return now })
	all := f.TempDir()
	genuine := map[string]bool{}
	for kid, alg := range map[string]string{"ed": AlgEdDSA, "es": AlgES256, "rs": AlgRS256} {
		// One directory per key to issue with it, plus a copy in the
		// directory the verifier reads.
		dir := f.TempDir()
		generated, err := GenerateKey(dir, alg, now)
		if err != nil {
			f.Fatal(err)
		}
		path := filepath.Join(dir, kid+keyExt)
		if err := os.Rename(filepath.Join(dir, generated+keyExt), path); err != nil {
			f.Fatal(err)
		}
		pemBytes, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(all, kid+keyExt), pemBytes, 0o600); err != nil {
			f.Fatal(err)
		}
		ks, err := LoadKeySet(dir, clock)
		if err != nil {
			f.Fatal(err)
		}
		raw, _, err := NewIssuer(ks, testIss, testAud, time.Hour, clock).Issue("user-1", "sess-1", time.Time{}, []string{"admin"}, []string{"pwd"})
		if err != nil {
			f.Fatal(err)
		}
		genuine[raw] = true
	}
	ks, err := LoadKeySet(all, clock)
	if err != nil {
		f.Fatal(err)
	}
	v := NewVerifier(ks, testIss, testAud, clock)

	for raw := range genuine {
		// The control: the verifier does accept a real token, so the
		// refusals below are not vacuous.
		if _, err := v.Verify(raw); err != nil {
			f.Fatalf("genuine token refused: %v", err)
		}
		f.Add(raw)
		parts := strings.Split(raw, ".")
		h, p, s := parts[0], parts[1], parts[2]
		f.Add(h + "." + p + ".")                                                           // signature stripped
		f.Add(h + "." + p + "." + flipLast(s))                                             // signature bit flipped
		f.Add(h + "." + flipLast(p) + "." + s)                                             // payload changed
		f.Add(h + "." + p + "." + s + "=")                                                 // padded
		f.Add(h + "." + p + "." + s + "." + s)                                             // four segments
		f.Add(h + "." + p + "." + s[:len(s)/2])                                            // signature cut
		f.Add(h + ".." + s)                                                                // no payload
		f.Add(b64("{\"alg\":\"none\",\"kid\":\"ed\",\"typ\":\"at+jwt\"}") + "." + p + ".") // alg none
		f.Add(b64("{\"alg\":\"HS256\",\"kid\":\"rs\",\"typ\":\"at+jwt\"}") + "." + p + "." + s)
		f.Add(b64("{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"typ\":\"at+jwt\",\"jku\":\"http://127.0.0.1:1/\"}") + "." + p + "." + s)
	}
	for _, s := range []string{
		"", ".", "..", "a.b.c", "a.b.c.d", "...",
		strings.Repeat(".", 100), strings.Repeat(".", MaxTokenSize+1), strings.Repeat("a.", MaxTokenSize/2),
		"eyJ.eyJ.", "e30.e30.", "bnVsbA.bnVsbA.", // {} and null segments
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := v.Verify(raw)
		if genuine[raw] {
			if err != nil || claims == nil {
				t.Fatalf("genuine token refused: %v", err)
			}
			return
		}
		if err == nil || claims != nil {
			t.Fatalf("Verify accepted a token without a valid signature: %q → %+v", raw, claims)
		}
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("error %v does not wrap ErrInvalidToken", err)
		}
		// Error messages hold no dots, so a string with two cannot appear in
		// one by chance; long segments are as unlikely to.
		msg := err.Error()
		if strings.Count(raw, ".") == 2 && strings.Contains(msg, raw) {
			t.Fatalf("error echoes the token: %v", err)
		}
		for seg := range strings.SplitSeq(raw, ".") {
			if len(seg) >= 24 && strings.Contains(msg, seg) {
				t.Fatalf("error echoes a token segment %q: %v", seg, err)
			}
		}
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// flipLast replaces the last character of a base64url segment with another.
func flipLast(s string) string {
	if s == "" {
		return "A"
	}
	c := s[len(s)-1]
	switch {
	case c == 'A':
		c = 'B'
	default:
		c = 'A'
	}
	return s[:len(s)-1] + string(c)
}
