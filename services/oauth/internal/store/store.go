// Package store owns what the oauth service keeps in PostgreSQL: identities, the
// accounts they sign in to (the users table it shares with auth) and the outbox rows of
// its events, each change with its events in one transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
)

// Errors the use cases branch on.
var (
	ErrNotFound        = errors.New("not found")
	ErrEmailTaken      = errors.New("email taken")
	ErrIdentityTaken   = errors.New("identity taken")
	ErrLastLoginMethod = errors.New("last login method")
	// ErrChanged: the account changed under a decision (verified meanwhile); retry.
	ErrChanged = errors.New("account changed")
)

// User is the account as the oauth service sees it.
type User struct {
	ID              string
	Email           string
	Name            string
	EmailVerifiedAt *time.Time
	DisabledAt      *time.Time
	MFAEnabled      bool
	HasPassword     bool
	Roles           []string
	CreatedAt       time.Time
	// CredentialStamp is session.CredentialStamp of the password's last change.
	CredentialStamp string
}

// Verified reports whether the account's address is verified.
func (u User) Verified() bool { return u.EmailVerifiedAt != nil }

// Identity is a provider identity linked to a user.
type Identity struct {
	Provider      string
	Subject       string
	UserID        string
	Email         string
	EmailVerified bool
	LinkedAt      time.Time
	// Name is the provider's display name: a new account's name; not stored.
	Name string
}

// Store is the PostgreSQL store. auth caches users in Redis (pkg/usercache): every write
// here that changes or removes a users row auth caches runs in runInTx and invalidates it.
type Store struct {
	db    *postgres.DB
	keys  *events.Keyring
	cache *usercache.Store
}

// New returns the store; keys seals event tokens (the oauth events carry none); cache
// is auth's user cache, which the store invalidates.
func New(db *postgres.DB, keys *events.Keyring, cache *usercache.Store) *Store {
	return &Store{db: db, keys: keys, cache: cache}
}

// runInTx runs fn in a transaction. The users fn invalidates through w are dropped from
// auth's cache at once, before the commit, and again once the transaction has ended,
// whatever its outcome (usercache.Writes): auth neither keeps nor refills what the
// transaction changed. An error of that second step is returned although the write
// committed.
func (s *Store) runInTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error) error {
	w := s.cache.Begin()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx, w) })
	if derr := w.Done(ctx); err == nil {
		err = derr
	}
	return err
}

type userRow struct {
	ID              uuid.UUID  `bun:"id"`
	Email           string     `bun:"email"`
	Name            string     `bun:"name"`
	PasswordHash    *string    `bun:"password_hash"`
	EmailVerifiedAt *time.Time `bun:"email_verified_at"`
	DisabledAt      *time.Time `bun:"disabled_at"`
	MFAEnabled      bool       `bun:"mfa_enabled"`
	CreatedAt       time.Time  `bun:"created_at"`
	Roles           []string   `bun:"roles,array"`
	PasswordChanged *time.Time `bun:"password_changed_at"`
}

func (r userRow) user() User {
	u := User{ID: r.ID.String(), Email: r.Email, Name: r.Name, EmailVerifiedAt: r.EmailVerifiedAt,
		DisabledAt: r.DisabledAt, MFAEnabled: r.MFAEnabled, HasPassword: r.PasswordHash != nil,
		Roles: r.Roles, CreatedAt: r.CreatedAt, CredentialStamp: session.CredentialStamp(r.PasswordChanged)}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	return u
}

const selectUser = `SELECT u.id, u.email, u.name, u.password_hash, u.email_verified_at, u.disabled_at,
	u.mfa_enabled, u.created_at, u.password_changed_at,
	COALESCE((SELECT array_agg(ur.role ORDER BY ur.role) FROM user_roles ur WHERE ur.user_id = u.id), '{}') AS roles
	FROM users u `

func (s *Store) one(ctx context.Context, db bun.IDB, where string, args ...any) (User, error) {
	var r userRow
	if err := db.NewRaw(selectUser+where, args...).Scan(ctx, &r); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return User{}, ErrNotFound
		}
		return User{}, err
	}
	return r.user(), nil
}

// UserByID finds an account.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return User{}, ErrNotFound
	}
	return s.one(ctx, s.db, "WHERE u.id = ?", uid)
}

// UserByEmail finds an account by its normalised address.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.one(ctx, s.db, "WHERE u.email = ?", email)
}

// UserByIdentity finds the account an identity signs in to.
func (s *Store) UserByIdentity(ctx context.Context, provider, subject string) (User, error) {
	return s.one(ctx, s.db, "WHERE u.id = (SELECT user_id FROM identities WHERE provider = ? AND subject = ?)", provider, subject)
}

