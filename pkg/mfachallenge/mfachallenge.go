// Package mfachallenge keeps pending second-factor logins in Redis: a first factor was
// right (a password at auth, a provider at oauth) and the account has MFA on, so the
// client got an opaque single-use mfa_token to finish at auth's /v1/auth/login/mfa.
// Only the SHA-256 of the token is stored; the token is no JWT, so it never passes as a
// bearer token.
package mfachallenge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// TTL is how long a challenge waits for its code.
const TTL = 5 * time.Minute

// ErrNotFound: unknown, finished, burnt or expired.
var ErrNotFound = errors.New("mfa challenge not found")

// Challenge is a login waiting for its second factor.
type Challenge struct {
	UserID    string `json:"user_id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	// AMR is how the first factor was proven ("pwd" when empty, or "oauth").
	AMR []string `json:"amr,omitempty"`
	// Stamp is the account's credential stamp when the first factor was proven
	// (session.CredentialStamp): the session opened by the second factor carries it.
	Stamp string `json:"cs,omitempty"`
}

// FirstFactor is the challenge's amr before the second factor is added.
func (c Challenge) FirstFactor() []string {
	if len(c.AMR) == 0 {
		return []string{"pwd"}
	}
	return append([]string(nil), c.AMR...)
}

// NewToken returns a token of 256 bits from the CSPRNG and its hash.
func NewToken() (raw string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	raw = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(raw))
	return raw, sum[:]
}

// HashToken checks a token's shape and returns its hash.
func HashToken(raw string) ([]byte, bool) {
	if len(raw) != 43 {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(raw); err != nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(raw))
	return sum[:], true
}

// Store is the Redis store.
type Store struct{ rdb redis.UniversalClient }

// New returns the store.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

func key(hash []byte) string { return "mfa:challenge:" + hex.EncodeToString(hash) }

// Create stores a challenge for ttl.
func (s *Store) Create(ctx context.Context, hash []byte, ch Challenge, ttl time.Duration) error {
	b, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	k := key(hash)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "v", b, "failures", 0)
		p.PExpire(ctx, k, ttl)
		return nil
	})
	return err
}

// Get reads a live challenge.
func (s *Store) Get(ctx context.Context, hash []byte) (Challenge, error) {
	raw, err := s.rdb.HGet(ctx, key(hash), "v").Result()
	if errors.Is(err, redis.Nil) {
		return Challenge{}, ErrNotFound
	}
	if err != nil {
		return Challenge{}, err
	}
	var ch Challenge
	if err := json.Unmarshal([]byte(raw), &ch); err != nil {
		return Challenge{}, ErrNotFound
	}
	return ch, nil
}

// KEYS: challenge. ARGV: max failures. Counts a failure of a live challenge and deletes
// it at the maximum; never creates a key.
var failScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return n
`)

// Fail counts a wrong code; the challenge is gone after maxFailures of them.
func (s *Store) Fail(ctx context.Context, hash []byte, maxFailures int) error {
	return failScript.Run(ctx, s.rdb, []string{key(hash)}, maxFailures).Err()
}

// Take deletes the challenge; false when another request took it first.
func (s *Store) Take(ctx context.Context, hash []byte) (bool, error) {
	n, err := s.rdb.Del(ctx, key(hash)).Result()
	return n == 1, err
}
