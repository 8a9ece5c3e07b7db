package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/auth/internal/account"
)

var _ account.PasskeyStore = (*Passkeys)(nil)

// Passkeys keeps the WebAuthn credentials (table passkeys). Their events go to the
// outbox in the same transaction.
type Passkeys struct{ users *Users }

// NewPasskeys returns the store.
func NewPasskeys(users *Users) *Passkeys { return &Passkeys{users: users} }

type passkeyRow struct {
	bun.BaseModel `bun:"table:passkeys"`

	ID                uuid.UUID  `bun:"id,pk,type:uuid"`
	UserID            uuid.UUID  `bun:"user_id,type:uuid"`
	CredentialID      []byte     `bun:"credential_id"`
	PublicKey         []byte     `bun:"public_key"`
	SignCount         int64      `bun:"sign_count"`
	Transports        []string   `bun:"transports,array"`
	AAGUID            []byte     `bun:"aaguid"`
	AttestationFormat string     `bun:"attestation_format"`
	BackupEligible    bool       `bun:"backup_eligible"`
	BackupState       bool       `bun:"backup_state"`
	Name              string     `bun:"name"`
	CreatedAt         time.Time  `bun:"created_at"`
	LastUsedAt        *time.Time `bun:"last_used_at"`
}

func (r passkeyRow) passkey() account.Passkey {
	return account.Passkey{ID: r.ID.String(), UserID: r.UserID.String(), CredentialID: r.CredentialID, PublicKey: r.PublicKey,
		SignCount: uint32(r.SignCount), Transports: r.Transports, AAGUID: r.AAGUID, AttestationFormat: r.AttestationFormat,
		BackupEligible: r.BackupEligible, BackupState: r.BackupState, Name: r.Name, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt}
}

func passkeyRows(rows []passkeyRow) []account.Passkey {
	out := make([]account.Passkey, len(rows))
	for i, r := range rows {
		out[i] = r.passkey()
	}
	return out
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Passkeys) Passkeys(ctx context.Context, userID string) ([]account.Passkey, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return nil, nil
	}
	var rows []passkeyRow
	if err := s.users.DB().NewSelect().Model(&rows).Where("user_id = ?", uid).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return passkeyRows(rows), nil
}

// PasskeyByCredentialID finds a passkey by its authenticator's id.
func (s *Passkeys) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (account.Passkey, error) {
	var r passkeyRow
	err := s.users.DB().NewSelect().Model(&r).Where("credential_id = ?", credentialID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return account.Passkey{}, account.ErrNotFound
	}
	if err != nil {
		return account.Passkey{}, fmt.Errorf("load passkey: %w", err)
	}
	return r.passkey(), nil
}

// AddPasskey stores a new passkey and its event. The account's row is locked so that
// parallel registrations cannot pass the limit together.
func (s *Passkeys) AddPasskey(ctx context.Context, p account.Passkey, limit int, ev account.Event) (account.Passkey, error) {
	id, err := uuid.Parse(p.ID)
	if err != nil {
		return account.Passkey{}, fmt.Errorf("passkey id: %w", err)
	}
	uid, err := accounts.ParseID(p.UserID)
	if err != nil {
		return account.Passkey{}, err
	}
	r := passkeyRow{ID: id, UserID: uid, CredentialID: p.CredentialID, PublicKey: p.PublicKey, SignCount: int64(p.SignCount),
		Transports: p.Transports, AAGUID: p.AAGUID, AttestationFormat: p.AttestationFormat, BackupEligible: p.BackupEligible,
		BackupState: p.BackupState, Name: p.Name}
	if r.Transports == nil {
		r.Transports = []string{}
	}
	if r.AAGUID == nil {
		r.AAGUID = []byte{}
	}
	if r.AttestationFormat == "" {
		r.AttestationFormat = "none"
	}
	err = s.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var n int
		if err := tx.NewRaw("SELECT count(*) FROM passkeys WHERE user_id = (SELECT id FROM users WHERE id = ? FOR UPDATE)", uid).
			Scan(ctx, &n); err != nil {
			return fmt.Errorf("count passkeys: %w", err)
		}
		if n >= limit {
			return account.ErrTooManyPasskeys
		}
		if err := tx.NewInsert().Model(&r).ExcludeColumn("created_at", "last_used_at").Returning("created_at").Scan(ctx); err != nil {
			if postgres.IsUniqueViolation(err, "passkeys_credential_id_key") {
				return account.ErrPasskeyRefused // registered already, maybe by another account
			}
			return fmt.Errorf("insert passkey: %w", err)
		}
		return s.users.enqueue(ctx, tx, ev)
	})
	if err != nil {
		return account.Passkey{}, err
	}
	return r.passkey(), nil
}

// RenamePasskey renames one of the user's passkeys.
func (s *Passkeys) RenamePasskey(ctx context.Context, userID, id, name string) (account.Passkey, error) {
	var r passkeyRow
	err := s.users.DB().NewUpdate().Model(&r).Set("name = ?", name).Where("id = ? AND user_id = ?", id, userID).
		Returning("*").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return account.Passkey{}, account.ErrNotFound
	}
	if err != nil {
		return account.Passkey{}, fmt.Errorf("rename passkey: %w", err)
	}
	return r.passkey(), nil
}

// DeletePasskey deletes one of the user's passkeys and writes its event.
func (s *Passkeys) DeletePasskey(ctx context.Context, userID, id string, ev func(account.Passkey) account.Event) (account.Passkey, error) {
	var r passkeyRow
	err := s.users.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := tx.NewDelete().Model(&r).Where("id = ? AND user_id = ?", id, userID).Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete passkey: %w", err)
		}
		return s.users.enqueue(ctx, tx, ev(r.passkey()))
	})
	if err != nil {
		return account.Passkey{}, err
	}
	return r.passkey(), nil
}

// UsePasskey records a sign-in if its counter is newer than the stored one (or the
// authenticator keeps none: both zero): one statement, so of two parallel sign-ins with
// the same counter one loses.
func (s *Passkeys) UsePasskey(ctx context.Context, p account.Passkey) (bool, error) {
	res, err := s.users.DB().NewRaw(`UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = now()
		WHERE id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`,
		int64(p.SignCount), p.BackupState, p.ID, int64(p.SignCount), int64(p.SignCount)).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("use passkey: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
