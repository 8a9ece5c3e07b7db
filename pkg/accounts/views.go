package accounts

import (
	"net/http"
	"time"

	"github.com/talentforge/auth/pkg/httpx"
)

// UserView is the public user: never a hash, a secret or a token.
type UserView struct {
	ID            string   `json:"id"`
	Email         string   `json:"email"`
	Name          string   `json:"name"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles"`
	MFAEnabled    bool     `json:"mfa_enabled"`
	// Phone is the proven number (E.164) or null; a number is stored only once proven.
	Phone         *string   `json:"phone"`
	PhoneVerified bool      `json:"phone_verified"`
	CreatedAt     time.Time `json:"created_at"`
}

// ViewUser is u as the API answers it.
func ViewUser(u User) UserView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	v := UserView{ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.Verified(), Roles: roles,
		MFAEnabled: u.MFAEnabled, CreatedAt: u.CreatedAt.UTC()}
	if u.Phone != "" {
		v.Phone, v.PhoneVerified = &u.Phone, true
	}
	return v
}

// PairView is a token pair as the API answers it.
type PairView struct {
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int      `json:"expires_in"`
	User         UserView `json:"user"`
}

// ViewPair is p as the API answers it.
func ViewPair(p Pair) PairView {
	return PairView{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, TokenType: "Bearer",
		ExpiresIn: p.ExpiresIn, User: ViewUser(p.User)}
}

// MFARequiredView answers a first factor of an account with MFA on: no tokens, the
// mfa_token that auth's /v1/auth/login/mfa redeems, and the factors it accepts.
type MFARequiredView struct {
	MFARequired bool     `json:"mfa_required"`
	MFAToken    string   `json:"mfa_token"`
	Factors     []string `json:"factors,omitempty"`
}

// ViewMFARequired is p's challenge as the API answers it.
func ViewMFARequired(p Pair) MFARequiredView {
	return MFARequiredView{MFARequired: true, MFAToken: p.MFAToken, Factors: p.MFAFactors}
}

// Errors answers the core's errors; each service's table ends with it.
var Errors = httpx.ErrorTable{
	{Err: ErrEmailTaken, Resp: httpx.NewError(http.StatusConflict, "email_taken", "An account with this email address already exists.")},
	{Err: ErrAccountDisabled, Resp: httpx.NewError(http.StatusForbidden, "account_disabled", "This account is disabled.")},
	{Err: ErrUnauthenticated, Resp: httpx.ErrUnauthorized},
	{Err: ErrNotFound, Resp: httpx.ErrNotFound},
	{Err: ErrUnavailable, Resp: httpx.ErrUnavailable},
}
