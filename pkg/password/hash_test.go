package password

import (
	"context"
	"crypto/subtle"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// fast keeps argon2id cheap in tests; timing is not what is tested here.
var fast = Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func newFast(t *testing.T) *Hasher {
	t.Helper()
	return NewHasher(fast, 4, time.Second)
}

func mustHash(t *testing.T, h *Hasher, pw string) string {
	t.Helper()
	enc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("Hash(%q): %v", pw, err)
	}
	return enc
}

func TestHashVerify(t *testing.T) {
	h := newFast(t)
	ctx := context.Background()
	nfc, nfd := "ma\u00f1ana", "man\u0303ana"
	tests := []struct {
		name          string
		stored, given string
		want          bool
	}{
		{"round trip", "correct horse battery staple", "correct horse battery staple", true},
		{"wrong password", "correct horse battery staple", "correct horse battery stapler", false},
		{"64 ascii", strings.Repeat("a", 64), strings.Repeat("a", 64), true},
		{"64 emoji", strings.Repeat("😀", 64), strings.Repeat("😀", 64), true},
		{"64 emoji vs 63", strings.Repeat("😀", 64), strings.Repeat("😀", 63), false},
		{"NFC stored, NFD given", nfc, nfd, true},
		{"NFD stored, NFC given", nfd, nfc, true},
		{"fullwidth is NFKC-equal", "ｐａｓｓ", "pass", true},
		{"spaces are not trimmed", " pass word ", "pass word", false},
		{"inner space matters", "pass word", "password", false},
		{"case matters", "Password", "password", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := mustHash(t, h, tt.stored)
			ok, rehash, err := h.Verify(ctx, tt.given, enc)
			if err != nil || ok != tt.want || rehash {
				t.Fatalf("Verify = %v, %v, %v; want %v, false, nil", ok, rehash, err, tt.want)
			}
		})
	}
}

func TestHashIsSalted(t *testing.T) {
	h := newFast(t)
	if a, b := mustHash(t, h, "same"), mustHash(t, h, "same"); a == b {
		t.Fatalf("two hashes of one password are equal: %s", a)
	}
}

