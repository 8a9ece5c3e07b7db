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
	// PurposeOTPEmail is an emailed sign-in code (CodeHash) and its link (Hash), one
	// row: using either uses both.
	PurposeOTPEmail Purpose = "otp_email"
	// PurposeOTPSMS is an SMS sign-in code (Hash is random and never sent).
	PurposeOTPSMS Purpose = "otp_sms"
	// PurposePhoneVerification is the SMS code that proves Phone before it is set.
	PurposePhoneVerification Purpose = "phone_verification"
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
	// CodeHash is the hash of the one-time code of a code purpose (CodeHash in
	// services/auth's account package), nil for a link.
	CodeHash []byte
	// Phone is the number a phone verification code proves.
	Phone string
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
	if t.CodeHash != nil {
		// One live code per account and purpose (a unique index): codes issued at once
		// for one account take turns, each retiring the one before.
		if _, err := db.NewRaw(`SELECT 1 FROM users WHERE id = ? FOR UPDATE`, uid).Exec(ctx); err != nil {
			return fmt.Errorf("lock user: %w", Unavailable(err))
		}
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
	var code, phone any // NULL: a link
	if t.CodeHash != nil {
		code = t.CodeHash
	}
	if t.Phone != "" {
		phone = t.Phone
	}
	res, err := db.NewRaw(`INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at,
		identity_provider, identity_subject, identity_email, code_hash, phone)
		SELECT ?, u.id, ?, ?, ?, ?, ?, ?, ? FROM users u WHERE u.id = ?`+cond,
		t.Hash, string(t.Purpose), t.ExpiresAt, provider, subject, email, code, phone, uid).Exec(ctx)
	if err != nil {
		return fmt.Errorf("insert %s token: %w", t.Purpose, Unavailable(err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNotFound // no such account, or (WhileUnverified) proven meanwhile
	}
	return nil
}
