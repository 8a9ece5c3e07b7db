package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/mfachallenge"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
)

var (
	_ account.MFAStore      = (*MFA)(nil)
	_ account.MFAChallenges = (*MFAChallenges)(nil)
)

// MFA keeps TOTP secrets, sealed with AES-256-GCM under MFA_ENCRYPTION_KEYS (the user
// id is the additional data, so a sealed secret cannot be moved to another user), and
// the recovery codes' hashes. Changes of users.mfa_enabled invalidate the user cache
// inside their transaction and after it (Users.runInTx).
type MFA struct {
	users *Users
	keys  *keyring.Keyring
}

// NewMFA returns the store; keys seals and opens the secrets (the first key seals).
func NewMFA(users *Users, keys *keyring.Keyring) *MFA {
	return &MFA{users: users, keys: keys}
}

type totpRow struct {
	bun.BaseModel `bun:"table:mfa_totp"`

	UserID       uuid.UUID  `bun:"user_id,pk,type:uuid"`
	KID          string     `bun:"kid"`
	Nonce        []byte     `bun:"nonce"`
	CT           []byte     `bun:"ct"`
	ConfirmedAt  *time.Time `bun:"confirmed_at"`
	CreatedAt    time.Time  `bun:"created_at"`
	LastUsedStep int64      `bun:"last_used_step"`
}

func (m *MFA) open(r totpRow) (string, error) {
	pt, err := m.keys.Open(keyring.Sealed{KID: r.KID, Nonce: r.Nonce, Ciphertext: r.CT}, r.UserID.String())
	if err != nil {
		// A key this service lacks: it cannot check codes, so it fails closed.
		return "", fmt.Errorf("%w: open totp secret (MFA_ENCRYPTION_KEYS): %w", account.ErrUnavailable, err)
	}
	return string(pt), nil
}

func (m *MFA) row(ctx context.Context, db bun.IDB, uid uuid.UUID, lock bool) (totpRow, error) {
	var r totpRow
	q := db.NewSelect().Model(&r).Where("user_id = ?", uid)
	if lock {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return totpRow{}, account.ErrNotFound
		}
		return totpRow{}, fmt.Errorf("load totp: %w", err)
	}
	return r, nil
}

// TOTP returns the user's opened secret.
func (m *MFA) TOTP(ctx context.Context, userID string) (account.TOTPSecret, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return account.TOTPSecret{}, account.ErrNotFound
	}
	r, err := m.row(ctx, m.users.DB(), uid, false)
	if err != nil {
		return account.TOTPSecret{}, err
	}
	secret, err := m.open(r)
	if err != nil {
		return account.TOTPSecret{}, err
	}
	return account.TOTPSecret{Secret: secret, Confirmed: r.ConfirmedAt != nil}, nil
}

// SavePendingTOTP stores or replaces the unconfirmed secret, sealed with the newest key.
func (m *MFA) SavePendingTOTP(ctx context.Context, userID, secret string) error {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return err
	}
	s, err := m.keys.Seal([]byte(secret), uid.String())
	if err != nil {
		return err
	}
	res, err := m.users.DB().NewRaw(`INSERT INTO mfa_totp (user_id, kid, nonce, ct, created_at, last_used_step)
		VALUES (?, ?, ?, ?, now(), 0)
		ON CONFLICT (user_id) DO UPDATE SET kid = EXCLUDED.kid, nonce = EXCLUDED.nonce, ct = EXCLUDED.ct,
			created_at = now(), last_used_step = 0
		WHERE mfa_totp.confirmed_at IS NULL`, uid, s.KID, s.Nonce, s.Ciphertext).Exec(ctx)
	if err != nil {
		return fmt.Errorf("save totp: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return account.ErrMFAAlreadyEnabled
	}
	return nil
}

// ConfirmTOTP confirms the pending secret if it is still secret, turns MFA on, replaces
// the recovery codes and writes ev, in one transaction.
func (m *MFA) ConfirmTOTP(ctx context.Context, userID, secret string, step int64, codeHashes [][]byte, ev account.Event) error {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return err
	}
	return m.users.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		r, err := m.row(ctx, tx, uid, true)
		if errors.Is(err, account.ErrNotFound) {
			return account.ErrInvalidMFACode
		}
		if err != nil {
			return err
		}
		if r.ConfirmedAt != nil {
			return account.ErrMFAAlreadyEnabled
		}
		cur, err := m.open(r)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(cur), []byte(secret)) != 1 || r.LastUsedStep >= step {
			return account.ErrInvalidMFACode // replaced by a new enrolment meanwhile
		}
		if _, err := tx.NewRaw("UPDATE mfa_totp SET confirmed_at = now(), last_used_step = ? WHERE user_id = ?", step, uid).Exec(ctx); err != nil {
			return fmt.Errorf("confirm totp: %w", err)
		}
		if _, err := tx.NewRaw("UPDATE users SET mfa_enabled = true, updated_at = now() WHERE id = ?", uid).Exec(ctx); err != nil {
			return fmt.Errorf("enable mfa: %w", err)
		}
		if _, err := tx.NewRaw("DELETE FROM mfa_recovery_codes WHERE user_id = ?", uid).Exec(ctx); err != nil {
			return fmt.Errorf("delete recovery codes: %w", err)
		}
		for _, h := range codeHashes {
			if _, err := tx.NewRaw("INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES (?, ?)", uid, h).Exec(ctx); err != nil {
				return fmt.Errorf("insert recovery code: %w", err)
			}
		}
		if err := m.users.enqueue(ctx, tx, ev); err != nil {
			return err
		}
		return invalidate(ctx, w, uid)
	})
}