func TestHashPHCFormat(t *testing.T) {
	for _, tt := range []struct {
		name   string
		p      Params
		prefix string
	}{
		{"fast", fast, "$argon2id$v=19$m=64,t=1,p=1$"},
		{"default", DefaultParams(), "$argon2id$v=19$m=19456,t=2,p=1$"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			enc := mustHash(t, NewHasher(tt.p, 1, 0), "hunter2hunter2")
			// 16-byte salt and 32-byte key in unpadded standard base64.
			re := regexp.MustCompile(`^` + regexp.QuoteMeta(tt.prefix) + `[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
			if !re.MatchString(enc) {
				t.Fatalf("hash %q does not match %s", enc, re)
			}
			p, salt, key, err := parseArgon2id(enc)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.p
			want.BcryptCost = 0
			if p != want {
				t.Fatalf("parsed params %+v, want %+v", p, want)
			}
			// Interoperability: the key is plain argon2id over the NFKC password.
			ref := argon2.IDKey([]byte("hunter2hunter2"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
			if subtle.ConstantTimeCompare(ref, key) != 1 {
				t.Fatal("stored key differs from reference argon2id")
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	ctx := context.Background()
	enc := mustHash(t, newFast(t), "hunter2hunter2")
	with := func(f func(*Params)) Params { p := fast; f(&p); return p }
	tests := []struct {
		name       string
		p          Params
		pw         string
		ok, rehash bool
	}{
		{"same params", fast, "hunter2hunter2", true, false},
		{"memory", with(func(p *Params) { p.Memory = 128 }), "hunter2hunter2", true, true},
		{"iterations", with(func(p *Params) { p.Iterations = 2 }), "hunter2hunter2", true, true},
		{"parallelism", with(func(p *Params) { p.Parallelism = 2 }), "hunter2hunter2", true, true},
		{"key length", with(func(p *Params) { p.KeyLen = 64 }), "hunter2hunter2", true, true},
		{"salt length", with(func(p *Params) { p.SaltLen = 32 }), "hunter2hunter2", true, true},
		{"wrong password never asks for rehash", with(func(p *Params) { p.Memory = 128 }), "nope", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := NewHasher(tt.p, 1, 0).Verify(ctx, tt.pw, enc)
			if err != nil || ok != tt.ok || rehash != tt.rehash {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.ok, tt.rehash)
			}
		})
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h := newFast(t)
	ctx := context.Background()
	gen := func(pw string) string {
		b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	legacy := gen("hunter2hunter2")
	a72 := strings.Repeat("A", 72)
	// What a truncating implementation stored for a72+"x".
	truncated := gen(a72)
	tests := []struct {
		name       string
		stored, pw string
		ok, rehash bool
	}{
		{"2a", legacy, "hunter2hunter2", true, true},
		{"2b", "$2b$" + legacy[4:], "hunter2hunter2", true, true},
		{"2y", "$2y$" + legacy[4:], "hunter2hunter2", true, true},
		{"wrong password", legacy, "hunter3hunter3", false, false},
		{"72 bytes", truncated, a72, true, true},
		{"over 72 bytes never matches on a prefix", truncated, a72 + "y", false, false},
		{"over 72 bytes after NFKC", truncated, strings.Repeat("Ａ", 72) + "y", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, tt.pw, tt.stored)
			if err != nil || ok != tt.ok || rehash != tt.rehash {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.ok, tt.rehash)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := newFast(t)
	const salt, key = "c29tZXNhbHRzb21lc2FsdA", "ZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWY"
	argon := func(ver, params, s, k string) string {
		return "$argon2id$" + ver + "$" + params + "$" + s + "$" + k
	}
	valid := argon("v=19", "m=64,t=1,p=1", salt, key)
	if _, _, err := h.Verify(context.Background(), "x", valid); err != nil {
		t.Fatalf("control hash rejected: %v", err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, enc string }{
		{"empty", ""},
		{"plaintext", "hunter2"},
		{"bare prefix", "$argon2id$"},
		{"argon2i", strings.Replace(valid, "argon2id", "argon2i", 1)},
		{"missing version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", argon("v=16", "m=64,t=1,p=1", salt, key)},
		{"extra field", valid + "$x"},
		{"params order", argon("v=19", "t=1,m=64,p=1", salt, key)},
		{"params missing", argon("v=19", "m=64,t=1", salt, key)},
		{"params not numbers", argon("v=19", "m=x,t=1,p=1", salt, key)},
		{"negative", argon("v=19", "m=-64,t=1,p=1", salt, key)},
		{"m=0", argon("v=19", "m=0,t=1,p=1", salt, key)},
		{"m below 8p", argon("v=19", "m=8,t=1,p=2", salt, key)},
		{"m over 4 GiB", argon("v=19", "m=4194305,t=1,p=1", salt, key)},
		{"m overflows uint32", argon("v=19", "m=99999999999,t=1,p=1", salt, key)},
		{"t=0", argon("v=19", "m=64,t=0,p=1", salt, key)},
		{"t=101", argon("v=19", "m=64,t=101,p=1", salt, key)},
		{"p=0", argon("v=19", "m=64,t=1,p=0", salt, key)},
		{"p=256", argon("v=19", "m=4096,t=1,p=256", salt, key)},
		{"bad salt base64", argon("v=19", "m=64,t=1,p=1", "!!!!", key)},
		{"padded salt", argon("v=19", "m=64,t=1,p=1", salt+"==", key)},
		{"bad hash base64", argon("v=19", "m=64,t=1,p=1", salt, "not*base64")},
		{"short salt", argon("v=19", "m=64,t=1,p=1", "YWI", key)},
		{"empty hash", argon("v=19", "m=64,t=1,p=1", salt, "")},
		{"bcrypt truncated", string(bc[:30])},
		{"bcrypt trailing junk", string(bc) + "x"},
		{"bcrypt bad cost", "$2a$xx" + string(bc[6:])},
		{"bcrypt absurd cost", "$2a$31" + string(bc[6:])},
		{"bcrypt unknown minor", "$2x$" + string(bc[4:])},
		{"bcrypt bad salt", string(bc[:7]) + strings.Repeat("!", 22) + string(bc[29:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(context.Background(), "x", tt.enc)
			if !errors.Is(err, ErrMalformedHash) || ok || rehash {
				t.Fatalf("Verify(%q) = %v, %v, %v; want ErrMalformedHash", tt.enc, ok, rehash, err)
			}
		})
	}
}

func TestDummyVerify(t *testing.T) {
	h := newFast(t)
	if err := h.DummyVerify(context.Background(), "anything"); err != nil {
		t.Fatal(err)
	}
	// Same work as a real Verify: the dummy hash carries h's params.
	p, _, _, err := parseArgon2id(h.dummy)
	if err != nil {
		t.Fatal(err)
	}
	want := fast
	want.BcryptCost = 0
	if p != want {
		t.Fatalf("dummy params %+v, want %+v", p, want)
	}
}

// holdSlot starts a Hash on h that keeps its slot until the returned func is
// called, and waits until it holds it.
func holdSlot(t *testing.T, h *Hasher) (release func()) {
	t.Helper()
	entered, unblock := make(chan struct{}), make(chan struct{})
	h.hook = func() {
		close(entered)
		<-unblock
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "slow")
		done <- err
	}()
	<-entered
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("holder Hash: %v", err)
		}
	}
}

func TestConcurrencyBound(t *testing.T) {
	h := NewHasher(fast, 1, 20*time.Millisecond)
	release := holdSlot(t, h)
	if n := h.InFlight(); n != 1 {
		t.Errorf("InFlight = %d while one hash runs, want 1", n)
	}
	enc := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$ZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWY"
	calls := map[string]func(context.Context) error{
		"Hash":        func(ctx context.Context) error { _, err := h.Hash(ctx, "x"); return err },
		"Verify":      func(ctx context.Context) error { _, _, err := h.Verify(ctx, "x", enc); return err },
		"DummyVerify": func(ctx context.Context) error { return h.DummyVerify(ctx, "x") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- call(context.Background()) }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrBusy) {
					t.Fatalf("err = %v, want ErrBusy", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still waiting long after the queue timeout")
			}
			if waited := time.Since(start); waited < 15*time.Millisecond {
				t.Fatalf("gave up after %v, should queue for the timeout", waited)
			}
		})
	}
	release()
	h.hook = nil
	if n := h.InFlight(); n != 0 {
		t.Errorf("InFlight = %d after release, want 0", n)
	}
	if _, err := h.Hash(context.Background(), "x"); err != nil {
		t.Fatalf("Hash after release: %v", err)
	}
}

func TestQueueCancel(t *testing.T) {
	h := NewHasher(fast, 1, time.Minute)
	release := holdSlot(t, h)
	defer release()
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled while waiting", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline while waiting", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 10*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := h.Hash(ctx, "x"); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Hash kept waiting after ctx ended")
			}
		})
	}
}

func TestCancelledBeforeFreeSlot(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newFast(t).Hash(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
