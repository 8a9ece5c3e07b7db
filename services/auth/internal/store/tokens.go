package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/services/auth/internal/account"
)

func insertToken(ctx context.Context, db bun.IDB, t account.OneTimeToken) error {
	_, err := db.NewRaw(`INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at) VALUES (?, ?, ?, ?)`,
		t.Hash, uuid.MustParse(t.UserID), string(t.Purpose), t.ExpiresAt).Exec(ctx)
	if err != nil {
		return fmt.Errorf("insert %s token: %w", t.Purpose, err)
	}
	return nil
}

// IssueToken retires the user's unused tokens of the purpose, so only the newest link
// works, then stores the new one with its event.
func (s *Users) IssueToken(ctx context.Context, t account.OneTimeToken, ev account.Event) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`UPDATE one_time_tokens SET used_at = now()
			WHERE user_id = ? AND purpose = ? AND used_at IS NULL`, uuid.MustParse(t.UserID), string(t.Purpose)).Exec(ctx); err != nil {
			return fmt.Errorf("retire %s tokens: %w", t.Purpose, err)
		}
		if err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, ev)
	})
}

// TokenUser returns the owner of a live token without using it.
func (s *Users) TokenUser(ctx context.Context, hash []byte, purpose account.Purpose) (account.User, error) {
	return s.one(ctx, s.db, `u.id = (SELECT t.user_id FROM one_time_tokens t
		WHERE t.token_hash = ? AND t.purpose = ? AND t.used_at IS NULL AND t.expires_at > now())`,
		hash, string(purpose))
}

// consume marks a live token used and returns its owner, locked for update. The single
// UPDATE makes a token usable once even under parallel requests.
func consume(ctx context.Context, tx bun.Tx, hash []byte, purpose account.Purpose) (uuid.UUID, error) {
	var uid uuid.UUID
	err := tx.NewRaw(`UPDATE one_time_tokens SET used_at = now()
		WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > now()
		RETURNING user_id`, hash, string(purpose)).Scan(ctx, &uid)
	if err != nil {
		return uuid.Nil, err
	}
	return uid, nil
}

// VerifyEmail uses a verification token and marks the address verified.
func (s *Users) VerifyEmail(ctx context.Context, hash []byte, grants []string, events func(account.User) []account.Event) (account.User, error) {
	var u account.User
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		uid, err := consume(ctx, tx, hash, account.PurposeEmailVerification)
		if err != nil {
			return notFound(err)
		}
		if _, err := tx.NewRaw(`UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()), updated_at = now()
			WHERE id = ?`, uid).Exec(ctx); err != nil {
			return fmt.Errorf("mark verified: %w", err)
		}
		for _, role := range grants {
			if err := grant(ctx, tx, uid, role); err != nil {
				return err
			}
		}
		if u, err = s.one(ctx, tx, "u.id = ?", uid); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, events(u)...); err != nil {
			return err
		}
		return s.invalidate(ctx, uid)
	})
	return u, err
}

// ResetPassword uses a reset token, sets the password and verifies the address (the
// reset link proved the mailbox); beforeCommit runs in the transaction.
func (s *Users) ResetPassword(ctx context.Context, hash []byte, passwordHash string, events func(account.User) []account.Event,
	beforeCommit func(context.Context, account.User) error) (account.User, error) {
	var u account.User
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		uid, err := consume(ctx, tx, hash, account.PurposePasswordReset)
		if err != nil {
			return notFound(err)
		}
		if _, err := tx.NewRaw(`UPDATE users SET password_hash = ?, password_changed_at = now(), updated_at = now(),
			email_verified_at = COALESCE(email_verified_at, now()) WHERE id = ?`, passwordHash, uid).Exec(ctx); err != nil {
			return fmt.Errorf("update password: %w", err)
		}
		if u, err = s.one(ctx, tx, "u.id = ?", uid); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, events(u)...); err != nil {
			return err
		}
		if err := s.invalidate(ctx, uid); err != nil {
			return err
		}
		return beforeCommit(ctx, u)
	})
	return u, err
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return account.ErrNotFound
	}
	return err
}