type identityRow struct {
	bun.BaseModel `bun:"table:identities"`

	Provider      string     `bun:"provider,pk"`
	Subject       string     `bun:"subject,pk"`
	UserID        uuid.UUID  `bun:"user_id,type:uuid"`
	Email         string     `bun:"email"`
	EmailVerified bool       `bun:"email_verified"`
	LinkedAt      time.Time  `bun:"linked_at"`
	LastSignInAt  *time.Time `bun:"last_sign_in_at"`
}

// NewUser is an account to create with its first identity.
type NewUser struct {
	Email    string
	Name     string
	Verified bool
	Roles    []string // "user" and, for ADMIN_EMAILS, "admin"
}

// CreateUser creates the account with the identity linked and writes evs (each payload
// a map; "user_id" is filled in), in one transaction. The id is new: auth has nothing
// of it cached. ErrEmailTaken when the address
// has an account; ErrIdentityTaken when the identity is linked meanwhile.
func (s *Store) CreateUser(ctx context.Context, nu NewUser, id Identity, evs ...events.Event) (User, error) {
	var u User
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		u, err = s.insertUser(ctx, tx, nu, id)
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, u.ID, evs)
	})
	return u, err
}

func (s *Store) insertUser(ctx context.Context, tx bun.Tx, nu NewUser, id Identity) (User, error) {
	u, err := s.insertAccount(ctx, tx, nu)
	if err != nil {
		return User{}, err
	}
	id.UserID = u.ID
	if err := insertIdentity(ctx, tx, id, u.CreatedAt); err != nil {
		return User{}, err
	}
	return u, nil
}

