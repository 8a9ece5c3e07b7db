package token

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenSize bounds the raw token; anything longer is refused before any
// decoding so hostile input costs bounded time and memory.
const MaxTokenSize = 8 << 10

// ErrInvalidToken is returned (wrapped) for every verification failure.
// Wrapped causes never contain the token or its header values.
var ErrInvalidToken = errors.New("token: invalid access token")

// Verifier checks access tokens against a KeySet.
type Verifier struct {
	keys     *KeySet
	issuer   string
	audience string
	parsers  map[string]*jwt.Parser // per alg; each accepts only its own alg
	cache    *verifiedCache         // nil unless WithVerifiedCache
}

// NewVerifier returns a Verifier for tokens from issuer meant for audience.
// WithClock, WithLeeway and WithVerifiedCache apply.
func NewVerifier(keys *KeySet, issuer, audience string, opts ...Option) *Verifier {
	o := newOptions(opts)
	v := &Verifier{keys: keys, issuer: issuer, audience: audience, parsers: make(map[string]*jwt.Parser, 3)}
	if o.verifiedCache > 0 {
		v.cache = newVerifiedCache(o.verifiedCache, o.now)
	}
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256} {
		v.parsers[alg] = jwt.NewParser(
			jwt.WithValidMethods([]string{alg}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(o.leeway),
			jwt.WithTimeFunc(o.now),
			jwt.WithStrictDecoding(),
			// Numbers in ext (the hook's claims) stay as written: json.Number.
			jwt.WithJSONNumber(),
		)
	}
	return v
}

// Verify checks raw and returns its claims. Every error wraps ErrInvalidToken.
func (v *Verifier) Verify(raw string) (*AccessClaims, error) {
	c, err := v.verify(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return c, nil
}

func (v *Verifier) verify(raw string) (*AccessClaims, error) {
	if v.issuer == "" || v.audience == "" {
		// jwt.WithIssuer("") would silently skip the check: fail closed.
		return nil, errors.New("verifier has no issuer or audience configured")
	}
	if len(raw) > MaxTokenSize {
		return nil, fmt.Errorf("token longer than %d bytes", MaxTokenSize)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, errors.New("token is not three dot-separated segments")
	}
	var sum [sha256.Size]byte
	if v.cache != nil {
		// On the stack for every token up to 2 KiB: no copy of raw on the heap.
		var buf [2048]byte
		sum = sha256.Sum256(append(buf[:0], raw...))
		if c, ok := v.cache.get(sum, v.keys); ok {
			return c, nil
		}
	}
	key, err := v.keyFor(raw[:strings.IndexByte(raw, '.')])
	if err != nil {
		return nil, err
	}
	claims := &AccessClaims{}
	_, err = v.parsers[key.alg].ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
		return key.public, nil
	})
	if errors.Is(err, jwt.ErrTokenMalformed) {
		// Decoding errors can quote payload bytes; keep only the category.
		return nil, jwt.ErrTokenMalformed
	}
	if err != nil {
		return nil, err
	}
	if claims.Subject == "" {
		return nil, errors.New("sub claim is required")
	}
	if claims.SessionID == "" {
		return nil, errors.New("sid claim is required")
	}
	if claims.Roles == nil {
		claims.Roles = []string{}
	}
	if v.cache != nil {
		v.cache.put(sum, claims, key)
	}
	return claims, nil
}

// keyFor checks the protected header and returns the key its kid names. The
// key, not the token, decides the algorithm.
func (v *Verifier) keyFor(segment string) (*signingKey, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(segment)
	if err != nil {
		return nil, errors.New("header is not base64url")
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil || h == nil {
		return nil, errors.New("header is not a JSON object")
	}
	// These would make a verifier fetch or trust key material named by the
	// token itself; crit demands extensions we do not implement (RFC 7515
	// §4.1.11). Their mere presence means refusal.
	for _, name := range [...]string{"jku", "x5u", "jwk", "x5c", "crit"} {
		if _, ok := h[name]; ok {
			return nil, fmt.Errorf("header %q is not allowed", name)
		}
	}
	typ, err := headerString(h, "typ")
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(typ, TypAccessToken) {
		return nil, fmt.Errorf("typ is not %q", TypAccessToken)
	}
	kid, err := headerString(h, "kid")
	if err != nil {
		return nil, err
	}
	alg, err := headerString(h, "alg")
	if err != nil {
		return nil, err
	}
	key, ok := v.keys.lookup(kid)
	if !ok {
		return nil, errors.New("unknown kid")
	}
	if alg != key.alg {
		return nil, fmt.Errorf("alg does not match key (want %s)", key.alg)
	}
	return key, nil
}

// headerString returns a required, non-empty string header. Its value is not
// echoed in errors: it is attacker-controlled and may be huge.
func headerString(h map[string]json.RawMessage, name string) (string, error) {
	raw, ok := h[name]
	if !ok {
		return "", fmt.Errorf("header %q is missing", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" {
		return "", fmt.Errorf("header %q is not a non-empty string", name)
	}
	return s, nil
}
