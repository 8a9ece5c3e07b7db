// Package store owns what the oauth service keeps in PostgreSQL: identities, the
// accounts they sign in to (the users table it shares with auth) and the outbox rows of
// its events, each change with its events in one transaction.
package store

import (
	"context"
	"errors"
	"github.com/talentforge/auth/pkg/keyring"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/logging"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/usercache"
)

// Errors the use cases branch on.
var (
	ErrNotFound        = accounts.ErrNotFound
	ErrEmailTaken      = accounts.ErrEmailTaken
	ErrIdentityTaken   = errors.New("identity taken")
	ErrLastLoginMethod = errors.New("last login method")
	// ErrChanged: the account changed under a decision (verified meanwhile); retry.
	ErrChanged = errors.New("account changed")
)

// User is an account (the account core's).
type User = accounts.User

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

// Store is the PostgreSQL store: identities and proofs of its own, the accounts
// through the account core (accounts.Store, which keeps auth's user cache right).
type Store struct {
	*accounts.Store
	keys *keyring.Keyring
}

// New returns the store; keys seals event tokens; cache is the Redis side of auth's
// user cache, which the store invalidates.
func New(db *postgres.DB, keys *keyring.Keyring, cache *usercache.Store) *Store {
	return &Store{Store: accounts.NewStore(db, cache), keys: keys}
}

// UserByIdentity finds the account an identity signs in to.
func (s *Store) UserByIdentity(ctx context.Context, provider, subject string) (User, error) {
	return s.One(ctx, s.DB(), "u.id = (SELECT user_id FROM identities WHERE provider = ? AND subject = ?)", provider, subject)
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
	err := s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
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
	u := User{Email: nu.Email, Name: nu.Name, Roles: nu.Roles}
	if nu.Verified {
		now := time.Now().UTC()
		u.EmailVerifiedAt = &now
	}
	return s.Insert(ctx, tx, u)
}

// insertIdentity links id to id.UserID. An identity linked to an account whose address
// is unproven is marked so: proving the address (at auth) unlinks it.
func insertIdentity(ctx context.Context, db bun.IDB, id Identity, now time.Time) error {
	uid, err := accounts.ParseID(id.UserID)
	if err != nil {
		return ErrChanged // the account is gone
	}
	res, err := db.NewRaw(`INSERT INTO identities (provider, subject, user_id, email, email_verified, linked_at,
		last_sign_in_at, attached_unverified)
		SELECT ?, ?, u.id, ?, ?, ?, ?, u.email_verified_at IS NULL FROM users u WHERE u.id = ?`,
		id.Provider, id.Subject, id.Email, id.EmailVerified, now, now, uid).Exec(ctx)
	if err != nil {
		if postgres.IsUniqueViolation(err, "identities_pkey") || postgres.IsUniqueViolation(err, "identities_user_provider_key") {
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

func insertProof(ctx context.Context, db bun.IDB, userID string, p Proof) error {
	err := accounts.IssueToken(ctx, db, accounts.OneTimeToken{Hash: p.Hash, UserID: userID,
		Purpose: accounts.PurposeEmailVerification, ExpiresAt: p.ExpiresAt, WhileUnverified: true,
		Identity: &accounts.TokenIdentity{Provider: p.Identity.Provider, Subject: p.Identity.Subject, Email: p.Identity.Email}})
	if errors.Is(err, accounts.ErrNotFound) {
		return ErrChanged // verified (or gone) meanwhile
	}
	return err
}

// CreatePending creates an unverified account for an address the provider did not
// vouch for, with no identity linked and no way in until p's token proves the address;
// evs (the verification email) in the same transaction. ErrEmailTaken when the address
// has an account.
func (s *Store) CreatePending(ctx context.Context, nu NewUser, p Proof, evs ...events.Event) (User, error) {
	var u User
	err := s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if u, err = s.insertAccount(ctx, tx, nu); err != nil {
			return err
		}
		if err := insertProof(ctx, tx, u.ID, p); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, u.ID, evs)
	})
	return u, err
}

// SendProof gives an existing unverified account a new token that proves its address
// and links p.Identity, with evs. ErrChanged when the account was verified meanwhile.
func (s *Store) SendProof(ctx context.Context, userID string, p Proof, evs ...events.Event) error {
	return s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := insertProof(ctx, tx, userID, p); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, userID, evs)
	})
}

// Notify writes evs for the user (a notice email) on their own.
func (s *Store) Notify(ctx context.Context, userID string, evs ...events.Event) error {
	return s.enqueue(ctx, s.DB(), userID, evs)
}

// ReplaceUnverified deletes an account whose address was never verified and creates
// a fresh one for the identity in its place, in one transaction: nothing of the old
// account survives (password, MFA, tokens, roles). The old account leaves auth's cache
// before the commit and after it, so auth answers its tokens "user not found" whether
// or not its sessions could be ended; beforeCommit runs last in the transaction.
// ErrChanged when the old account was verified or removed meanwhile.
func (s *Store) ReplaceUnverified(ctx context.Context, oldID string, nu NewUser, id Identity,
	beforeCommit func(context.Context) error, evs ...events.Event) (User, error) {
	old, err := accounts.ParseID(oldID)
	if err != nil {
		return User{}, ErrChanged
	}
	var u User
	err = s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
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
	return s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := insertIdentity(ctx, tx, id, time.Now().UTC()); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, id.UserID, evs)
	})
}

// SignedIn records a sign-in with the identity (what the provider says now) and evs.
func (s *Store) SignedIn(ctx context.Context, id Identity, evs ...events.Event) error {
	return s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`UPDATE identities SET email = ?, email_verified = ?, last_sign_in_at = now()
			WHERE provider = ? AND subject = ?`, id.Email, id.EmailVerified, id.Provider, id.Subject).Exec(ctx); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, id.UserID, evs)
	})
}

// Identities lists the user's identities, oldest first.
func (s *Store) Identities(ctx context.Context, userID string) ([]Identity, error) {
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return nil, err
	}
	var rows []identityRow
	if err := s.DB().NewSelect().Model(&rows).Where("user_id = ?", uid).Order("linked_at", "provider").Scan(ctx); err != nil {
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
	uid, err := accounts.ParseID(userID)
	if err != nil {
		return err
	}
	return s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var hasPassword bool
		if err := tx.NewRaw(`SELECT password_hash IS NOT NULL FROM users WHERE id = ? FOR UPDATE`, uid).Scan(ctx, &hasPassword); err != nil {
			if postgres.IsNoRows(err) {
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

// enqueue writes evs with "user_id" set in each payload (events.UserPayload).
func (s *Store) enqueue(ctx context.Context, tx bun.IDB, userID string, evs []events.Event) error {
	for i, ev := range evs {
		if p, ok := ev.Payload.(events.UserPayload); ok {
			evs[i].Payload = p.WithUserID(userID)
		}
	}
	return events.Enqueue(ctx, tx, s.keys, logging.RequestID(ctx), evs...)
}
