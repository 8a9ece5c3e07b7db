package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// Params are the argon2id parameters new hashes are made with.
type Params struct {
	Memory      uint32 // argon2id memory in KiB
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32 // bytes
	KeyLen      uint32 // bytes
	// BcryptCost is informational only: bcrypt is legacy, so a bcrypt hash
	// needs a rehash whatever its cost.
	BcryptCost int
}

// DefaultParams are the OWASP argon2id recommendation (19 MiB, t=2, p=1).
func DefaultParams() Params {
	return Params{
		Memory:      19456,
		Iterations:  2,
		Parallelism: 1,
		SaltLen:     16,
		KeyLen:      32,
		BcryptCost:  bcrypt.DefaultCost,
	}
}

var (
	// ErrBusy is returned when no hashing slot freed up within the queue timeout.
	ErrBusy = errors.New("password: hasher busy")
	// ErrMalformedHash is returned for a stored hash that cannot be parsed,
	// or whose parameters are unsafe to run.
	ErrMalformedHash = errors.New("password: malformed hash")
)

// Limits on parameters read from a stored hash, so a corrupt or planted row
// cannot make a login allocate gigabytes or spin for minutes.
const (
	maxMemory     = 4 << 20 // KiB, i.e. 4 GiB
	maxIterations = 100
	minSaltLen    = 8
	minKeyLen     = 16
	maxBcryptCost = 18
)

// phcB64 is the encoding of the argon2 reference implementation.
var phcB64 = base64.RawStdEncoding.Strict()

// Hasher hashes and verifies passwords, bounding how many run at once:
// argon2id is memory-hard, so a burst of logins must queue rather than
// exhaust memory and CPU.
type Hasher struct {
	p       Params
	slots   chan struct{}
	timeout time.Duration
	dummy   string // never-matching hash with p, for DummyVerify

	hook func() // tests only: runs while a slot is held
}

// NewHasher returns a Hasher making hashes with p (zero fields take
// DefaultParams values). At most maxConcurrent (runtime.NumCPU() when <= 0)
// hashes run at once; a caller waits at most queueTimeout (5s when <= 0) for
// a slot before getting ErrBusy.
func NewHasher(p Params, maxConcurrent int, queueTimeout time.Duration) *Hasher {
	d := DefaultParams()
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Iterations == 0 {
		p.Iterations = d.Iterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = d.Parallelism
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	if p.BcryptCost == 0 {
		p.BcryptCost = d.BcryptCost
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.NumCPU()
	}
	if queueTimeout <= 0 {
		queueTimeout = 5 * time.Second
	}
	return &Hasher{
		p:       p,
		slots:   make(chan struct{}, maxConcurrent),
		timeout: queueTimeout,
		// A random key never matches, and parsing the same shape of string
		// keeps DummyVerify on the exact code path of Verify.
		dummy: encodeArgon2id(p, randomBytes(p.SaltLen), randomBytes(p.KeyLen)),
	}
}

// InFlight reports how many hash operations currently hold a slot.
func (h *Hasher) InFlight() int { return len(h.slots) }

// acquire waits for a slot until the queue timeout or ctx ends.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case h.slots <- struct{}{}:
	default:
		t := time.NewTimer(h.timeout)
		defer t.Stop()
		select {
		case h.slots <- struct{}{}:
		case <-t.C:
			return nil, ErrBusy
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if h.hook != nil {
		h.hook()
	}
	return func() { <-h.slots }, nil
}

// Hash returns an argon2id PHC string of the NFKC form of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	salt := randomBytes(h.p.SaltLen)
	key := argon2.IDKey(normalize(password), salt, h.p.Iterations, h.p.Memory, h.p.Parallelism, h.p.KeyLen)
	return encodeArgon2id(h.p, salt, key), nil
}

