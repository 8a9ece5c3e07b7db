package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLoadKeySetPEMKinds(t *testing.T) {
	mustDER := func(der []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	ec := newSigner(t, AlgES256).(*ecdsa.PrivateKey)
	rsaKey, _ := rsaKeys()
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: mustDER(x509.MarshalECPrivateKey(ec))})

	tests := []struct {
		name    string
		pem     []byte
		wantAlg string
	}{
		{"pkcs8-ed25519", pkcs8PEM(t, newSigner(t, AlgEdDSA)), AlgEdDSA},
		{"pkcs8-p256", pkcs8PEM(t, ec), AlgES256},
		{"pkcs8-rsa", pkcs8PEM(t, rsaKey), AlgRS256},
		{"sec1-p256", sec1, AlgES256},
		{"sec1-with-ec-parameters", append(ecParams, sec1...), AlgES256},
		{"pkcs1-rsa", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), AlgRS256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKey(t, dir, tt.name+".pem", tt.pem, time.Now())
			ks, err := LoadKeySet(dir)
			if err != nil {
				t.Fatalf("LoadKeySet: %v", err)
			}
			kid, alg := ks.Signing()
			if kid != tt.name || alg != tt.wantAlg {
				t.Errorf("Signing() = %q, %q; want %q, %q", kid, alg, tt.name, tt.wantAlg)
			}
		})
	}
}

func TestLoadKeySetErrors(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := pkcs8PEM(t, newSigner(t, AlgEdDSA))

	tests := []struct {
		name  string
		files map[string][]byte
		want  []string // substrings of the error; "$DIR" is the key dir
	}{
		{"rsa-1024-pkcs8", map[string][]byte{"weak.pem": pkcs8PEM(t, rsa1024)}, []string{"weak.pem", "1024"}},
		{"rsa-1024-pkcs1", map[string][]byte{"weak1.pem": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa1024)})}, []string{"weak1.pem", "2048"}},
		{"p384", map[string][]byte{"p384.pem": pkcs8PEM(t, p384)}, []string{"p384.pem", "P-384"}},
		{"not-pem", map[string][]byte{"junk.pem": []byte("hello")}, []string{"junk.pem"}},
		{"certificate-block", map[string][]byte{"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})}, []string{"cert.pem", "CERTIFICATE"}},
		{"corrupt-pkcs8", map[string][]byte{"bad.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})}, []string{"bad.pem"}},
		{"one-bad-among-good", map[string][]byte{"good.pem": good, "bad.pem": []byte("x")}, []string{"bad.pem"}},
		{"empty-dir", nil, []string{"$DIR"}},
		{"only-non-pem", map[string][]byte{"key.txt": good, "README": []byte("x")}, []string{"$DIR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				writeKey(t, dir, name, data, time.Now())
			}
			ks, err := LoadKeySet(dir)
			if err == nil {
				t.Fatalf("LoadKeySet succeeded (signing %v), want error", ks)
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "$DIR", dir)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	t.Run("missing-dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		if _, err := LoadKeySet(dir); err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("err = %v, want error naming %s", err, dir)
		}
	})
}

func TestLoadKeySetIgnoresNonKeys(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, dir, "real.pem", pkcs8PEM(t, newSigner(t, AlgEdDSA)), time.Now())
	writeKey(t, dir, "notes.txt", []byte("not a key"), time.Now())
	writeKey(t, dir, ".key-123.tmp", []byte("half a ke"), time.Now())
	if err := os.Mkdir(filepath.Join(dir, "old.pem"), 0o700); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ks.state.Load().byKID); got != 1 {
		t.Fatalf("loaded %d keys, want 1", got)
	}
	if kid, _ := ks.Signing(); kid != "real" {
		t.Fatalf("signing kid %q, want real", kid)
	}
}

var kidPattern = regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]{8}$`)

func TestEnsureKey(t *testing.T) {
	now := time.Date(2031, 2, 3, 4, 5, 6, 0, time.FixedZone("X", 3600))
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys", "nested")
			created, err := EnsureKey(dir, alg, now)
			if err != nil || !created {
				t.Fatalf("EnsureKey = %v, %v; want true, nil", created, err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o700 {
				t.Errorf("dir mode %o, want 700", perm)
			}
			files := pemFiles(t, dir)
			if len(files) != 1 {
				t.Fatalf("dir holds %v, want exactly one .pem", files)
			}
			kid := strings.TrimSuffix(files[0], ".pem")
			if !kidPattern.MatchString(kid) || !strings.HasPrefix(kid, "20310203T030506Z-") {
				t.Errorf("kid %q does not look like UTC-time-random", kid)
			}
			fi, err = os.Stat(filepath.Join(dir, files[0]))
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("key mode %o, want 600", perm)
			}
			raw, err := os.ReadFile(filepath.Join(dir, files[0]))
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(raw); b == nil || b.Type != "PRIVATE KEY" {
				t.Errorf("key is not PKCS#8 PEM")
			}

			created, err = EnsureKey(dir, alg, now.Add(time.Hour))
			if err != nil || created {
				t.Fatalf("second EnsureKey = %v, %v; want false, nil", created, err)
			}
			if again := pemFiles(t, dir); len(again) != 1 || again[0] != files[0] {
				t.Fatalf("second EnsureKey changed the dir: %v", again)
			}

			ks, err := LoadKeySet(dir)
			if err != nil {
				t.Fatal(err)
			}
			if gotKid, gotAlg := ks.Signing(); gotKid != kid || gotAlg != alg {
				t.Errorf("Signing() = %q, %q; want %q, %q", gotKid, gotAlg, kid, alg)
			}
		})
	}

	t.Run("keeps-existing-key-of-other-alg", func(t *testing.T) {
		dir := t.TempDir()
		writeKey(t, dir, "ops.pem", pkcs8PEM(t, newSigner(t, AlgES256)), time.Now())
		if created, err := EnsureKey(dir, AlgEdDSA, now); err != nil || created {
			t.Fatalf("EnsureKey = %v, %v; want false, nil", created, err)
		}
	})
	t.Run("unsupported-alg", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := EnsureKey(dir, "HS256", now); err == nil {
			t.Fatal("EnsureKey accepted HS256")
		}
		if files := pemFiles(t, dir); len(files) != 0 {
			t.Fatalf("unsupported alg left files %v", files)
		}
	})
}

func TestGenerateKeyAlwaysAddsAndLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, err := GenerateKey(dir, AlgEdDSA, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey(dir, AlgEdDSA, now)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two keys share kid %q", a)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] == names[1] || !strings.HasSuffix(names[0], ".pem") || !strings.HasSuffix(names[1], ".pem") {
		t.Fatalf("dir holds %v, want exactly the two keys", names)
	}
}

func pemFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pem") {
			out = append(out, e.Name())
		}
	}
	return out
}
