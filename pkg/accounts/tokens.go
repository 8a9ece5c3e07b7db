package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/mfachallenge"
)

// Purpose of a one-time token; a token serves exactly one.
type Purpose string

// The purposes of the one_time_tokens table.
const (
	PurposeEmailVerification Purpose = "email_verification"
	PurposePasswordReset     Purpose = "password_reset"
)

// OneTimeToken is a verification or reset token as stored: its hash, never the token.
type OneTimeToken struct {
	Hash      []byte
	UserID    string
	Purpose   Purpose
	ExpiresAt time.Time
	// Identity, on a verification link sent for a provider sign-in, is the identity
	// that proving the address links (auth's email verification).
	Identity *TokenIdentity
	// WhileUnverified stores the token only while the account's address is unproven
	// (IssueToken answers ErrNotFound otherwise).
	WhileUnverified bool
}

// TokenIdentity is a provider identity a verification link links once used.
type TokenIdentity struct{ Provider, Subject, Email string }

// NewToken makes a one-time token: 256 bits from the CSPRNG; only its SHA-256 is
// stored (a fast hash is right for a secret this long).
func NewToken(userID string, purpose Purpose, expires time.Time) (string, OneTimeToken) {
	raw, hash := mfachallenge.NewToken()
	return raw, OneTimeToken{Hash: hash, UserID: userID, Purpose: purpose, ExpiresAt: expires.UTC()}
}

// HashToken refuses anything that cannot be one of our tokens before touching storage,
// and returns the hash of one that can.
func HashToken(raw string) ([]byte, bool) { return mfachallenge.HashToken(raw) }

// IssueToken retires the user's unused tokens of t's purpose, so only the newest link
// works, and stores t, through db (the caller's transaction).
func IssueToken(ctx context.Context, db bun.IDB, t OneTimeToken) error {
	uid, err := ParseID(t.UserID)
	if err != nil {
		return err
	}
	if _, err := db.NewRaw(`UPDATE one_time_tokens SET used_at = now()
		WHERE user_id = ? AND purpose = ? AND used_at IS NULL`, uid, string(t.Purpose)).Exec(ctx); err != nil {
		return fmt.Errorf("retire %s tokens: %w", t.Purpose, Unavailable(err))
	}
	return InsertToken(ctx, db, t)
}

// InsertToken stores t through db, next to any live token of its purpose (a new
// account's first link has none to retire).
func InsertToken(ctx context.Context, db bun.IDB, t OneTimeToken) error {
	uid, err := ParseID(t.UserID)
	if err != nil {
		return err
	}
	var provider, subject any // NULL: no identity
	email := ""
	if t.Identity != nil {
		provider, subject, email = t.Identity.Provider, t.Identity.Subject, t.Identity.Email
	}
	cond := ""
	if t.WhileUnverified {
		cond = " AND u.email_verified_at IS NULL"
	}
	res, err := db.NewRaw(`INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at,
		identity_provider, identity_subject, identity_email)
		SELECT ?, u.id, ?, ?, ?, ?, ? FROM users u WHERE u.id = ?`+cond,
		t.Hash, string(t.Purpose), t.ExpiresAt, provider, subject, email, uid).Exec(ctx)
	if err != nil {
		return fmt.Errorf("insert %s token: %w", t.Purpose, Unavailable(err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNotFound // no such account, or (WhileUnverified) proven meanwhile
	}
	return nil
}
