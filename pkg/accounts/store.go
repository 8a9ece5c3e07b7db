package accounts

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/usercache"
)

// Store reads and writes the users and user_roles tables. The user cache's rule is
// kept here for every service that writes users: each write that changes what the cache
// holds runs in RunInTx and invalidates the users it changes through its Writes.
type Store struct {
	db    *postgres.DB
	cache *usercache.Store
}

// NewStore returns the store; cache is the Redis side of the user cache (nil: none).
func NewStore(db *postgres.DB, cache *usercache.Store) *Store {
	return &Store{db: db, cache: cache}
}

// DB is the store's database, for the services' own tables in the same transactions.
func (s *Store) DB() *postgres.DB { return s.db }

// RunInTx runs fn in a transaction. The users fn invalidates through w leave the cache
// at once, before the commit, and again once the transaction has ended, whatever its
// outcome (usercache.Writes): no reader caches, or answers a later request with, a row
// loaded before the commit. An error of the second step is returned although the write
// committed: the caller must not take a revoke for done.
func (s *Store) RunInTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error) error {
	w := s.cache.Begin()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx, w) })
	if derr := w.Done(ctx); err == nil {
		err = derr
	}
	return err
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
	Phone             *string    `bun:"phone"`
	PhoneVerifiedAt   *time.Time `bun:"phone_verified_at"`
	PasswordChangedAt *time.Time `bun:"password_changed_at"`
	CreatedAt         time.Time  `bun:"created_at"`
	UpdatedAt         time.Time  `bun:"updated_at"`
	Roles             []string   `bun:"roles,array,scanonly"`
	Permissions       []string   `bun:"permissions,array,scanonly"`
}

func (r userRow) user() User {
	u := User{
		ID: r.ID.String(), Email: r.Email, Name: r.Name, EmailVerifiedAt: r.EmailVerifiedAt,
		DisabledAt: r.DisabledAt, MFAEnabled: r.MFAEnabled, Roles: r.Roles, Permissions: r.Permissions,
		CreatedAt: r.CreatedAt, CredentialStamp: session.CredentialStamp(r.PasswordChangedAt),
	}
	if r.PasswordHash != nil {
		u.PasswordHash = *r.PasswordHash
	}
	if r.Phone != nil {
		u.Phone = *r.Phone
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	if u.Permissions == nil {
		u.Permissions = []string{}
	}
	return u
}

// selectUser reads users (as u) with their role names and permissions in one query.
func selectUser(db bun.IDB) *bun.SelectQuery {
	return db.NewSelect().Model((*userRow)(nil)).
		ColumnExpr("u.*").
		ColumnExpr("COALESCE((SELECT array_agg(ur.role ORDER BY ur.role) FROM user_roles ur WHERE ur.user_id = u.id), '{}') AS roles").
		ColumnExpr(`COALESCE((SELECT array_agg(DISTINCT rp.permission ORDER BY rp.permission) FROM user_roles ur
			JOIN role_permissions rp ON rp.role = ur.role WHERE ur.user_id = u.id), '{}') AS permissions`).
		ModelTableExpr("users AS u")
}

// One reads the user (aliased u) that where selects, through db (the store's database
// or a transaction); ErrNotFound when none does.
func (s *Store) One(ctx context.Context, db bun.IDB, where string, args ...any) (User, error) {
	var row userRow
	if err := selectUser(db).Where(where, args...).Scan(ctx, &row); err != nil {
		if postgres.IsNoRows(err) {
			return User{}, ErrNotFound
		}
		return User{}, Unavailable(err)
	}
	return row.user(), nil
}

// List reads the users (aliased u) that filter selects, in order, at most limit.
func (s *Store) List(ctx context.Context, order string, limit int, filter func(*bun.SelectQuery) *bun.SelectQuery) ([]User, error) {
	var rows []userRow
	if err := filter(selectUser(s.db).OrderExpr(order).Limit(int64(limit))).Scan(ctx, &rows); err != nil {
		return nil, Unavailable(err)
	}
	out := make([]User, len(rows))
	for i, r := range rows {
		out[i] = r.user()
	}
	return out, nil
}

// UserByEmail finds an account by its normalised address.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.One(ctx, s.db, "u.email = ?", email)
}

