package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
)

// issueToken retires the user's unused tokens of the purpose, so only the newest link
// works, then stores the new one with its event, through tx; the event carries
// requestID (the request that asked for the link, which may be over).
func (s *Users) issueToken(ctx context.Context, tx bun.Tx, t account.OneTimeToken, requestID string, ev account.Event) error {
	if err := accounts.IssueToken(ctx, tx, t); err != nil {
		return err
	}
	return s.enqueueFor(ctx, tx, requestID, ev)
}

// TokenUser returns the owner of a live token without using it.
func (s *Users) TokenUser(ctx context.Context, hash []byte, purpose account.Purpose) (account.User, error) {
	return s.One(ctx, s.DB(), `u.id = (SELECT t.user_id FROM one_time_tokens t
		WHERE t.token_hash = ? AND t.purpose = ? AND t.used_at IS NULL AND t.expires_at > now())`,
		hash, string(purpose))
}

// consume marks a live token used and returns its owner and, for a verification link
// sent for a provider sign-in, the identity it links. The single UPDATE makes a token
// usable once even under parallel requests.
func consume(ctx context.Context, tx bun.Tx, hash []byte, purpose account.Purpose) (uuid.UUID, *pendingIdentity, error) {
	var row struct {
		UserID   uuid.UUID `bun:"user_id"`
		Provider *string   `bun:"identity_provider"`
		Subject  *string   `bun:"identity_subject"`
		Email    string    `bun:"identity_email"`
	}
	err := tx.NewRaw(`UPDATE one_time_tokens SET used_at = now()
		WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > now()
		RETURNING user_id, identity_provider, identity_subject, identity_email`, hash, string(purpose)).Scan(ctx, &row)
	if err != nil {
		return uuid.Nil, nil, err
	}
	if row.Provider == nil || row.Subject == nil {
		return row.UserID, nil, nil
	}
	return row.UserID, &pendingIdentity{provider: *row.Provider, subject: *row.Subject, email: row.Email}, nil
}

type pendingIdentity struct{ provider, subject, email string }

// proveAddress runs in the transaction that proves uid's address (a verification or a
// reset link reached its mailbox). Every identity linked while the address was unproven
// is unlinked: whoever signed in with a provider that did not vouch for the address keeps
// nothing of the account its owner now claims. A verification link sent for a provider
// sign-in links that identity, proven, and drops a password set while the address was
// unproven. When the address was unproven until now, or an
// identity went, the credential stamp moves (password_changed_at): every session opened
// before, whatever its order with this commit, is over.
func proveAddress(ctx context.Context, tx bun.Tx, uid uuid.UUID, pending *pendingIdentity) (account.Proof, error) {
	var p account.Proof
	if err := tx.NewRaw(`SELECT email_verified_at IS NULL FROM users WHERE id = ? FOR UPDATE`, uid).
		Scan(ctx, &p.WasUnverified); err != nil {
		return p, fmt.Errorf("lock user: %w", err)
	}
	if err := tx.NewRaw(`DELETE FROM identities WHERE user_id = ? AND attached_unverified RETURNING provider`, uid).
		Scan(ctx, &p.Unlinked); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("unlink unproven identities: %w", err)
	}
	if p.WasUnverified || len(p.Unlinked) > 0 {
		if _, err := tx.NewRaw(`UPDATE users SET password_changed_at = now(), updated_at = now(),
			email_verified_at = COALESCE(email_verified_at, now()) WHERE id = ?`, uid).Exec(ctx); err != nil {
			return p, fmt.Errorf("mark proven: %w", err)
		}
	}
	if pending != nil && p.WasUnverified {
		// The link proves the identity it was sent for, not a password someone set
		// before anyone proved the address: that password goes (as a replaced account's).
		if _, err := tx.NewRaw(`UPDATE users SET password_hash = NULL WHERE id = ?`, uid).Exec(ctx); err != nil {
			return p, fmt.Errorf("drop unproven password: %w", err)
		}
	}
	if pending != nil {
		res, err := tx.NewRaw(`INSERT INTO identities (provider, subject, user_id, email, email_verified, attached_unverified)
			VALUES (?, ?, ?, ?, false, false) ON CONFLICT DO NOTHING`, pending.provider, pending.subject, uid, pending.email).Exec(ctx)
		if err != nil {
			return p, fmt.Errorf("link proven identity: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			p.Linked = pending.provider
		}
	}
	return p, nil
}

// VerifyEmail uses a verification token, marks the address verified (proveAddress),
// grants roles and writes events; beforeCommit runs last in the transaction.
func (s *Users) VerifyEmail(ctx context.Context, hash []byte, grants []string, events func(account.User, account.Proof) []account.Event,
	beforeCommit func(context.Context, account.User, account.Proof) error) (account.User, error) {
	var u account.User
	err := s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		uid, pending, err := consume(ctx, tx, hash, account.PurposeEmailVerification)
		if err != nil {
			return notFound(err)
		}
		proof, err := proveAddress(ctx, tx, uid, pending)
		if err != nil {
			return err
		}
		for _, role := range grants {
			if err := accounts.Grant(ctx, tx, uid, role); err != nil {
				return err
			}
		}
		if u, err = s.One(ctx, tx, "u.id = ?", uid); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, events(u, proof)...); err != nil {
			return err
		}
		if err := invalidate(ctx, w, uid); err != nil {
			return err
		}
		return beforeCommit(ctx, u, proof)
	})
	return u, err
}

// ResetPassword uses a reset token, sets the password and proves the address (the
// reset link reached the mailbox: proveAddress); beforeCommit runs in the transaction.
func (s *Users) ResetPassword(ctx context.Context, hash []byte, passwordHash string, events func(account.User, account.Proof) []account.Event,
	beforeCommit func(context.Context, account.User) error) (account.User, error) {
	var u account.User
	err := s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		uid, _, err := consume(ctx, tx, hash, account.PurposePasswordReset)
		if err != nil {
			return notFound(err)
		}
		proof, err := proveAddress(ctx, tx, uid, nil)
		if err != nil {
			return err
		}
		if _, err := tx.NewRaw(`UPDATE users SET password_hash = ?, password_changed_at = now(), updated_at = now()
			WHERE id = ?`, passwordHash, uid).Exec(ctx); err != nil {
			return fmt.Errorf("update password: %w", err)
		}
		if u, err = s.One(ctx, tx, "u.id = ?", uid); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, events(u, proof)...); err != nil {
			return err
		}
		if err := invalidate(ctx, w, uid); err != nil {
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