// Verify reports whether password matches encoded, an argon2id PHC string or
// a legacy bcrypt hash, comparing in constant time. needsRehash is true only
// when ok is, and the hash is bcrypt or uses params other than h's, so a
// caller can upgrade it with the password it now knows to be right.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		return h.verifyArgon2id(ctx, password, encoded)
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return h.verifyBcrypt(ctx, password, encoded)
	default:
		return false, false, fmt.Errorf("%w: unknown scheme", ErrMalformedHash)
	}
}

// DummyVerify costs what a failed argon2id Verify with h's params costs, so a
// login for an unknown account takes as long as one with a wrong password.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	_, _, err := h.verifyArgon2id(ctx, password, h.dummy)
	return err
}

func (h *Hasher) verifyArgon2id(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	p, salt, key, err := parseArgon2id(encoded)
	if err != nil {
		return false, false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	got := argon2.IDKey(normalize(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	stale := p.Memory != h.p.Memory || p.Iterations != h.p.Iterations ||
		p.Parallelism != h.p.Parallelism || p.SaltLen != h.p.SaltLen || p.KeyLen != h.p.KeyLen
	return true, stale, nil
}

func (h *Hasher) verifyBcrypt(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	// bcrypt hashes are always 60 bytes; the library would ignore some
	// trailing garbage and that is better reported than silently failing.
	if len(encoded) != 60 {
		return false, false, fmt.Errorf("%w: bcrypt hash length %d", ErrMalformedHash, len(encoded))
	}
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil {
		return false, false, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	if cost > maxBcryptCost {
		return false, false, fmt.Errorf("%w: bcrypt cost %d", ErrMalformedHash, cost)
	}
	pw := normalize(password)
	// bcrypt only reads 72 bytes; comparing would accept any password sharing
	// the first 72 bytes with the real one.
	if len(pw) > 72 {
		return false, false, nil
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	switch err := bcrypt.CompareHashAndPassword([]byte(encoded), pw); {
	case err == nil:
		return true, true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	default:
		return false, false, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
}

// parseArgon2id parses $argon2id$v=19$m=M,t=T,p=P$salt$key, refusing params
// that are invalid or too expensive to run. SaltLen and KeyLen of the result
// are the decoded lengths.
func parseArgon2id(encoded string) (p Params, salt, key []byte, err error) {
	malformed := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return malformed("want $argon2id$v=..$m=..,t=..,p=..$salt$hash")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return malformed("unsupported version " + strconv.Quote(f[2]))
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return malformed("want m,t,p")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, found := strings.CutPrefix(kv[i], name)
		if !found {
			return malformed("want m,t,p")
		}
		if vals[i], err = strconv.ParseUint(s, 10, 32); err != nil {
			return malformed("bad " + name + " value")
		}
	}
	m, t, par := vals[0], vals[1], vals[2]
	switch {
	case par == 0 || par > 255:
		return malformed("parallelism out of range")
	case m < 8*par || m > maxMemory:
		return malformed("memory out of range")
	case t == 0 || t > maxIterations:
		return malformed("iterations out of range")
	}
	if salt, err = phcB64.DecodeString(f[4]); err != nil || len(salt) < minSaltLen {
		return malformed("bad salt")
	}
	if key, err = phcB64.DecodeString(f[5]); err != nil || len(key) < minKeyLen {
		return malformed("bad hash")
	}
	p = Params{
		Memory:      uint32(m),
		Iterations:  uint32(t),
		Parallelism: uint8(par),
		SaltLen:     uint32(len(salt)),
		KeyLen:      uint32(len(key)),
	}
	return p, salt, key, nil
}

func encodeArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism,
		phcB64.EncodeToString(salt), phcB64.EncodeToString(key))
}

// normalize applies NFKC (NIST 800-63B) so equivalent spellings of a
// password hash alike; it never trims, as spaces are part of the secret.
func normalize(password string) []byte {
	return []byte(norm.NFKC.String(password))
}

func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails on supported platforms since Go 1.24
	return b
}
