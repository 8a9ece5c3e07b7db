package api

import (
	"time"

	"github.com/talentforge/auth/services/auth/internal/account"
)

// userView is the public user: never a hash, a secret or a token.
type userView struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles"`
	MFAEnabled    bool      `json:"mfa_enabled"`
	CreatedAt     time.Time `json:"created_at"`
}

func viewUser(u account.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userView{ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.Verified(), Roles: roles,
		MFAEnabled: u.MFAEnabled, CreatedAt: u.CreatedAt.UTC()}
}

type tokenPairView struct {
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int      `json:"expires_in"`
	User         userView `json:"user"`
}

func viewPair(p account.TokenPair) tokenPairView {
	return tokenPairView{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, TokenType: "Bearer",
		ExpiresIn: p.ExpiresIn, User: viewUser(p.User)}
}

type sessionView struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}
