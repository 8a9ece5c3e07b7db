package token

import (
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// TypAccessToken is the JWS typ of access tokens (RFC 9068). Verifiers insist
// on it so refresh, ID, MFA or other JWTs cannot be replayed as access tokens.
const TypAccessToken = "at+jwt"

// AccessClaims are the claims of an access token.
type AccessClaims struct {
	jwt.RegisteredClaims          // iss, sub, aud, exp, iat, jti (ID)
	SessionID            string   `json:"sid"`
	Roles                []string `json:"roles"`
	AMR                  []string `json:"amr"`
	// AuthTime is when the session's user last authenticated (OIDC auth_time):
	// a refresh keeps it, so credential changes can ask for a fresh sign-in.
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	// Ext holds the claims the access-token hook added (ACCESS_TOKEN_HOOK_URL), under
	// this one claim so the hook can never set or shadow a top-level one; nil: none.
	// Read-only once verified: the verifier's cache shares it between callers.
	Ext map[string]any `json:"ext,omitempty"`
}

// Issuer signs access tokens with the KeySet's current signing key.
type Issuer struct {
	keys     *KeySet
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewIssuer returns an Issuer. Of the options only WithClock applies.
func NewIssuer(keys *KeySet, issuer, audience string, ttl time.Duration, opts ...Option) *Issuer {
	o := newOptions(opts)
	return &Issuer{keys: keys, issuer: issuer, audience: audience, ttl: ttl, now: o.now}
}

// TTL is the lifetime of issued tokens.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// Issue signs an access token for userID in sessionID, whose user authenticated
// at authTime (the claim is left out when it is zero). It returns the compact JWS
// and the claims it contains: Draft, then Sign.
func (i *Issuer) Issue(userID, sessionID string, authTime time.Time, roles, amr []string) (raw string, claims AccessClaims, err error) {
	claims, err = i.Draft(userID, sessionID, authTime, roles, amr)
	if err != nil {
		return "", AccessClaims{}, err
	}
	raw, err = i.Sign(claims)
	if err != nil {
		return "", AccessClaims{}, err
	}
	return raw, claims, nil
}

// Draft builds the claims Issue would sign (a fresh jti, iat now, exp now + TTL)
// without signing them: the access-token hook sees them before Sign.
func (i *Issuer) Draft(userID, sessionID string, authTime time.Time, roles, amr []string) (AccessClaims, error) {
	if userID == "" || sessionID == "" {
		return AccessClaims{}, fmt.Errorf("token: issue: user and session id are required")
	}
	now := i.now()
	claims := AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{i.audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		SessionID: sessionID,
		Roles:     nonNil(roles),
		AMR:       nonNil(amr),
	}
	if !authTime.IsZero() {
		claims.AuthTime = jwt.NewNumericDate(authTime)
	}
	return claims, nil
}

// Sign signs claims (a Draft, with Ext set or not) with the current signing key. A
// token the Verifier would refuse for its size (MaxTokenSize) is an error.
func (i *Issuer) Sign(claims AccessClaims) (string, error) {
	if claims.Subject == "" || claims.SessionID == "" {
		return "", fmt.Errorf("token: issue: user and session id are required")
	}
	if len(claims.Ext) == 0 {
		claims.Ext = nil
	}
	k := i.keys.signer()
	t := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), claims)
	t.Header["kid"] = k.kid
	t.Header["typ"] = TypAccessToken
	raw, err := t.SignedString(k.private)
	if err != nil {
		return "", fmt.Errorf("token: sign with kid %q: %w", k.kid, err)
	}
	if len(raw) > MaxTokenSize {
		return "", fmt.Errorf("token: signed token is %d bytes, over %d", len(raw), MaxTokenSize)
	}
	return raw, nil
}

// nonNil copies s so the caller's slice is not aliased, and turns nil into an
// empty slice so the JSON is [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
