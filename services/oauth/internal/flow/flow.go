// Package flow keeps the short-lived state of a social sign-in in Redis: the state of an
// authorization request (10 minutes) and the one-time code that the app exchanges for
// tokens (60 seconds). Both are single use (GETDEL) and stored under the SHA-256 of the
// value the browser holds, never under the value itself.
package flow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lifetimes of the records.
const (
	StateTTL = 10 * time.Minute
	CodeTTL  = 60 * time.Second
)

// ErrNotFound: unknown, used or expired.
var ErrNotFound = errors.New("not found")

// State is what the callback needs from its authorization request.
type State struct {
	Provider   string `json:"provider"`
	Verifier   string `json:"verifier"` // PKCE
	Nonce      string `json:"nonce"`    // OIDC
	RedirectTo string `json:"redirect_to"`
	// Binding is the SHA-256 of the cookie set in the browser that started the flow.
	Binding string `json:"binding"`
	// LinkUserID is set when a signed-in user links an identity.
	LinkUserID    string `json:"link_user_id,omitempty"`
	LinkSessionID string `json:"link_session_id,omitempty"`
}

// BoundTo reports whether cookie is the browser binding of s (constant time).
func (s State) BoundTo(cookie string) bool {
	if cookie == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Hash(cookie)), []byte(s.Binding)) == 1
}

// Code is what a one-time code stands for: a finished sign-in.
type Code struct {
	UserID   string `json:"user_id"`
	Provider string `json:"provider"`
	// Subject is the identity's: the exchange checks it is still linked to UserID.
	Subject   string `json:"subject,omitempty"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// Store is the Redis store.
type Store struct{ rdb redis.UniversalClient }

// New returns the store.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Random returns 256 bits from the system's CSPRNG, base64url without padding.
func Random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the hex SHA-256 of a browser-held value.
func Hash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

func stateKey(state string) string { return "oauth:state:" + Hash(state) }
func codeKey(code string) string   { return "oauth:code:" + Hash(code) }

// PutState stores s under state for StateTTL.
func (st *Store) PutState(ctx context.Context, state string, s State) error {
	return st.put(ctx, stateKey(state), s, StateTTL)
}

// TakeState returns and deletes the state: a second callback with it fails.
func (st *Store) TakeState(ctx context.Context, state string) (State, error) {
	var s State
	return s, st.take(ctx, stateKey(state), &s)
}

// PutCode stores c under code for CodeTTL.
func (st *Store) PutCode(ctx context.Context, code string, c Code) error {
	return st.put(ctx, codeKey(code), c, CodeTTL)
}

// TakeCode returns and deletes the code's record.
func (st *Store) TakeCode(ctx context.Context, code string) (Code, error) {
	var c Code
	return c, st.take(ctx, codeKey(code), &c)
}

func (st *Store) put(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.rdb.Set(ctx, key, b, ttl).Err()
}

func (st *Store) take(ctx context.Context, key string, v any) error {
	b, err := st.rdb.GetDel(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if json.Unmarshal(b, v) != nil {
		return ErrNotFound
	}
	return nil
}