// UserByID finds an account by id; an id that is no UUID finds none.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	uid, err := ParseID(id)
	if err != nil {
		return User{}, err
	}
	return s.One(ctx, s.db, "u.id = ?", uid)
}

// ParseID reads a user id; one that is no UUID is ErrNotFound (no such user).
func ParseID(id string) (uuid.UUID, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, ErrNotFound
	}
	return uid, nil
}

// Insert creates u with its roles through db (a transaction). A zero ID or CreatedAt is
// filled in; ErrEmailTaken when the address has an account. A new id is in no cache.
func (s *Store) Insert(ctx context.Context, db bun.IDB, u User) (User, error) {
	if u.ID == "" {
		u.ID = uuid.NewString()
	}
	uid, err := uuid.Parse(u.ID)
	if err != nil {
		return User{}, fmt.Errorf("insert user: id %q is no UUID", u.ID)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now().UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	}
	row := userRow{ID: uid, Email: u.Email, Name: u.Name, EmailVerifiedAt: u.EmailVerifiedAt,
		CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt}
	if u.PasswordHash != "" {
		row.PasswordHash = &u.PasswordHash
	}
	if _, err := db.NewInsert().Model(&row).Exec(ctx); err != nil {
		if postgres.IsUniqueViolation(err, "users_email_key") {
			return User{}, ErrEmailTaken
		}
		return User{}, fmt.Errorf("insert user: %w", Unavailable(err))
	}
	for _, role := range u.Roles {
		if err := Grant(ctx, db, uid, role); err != nil {
			return User{}, err
		}
	}
	u.Roles = slices.Clone(u.Roles)
	if u.Roles == nil {
		u.Roles = []string{}
	}
	return u, nil
}

// Grant gives the user role through db (idempotent); the caller invalidates.
func Grant(ctx context.Context, db bun.IDB, userID uuid.UUID, role string) error {
	_, err := db.NewRaw("INSERT INTO user_roles (user_id, role) VALUES (?, ?) ON CONFLICT DO NOTHING", userID, role).Exec(ctx)
	if err != nil {
		return fmt.Errorf("grant role %s: %w", role, Unavailable(err))
	}
	return nil
}

// GrantRole gives a user a role (idempotent).
func (s *Store) GrantRole(ctx context.Context, userID, role string) error {
	uid, err := ParseID(userID)
	if err != nil {
		return err
	}
	return s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		if err := Grant(ctx, tx, uid, role); err != nil {
			return err
		}
		return w.Invalidate(ctx, uid.String())
	})
}

// GrantOwedAdmin gives a configured admin (admins.Owed) the admin role and returns the
// user as it is now.
// SecondFactors are what an account with MFA on may answer the second step with: a
// TOTP or a recovery code, and a passkey when it holds one (auth's passkeys table).
func (s *Store) SecondFactors(ctx context.Context, userID string) ([]string, error) {
	factors := []string{"totp", "recovery_code"}
	uid, err := ParseID(userID)
	if err != nil {
		return factors, nil
	}
	var passkeys bool
	if err := s.db.NewRaw("SELECT EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?)", uid).Scan(ctx, &passkeys); err != nil {
		return nil, fmt.Errorf("second factors: %w", err)
	}
	if passkeys {
		factors = append(factors, "webauthn")
	}
	return factors, nil
}

func (s *Store) GrantOwedAdmin(ctx context.Context, u User, admins Admins) (User, error) {
	if !admins.Owed(u) {
		return u, nil
	}
	if err := s.GrantRole(ctx, u.ID, "admin"); err != nil {
		return User{}, fmt.Errorf("grant admin: %w", err)
	}
	u.Roles = append(slices.Clone(u.Roles), "admin")
	slices.Sort(u.Roles)
	return u, nil
}