// UseTOTPStep records step as used only if it is newer than the last used one: one
// statement, so of parallel requests with the same code exactly one wins.
func (m *MFA) UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return false, err
	}
	res, err := m.users.DB().NewRaw(`UPDATE mfa_totp SET last_used_step = ?
		WHERE user_id = ? AND confirmed_at IS NOT NULL AND last_used_step < ?`, step, uid, step).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("use totp step: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UseRecoveryCode spends an unused recovery code.
func (m *MFA) UseRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error) {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return false, err
	}
	res, err := m.users.DB().NewRaw(`UPDATE mfa_recovery_codes SET used_at = now()
		WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`, uid, hash).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// DisableTOTP removes the secret and the recovery codes and turns MFA off.
func (m *MFA) DisableTOTP(ctx context.Context, userID string, ev account.Event) error {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return err
	}
	return m.users.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		if _, err := tx.NewRaw("DELETE FROM mfa_totp WHERE user_id = ?", uid).Exec(ctx); err != nil {
			return fmt.Errorf("delete totp: %w", err)
		}
		if _, err := tx.NewRaw("DELETE FROM mfa_recovery_codes WHERE user_id = ?", uid).Exec(ctx); err != nil {
			return fmt.Errorf("delete recovery codes: %w", err)
		}
		res, err := tx.NewRaw("UPDATE users SET mfa_enabled = false, updated_at = now() WHERE id = ? AND mfa_enabled", uid).Exec(ctx)
		if err != nil {
			return fmt.Errorf("disable mfa: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return account.ErrMFANotEnabled // disabled by a parallel request
		}
		if err := m.users.enqueue(ctx, tx, ev); err != nil {
			return err
		}
		return invalidate(ctx, w, uid)
	})
}

// Reencrypt seals every secret again with the newest key (MFA_ENCRYPTION_KEYS' first),
// row by row under a lock; it is idempotent and returns how many rows it rewrote. Run it
// after prepending a new key, before dropping the old one.
func (m *MFA) Reencrypt(ctx context.Context) (int, error) {
	var ids []uuid.UUID
	if err := m.users.DB().NewRaw("SELECT user_id FROM mfa_totp ORDER BY user_id").Scan(ctx, &ids); err != nil {
		return 0, fmt.Errorf("list totp secrets: %w", err)
	}
	n := 0
	for _, uid := range ids {
		err := m.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			r, err := m.row(ctx, tx, uid, true)
			if errors.Is(err, account.ErrNotFound) {
				return nil // removed meanwhile
			}
			if err != nil {
				return err
			}
			pt, err := m.open(r)
			if err != nil {
				return fmt.Errorf("user %s: %w", uid, err)
			}
			s, err := m.keys.Seal([]byte(pt), uid.String())
			if err != nil {
				return err
			}
			if _, err := tx.NewRaw("UPDATE mfa_totp SET kid = ?, nonce = ?, ct = ? WHERE user_id = ?",
				s.KID, s.Nonce, s.Ciphertext, uid).Exec(ctx); err != nil {
				return fmt.Errorf("reseal totp: %w", err)
			}
			n++
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// MFAChallenges adapts the shared challenge store (pkg/mfachallenge: oauth starts
// challenges too) to the account package's errors.
type MFAChallenges struct{ *mfachallenge.Store }

// NewMFAChallenges returns the store.
func NewMFAChallenges(rdb redis.UniversalClient) *MFAChallenges {
	return &MFAChallenges{mfachallenge.New(rdb)}
}

// Get reads a live challenge; account.ErrNotFound when there is none.
func (c *MFAChallenges) Get(ctx context.Context, hash []byte) (account.MFAChallenge, error) {
	ch, err := c.Store.Get(ctx, hash)
	if errors.Is(err, mfachallenge.ErrNotFound) {
		return account.MFAChallenge{}, account.ErrNotFound
	}
	return ch, err
}
