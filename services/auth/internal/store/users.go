// Package store owns the auth service's PostgreSQL tables: users, roles, one-time
// tokens and the outbox. Storage errors become the account package's sentinels here.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
)

var _ account.Users = (*Users)(nil)

// Users is the PostgreSQL account store: the account core's users and roles
// (accounts.Store, whose RunInTx every write that changes what the user cache holds
// goes through) and auth's own tables. Events go to the outbox in the same
// transaction, as envelopes whose tokens keys sealed.
type Users struct {
	*accounts.Store
	keys *keyring.Keyring
}

// NewUsers returns the store over cache's account store (none: no cache to
// invalidate); keys seals the tokens of the events it writes.
func NewUsers(db *postgres.DB, cache *UserCache, keys *keyring.Keyring) *Users {
	core := accounts.NewStore(db, nil)
	if cache != nil {
		core = cache.Accounts()
	}
	return &Users{Store: core, keys: keys}
}

// invalidate invalidates the users inside w's transaction.
func invalidate(ctx context.Context, w *usercache.Writes, ids ...uuid.UUID) error {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return w.Invalidate(ctx, out...)
}

// CreateUser inserts the account, its roles, its first token and events in one
// transaction; a new id is in no cache.
func (s *Users) CreateUser(ctx context.Context, u account.User, tok *account.OneTimeToken, events []account.Event) error {
	return s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := s.Insert(ctx, tx, u); err != nil {
			return err
		}
		if tok != nil {
			if err := accounts.InsertToken(ctx, tx, *tok); err != nil {
				return err
			}
		}
		return s.enqueue(ctx, tx, events...)
	})
}

// UpgradePasswordHash swaps the hash only when it is still the one that was checked,
// so a password changed in between is never overwritten.
func (s *Users) UpgradePasswordHash(ctx context.Context, userID, oldHash, newHash string) error {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return err
	}
	_, err = s.DB().NewUpdate().Table("users").
		Set("password_hash = ?", newHash).
		Where("id = ? AND password_hash = ?", uid, oldHash).Exec(ctx)
	if err != nil {
		return fmt.Errorf("upgrade password hash: %w", err)
	}
	return nil
}

// UpdateName sets the display name.
func (s *Users) UpdateName(ctx context.Context, userID, name string) (account.User, error) {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return account.User{}, err
	}
	err = s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		res, err := tx.NewUpdate().Table("users").Set("name = ?, updated_at = now()", name).Where("id = ?", uid).Exec(ctx)
		if err != nil {
			return fmt.Errorf("update name: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return account.ErrNotFound
		}
		return invalidate(ctx, w, uid)
	})
	if err != nil {
		return account.User{}, err
	}
	return s.UserByID(ctx, userID)
}

// SetPassword replaces the password and writes events; beforeCommit runs in the
// transaction. It returns the account's new credential stamp.
func (s *Users) SetPassword(ctx context.Context, userID, passwordHash string, events []account.Event, beforeCommit func(context.Context) error) (string, error) {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return "", err
	}
	var changed time.Time
	err = s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		err := tx.NewRaw(`UPDATE users SET password_hash = ?, password_changed_at = now(), updated_at = now()
			WHERE id = ? RETURNING password_changed_at`, passwordHash, uid).Scan(ctx, &changed)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update password: %w", err)
		}
		if err := invalidate(ctx, w, uid); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, events...); err != nil {
			return err
		}
		return beforeCommit(ctx)
	})
	if err != nil {
		return "", err
	}
	return session.CredentialStamp(&changed), nil
}

// Enqueue writes events to the outbox on their own.
func (s *Users) Enqueue(ctx context.Context, events ...account.Event) error {
	return s.enqueue(ctx, s.DB(), events...)
}

// enqueue writes events to the outbox through db (the caller's transaction), with the
// request id of ctx (docs/events.md).
func (s *Users) enqueue(ctx context.Context, db bun.IDB, evs ...account.Event) error {
	return s.enqueueFor(ctx, db, logging.RequestID(ctx), evs...)
}

// enqueueFor is enqueue with the request id given: work done for a request after it
// was answered (an email request's processing).
func (s *Users) enqueueFor(ctx context.Context, db bun.IDB, requestID string, evs ...account.Event) error {
	out := make([]events.Event, len(evs))
	for i, ev := range evs {
		out[i] = events.Event{Subject: ev.Subject, Payload: ev.Payload}
	}
	return events.Enqueue(ctx, db, s.keys, requestID, out...)
}