func (s *Store) insertAccount(ctx context.Context, tx bun.Tx, nu NewUser) (User, error) {
	now := time.Now().UTC()
	uid := uuid.New()
	var verifiedAt *time.Time
	if nu.Verified {
		verifiedAt = &now
	}
	if _, err := tx.NewRaw(`INSERT INTO users (id, email, name, email_verified_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`, uid, nu.Email, nu.Name, verifiedAt, now, now).Exec(ctx); err != nil {
		if uniqueViolation(err) {
			return User{}, ErrEmailTaken
		}
		return User{}, err
	}
	for _, r := range nu.Roles {
		if _, err := tx.NewRaw(`INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, uid, r).Exec(ctx); err != nil {
			return User{}, err
		}
	}
	return User{ID: uid.String(), Email: nu.Email, Name: nu.Name, EmailVerifiedAt: verifiedAt,
		Roles: append([]string(nil), nu.Roles...), CreatedAt: now}, nil
}

// insertIdentity links id to id.UserID. An identity linked to an account whose address
// is unproven is marked so: proving the address (at auth) unlinks it.
func insertIdentity(ctx context.Context, db bun.IDB, id Identity, now time.Time) error {
	res, err := db.NewRaw(`INSERT INTO identities (provider, subject, user_id, email, email_verified, linked_at,
		last_sign_in_at, attached_unverified)
		SELECT ?, ?, u.id, ?, ?, ?, ?, u.email_verified_at IS NULL FROM users u WHERE u.id = ?`,
		id.Provider, id.Subject, id.Email, id.EmailVerified, now, now, uuid.MustParse(id.UserID)).Exec(ctx)
	if err != nil {
		if uniqueViolation(err) {
			return ErrIdentityTaken
		}
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrChanged // the account is gone
	}
	return nil
}

// Proof is a verification token for an address a provider did not vouch for: sent by
// email, it proves the address and links Identity (auth's /v1/auth/email/verify).
type Proof struct {
	Hash      []byte // SHA-256 of the token; the token itself only travels sealed in the event
	ExpiresAt time.Time
	Identity  Identity
}

func insertProof(ctx context.Context, db bun.IDB, userID uuid.UUID, p Proof) error {
	// Only the newest link works, as with auth's links.
	if _, err := db.NewRaw(`UPDATE one_time_tokens SET used_at = now()
		WHERE user_id = ? AND purpose = 'email_verification' AND used_at IS NULL`, userID).Exec(ctx); err != nil {
		return err
	}
	res, err := db.NewRaw(`INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at,
		identity_provider, identity_subject, identity_email)
		SELECT ?, u.id, 'email_verification', ?, ?, ?, ? FROM users u WHERE u.id = ? AND u.email_verified_at IS NULL`,
		p.Hash, p.ExpiresAt, p.Identity.Provider, p.Identity.Subject, p.Identity.Email, userID).Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrChanged // verified (or gone) meanwhile
	}
	return nil
}

// CreatePending creates an unverified account for an address the provider did not
// vouch for, with no identity linked and no way in until p's token proves the address;
// evs (the verification email) in the same transaction. ErrEmailTaken when the address
// has an account.
func (s *Store) CreatePending(ctx context.Context, nu NewUser, p Proof, evs ...events.Event) (User, error) {
	var u User
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if u, err = s.insertAccount(ctx, tx, nu); err != nil {
			return err
		}
		if err := insertProof(ctx, tx, uuid.MustParse(u.ID), p); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, u.ID, evs)
	})
	return u, err
}

// SendProof gives an existing unverified account a new token that proves its address
// and links p.Identity, with evs. ErrChanged when the account was verified meanwhile.
func (s *Store) SendProof(ctx context.Context, userID string, p Proof, evs ...events.Event) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return ErrChanged
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := insertProof(ctx, tx, uid, p); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, userID, evs)
	})
}

// Notify writes evs for the user (a notice email) on their own.
func (s *Store) Notify(ctx context.Context, userID string, evs ...events.Event) error {
	return s.enqueue(ctx, s.db, userID, evs)
}

// ReplaceUnverified deletes an account whose address was never verified and creates
// a fresh one for the identity in its place, in one transaction: nothing of the old
// account survives (password, MFA, tokens, roles). The old account leaves auth's cache
// before the commit and after it, so auth answers its tokens "user not found" whether
// or not its sessions could be ended; beforeCommit runs last in the transaction.
// ErrChanged when the old account was verified or removed meanwhile.
func (s *Store) ReplaceUnverified(ctx context.Context, oldID string, nu NewUser, id Identity,
	beforeCommit func(context.Context) error, evs ...events.Event) (User, error) {
	old, err := uuid.Parse(oldID)
	if err != nil {
		return User{}, ErrChanged
	}
	var u User
	err = s.runInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		res, err := tx.NewRaw(`DELETE FROM users WHERE id = ? AND email_verified_at IS NULL`, old).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrChanged
		}
		if err := w.Invalidate(ctx, old.String()); err != nil {
			return err
		}
		if u, err = s.insertUser(ctx, tx, nu, id); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, u.ID, evs); err != nil {
			return err
		}
		return beforeCommit(ctx)
	})
	return u, err
}

// Link links the identity to the user and writes evs. ErrIdentityTaken when the
// identity belongs to someone, or the user already has one of this provider.
func (s *Store) Link(ctx context.Context, id Identity, evs ...events.Event) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := insertIdentity(ctx, tx, id, time.Now().UTC()); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, id.UserID, evs)
	})
}

// SignedIn records a sign-in with the identity (what the provider says now) and evs.
func (s *Store) SignedIn(ctx context.Context, id Identity, evs ...events.Event) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`UPDATE identities SET email = ?, email_verified = ?, last_sign_in_at = now()
			WHERE provider = ? AND subject = ?`, id.Email, id.EmailVerified, id.Provider, id.Subject).Exec(ctx); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, id.UserID, evs)
	})
}

// Identities lists the user's identities, oldest first.
func (s *Store) Identities(ctx context.Context, userID string) ([]Identity, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return nil, ErrNotFound
	}
	var rows []identityRow
	if err := s.db.NewSelect().Model(&rows).Where("user_id = ?", uid).Order("linked_at", "provider").Scan(ctx); err != nil {
		return nil, err
	}
	out := make([]Identity, len(rows))
	for i, r := range rows {
		out[i] = Identity{Provider: r.Provider, Subject: r.Subject, UserID: r.UserID.String(), Email: r.Email,
			EmailVerified: r.EmailVerified, LinkedAt: r.LinkedAt}
	}
	return out, nil
}

// Unlink removes the user's identity of provider and writes evs, unless it is the
// last way to sign in (no password and no other identity): ErrLastLoginMethod. The
// user row is locked so two unlinks cannot each leave the other as the last.
func (s *Store) Unlink(ctx context.Context, userID, provider string, evs ...events.Event) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return ErrNotFound
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var hasPassword bool
		if err := tx.NewRaw(`SELECT password_hash IS NOT NULL FROM users WHERE id = ? FOR UPDATE`, uid).Scan(ctx, &hasPassword); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		var others int
		if err := tx.NewRaw(`SELECT count(*) FROM identities WHERE user_id = ? AND provider <> ?`, uid, provider).Scan(ctx, &others); err != nil {
			return err
		}
		res, err := tx.NewRaw(`DELETE FROM identities WHERE user_id = ? AND provider = ?`, uid, provider).Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if !hasPassword && others == 0 {
			return ErrLastLoginMethod // rolls the delete back
		}
		return s.enqueue(ctx, tx, userID, evs)
	})
}

// enqueue writes evs with "user_id" set in each map payload.
func (s *Store) enqueue(ctx context.Context, tx bun.IDB, userID string, evs []events.Event) error {
	for _, ev := range evs {
		if m, ok := ev.Payload.(map[string]any); ok {
			m["user_id"] = userID
		}
	}
	return events.Enqueue(ctx, tx, s.keys, httpx.RequestID(ctx), evs...)
}

func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
