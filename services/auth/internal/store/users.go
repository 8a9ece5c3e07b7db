// Package store owns the auth service's PostgreSQL tables: users, roles, one-time
// tokens and the outbox. Storage errors become the account package's sentinels here.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
)

var _ account.Users = (*Users)(nil)

// Users is the PostgreSQL account store. Every write that changes what the user cache
// holds runs in runInTx and invalidates the users it changes there. Events go to the
// outbox in the same transaction, as envelopes whose tokens keys sealed.
type Users struct {
	db    *postgres.DB
	cache *UserCache
	keys  *events.Keyring
}

// NewUsers returns the store; keys seals the tokens of the events it writes.
func NewUsers(db *postgres.DB, cache *UserCache, keys *events.Keyring) *Users {
	return &Users{db: db, cache: cache, keys: keys}
}

// runInTx runs fn in a transaction. The users fn passes to invalidate are invalidated
// at once, before the commit, and again once the transaction has ended, whatever its
// outcome (usercache.Writes): no reader caches, or answers a later request with, a row
// loaded before the commit. An error of the second step is returned even though the
// write committed: the caller must not take a revoke for done.
func (s *Users) runInTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error) error {
	w := s.cache.begin()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx, w) })
	if derr := w.Done(ctx); err == nil {
		err = derr
	}
	return err
}

// invalidate invalidates the users inside w's transaction.
func invalidate(ctx context.Context, w *usercache.Writes, ids ...uuid.UUID) error {
	return w.Invalidate(ctx, invalidateIDs(ids...)...)
}

type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID                uuid.UUID  `bun:"id,pk,type:uuid"`
	Email             string     `bun:"email"`
	Name              string     `bun:"name"`
	PasswordHash      *string    `bun:"password_hash"`
	EmailVerifiedAt   *time.Time `bun:"email_verified_at"`
	DisabledAt        *time.Time `bun:"disabled_at"`
	MFAEnabled        bool       `bun:"mfa_enabled"`
	PasswordChangedAt *time.Time `bun:"password_changed_at"`
	CreatedAt         time.Time  `bun:"created_at"`
	UpdatedAt         time.Time  `bun:"updated_at"`
	Roles             []string   `bun:"roles,array,scanonly"`
	Permissions       []string   `bun:"permissions,array,scanonly"`
}

func (r userRow) user() account.User {
	u := account.User{
		ID: r.ID.String(), Email: r.Email, Name: r.Name, EmailVerifiedAt: r.EmailVerifiedAt,
		DisabledAt: r.DisabledAt, MFAEnabled: r.MFAEnabled, Roles: r.Roles, Permissions: r.Permissions,
		CreatedAt: r.CreatedAt, CredentialStamp: session.CredentialStamp(r.PasswordChangedAt),
	}
	if r.PasswordHash != nil {
		u.PasswordHash = *r.PasswordHash
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	if u.Permissions == nil {
		u.Permissions = []string{}
	}
	return u
}

// selectUser reads users with their role names and permissions in one query.
func selectUser(db bun.IDB) *bun.SelectQuery {
	return db.NewSelect().Model((*userRow)(nil)).
		ColumnExpr("u.*").
		ColumnExpr("COALESCE((SELECT array_agg(ur.role ORDER BY ur.role) FROM user_roles ur WHERE ur.user_id = u.id), '{}') AS roles").
		ColumnExpr(`COALESCE((SELECT array_agg(DISTINCT rp.permission ORDER BY rp.permission) FROM user_roles ur
			JOIN role_permissions rp ON rp.role = ur.role WHERE ur.user_id = u.id), '{}') AS permissions`).
		ModelTableExpr("users AS u")
}

func (s *Users) one(ctx context.Context, db bun.IDB, where string, args ...any) (account.User, error) {
	var row userRow
	if err := selectUser(db).Where(where, args...).Scan(ctx, &row); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return account.User{}, account.ErrNotFound
		}
		return account.User{}, err
	}
	return row.user(), nil
}

// UserByEmail finds an account by its normalised address.
func (s *Users) UserByEmail(ctx context.Context, email string) (account.User, error) {
	return s.one(ctx, s.db, "u.email = ?", email)
}

// UserByID finds an account by id.
func (s *Users) UserByID(ctx context.Context, id string) (account.User, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return account.User{}, account.ErrNotFound
	}
	return s.one(ctx, s.db, "u.id = ?", uid)
}

// CreateUser inserts the account, its roles, its first token and events in one transaction.
func (s *Users) CreateUser(ctx context.Context, u account.User, tok *account.OneTimeToken, events []account.Event) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		row := userRow{ID: uuid.MustParse(u.ID), Email: u.Email, Name: u.Name, CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt}
		if u.PasswordHash != "" {
			row.PasswordHash = &u.PasswordHash
		}
		row.EmailVerifiedAt = u.EmailVerifiedAt
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			if postgres.IsUniqueViolation(err, "users_email_key") {
				return account.ErrEmailTaken
			}
			return fmt.Errorf("insert user: %w", err)
		}
		for _, role := range u.Roles {
			if err := grant(ctx, tx, row.ID, role); err != nil {
				return err
			}
		}
		if tok != nil {
			if err := insertToken(ctx, tx, *tok); err != nil {
				return err
			}
		}
		return s.enqueue(ctx, tx, events...)
	})
}

func grant(ctx context.Context, db bun.IDB, userID uuid.UUID, role string) error {
	_, err := db.NewRaw("INSERT INTO user_roles (user_id, role) VALUES (?, ?) ON CONFLICT DO NOTHING", userID, role).Exec(ctx)
	if err != nil {
		return fmt.Errorf("grant role %s: %w", role, err)
	}
	return nil
}

// GrantRole gives a user a role (idempotent).
func (s *Users) GrantRole(ctx context.Context, userID, role string) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return account.ErrNotFound
	}
	return s.runInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		if err := grant(ctx, tx, uid, role); err != nil {
			return err
		}
		return invalidate(ctx, w, uid)
	})
}

// UpgradePasswordHash swaps the hash only when it is still the one that was checked,
// so a password changed in between is never overwritten.
func (s *Users) UpgradePasswordHash(ctx context.Context, userID, oldHash, newHash string) error {
	_, err := s.db.NewUpdate().Table("users").
		Set("password_hash = ?", newHash).
		Where("id = ? AND password_hash = ?", uuid.MustParse(userID), oldHash).Exec(ctx)
	if err != nil {
		return fmt.Errorf("upgrade password hash: %w", err)
	}
	return nil
}

// UpdateName sets the display name.
func (s *Users) UpdateName(ctx context.Context, userID, name string) (account.User, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return account.User{}, account.ErrNotFound
	}
	err = s.runInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
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
	uid, err := uuid.Parse(userID)
	if err != nil {
		return "", account.ErrNotFound
	}
	var changed time.Time
	err = s.runInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
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
	return s.enqueue(ctx, s.db, events...)
}

// enqueue writes events to the outbox through db (the caller's transaction), with the
// request id of ctx (docs/events.md).
func (s *Users) enqueue(ctx context.Context, db bun.IDB, evs ...account.Event) error {
	return s.enqueueFor(ctx, db, httpx.RequestID(ctx), evs...)
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
