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
// and the claims it contains.
func (i *Issuer) Issue(userID, sessionID string, authTime time.Time, roles, amr []string) (raw string, claims AccessClaims, err error) {
	if userID == "" || sessionID == "" {
		return "", AccessClaims{}, fmt.Errorf("token: issue: user and session id are required")
	}
	k := i.keys.signer()
	now := i.now()
	claims = AccessClaims{
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
	t := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), claims)
	t.Header["kid"] = k.kid
	t.Header["typ"] = TypAccessToken
	raw, err = t.SignedString(k.private)
	if err != nil {
		return "", AccessClaims{}, fmt.Errorf("token: sign with kid %q: %w", k.kid, err)
	}
	return raw, claims, nil
}

// nonNil copies s so the caller's slice is not aliased, and turns nil into an
// empty slice so the JSON is [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
