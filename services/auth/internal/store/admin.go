package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/usercache"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
)

var _ admin.Store = (*Admin)(nil)

// Admin is the PostgreSQL store of the admin API.
type Admin struct {
	*Users
}

// NewAdmin returns the store; it shares the account store's cache invalidation.
func NewAdmin(users *Users) *Admin { return &Admin{Users: users} }

// ListUsers reads a page newest first, after the cursor, optionally by email prefix.
func (s *Admin) ListUsers(ctx context.Context, q admin.UserQuery) ([]account.User, error) {
	var after uuid.UUID
	if q.After != nil {
		id, err := accounts.ParseID(q.After.ID)
		if err != nil {
			return nil, admin.ErrInvalidCursor
		}
		after = id
	}
	users, err := s.List(ctx, "u.created_at DESC, u.id DESC", q.Limit, func(sel *bun.SelectQuery) *bun.SelectQuery {
		if q.EmailPrefix != "" {
			sel = sel.Where(`u.email LIKE ? ESCAPE '\'`, likePrefix(q.EmailPrefix))
		}
		if q.After != nil {
			sel = sel.Where("(u.created_at, u.id) < (?, ?)", q.After.CreatedAt, after)
		}
		return sel
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

// SetRoles replaces the user's roles in one transaction.
func (s *Admin) SetRoles(ctx context.Context, userID string, roles []string, ev account.Event) (account.User, error) {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return account.User{}, account.ErrNotFound
	}
	var u account.User
	err = s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		var known []string
		if err := tx.NewRaw("SELECT name FROM roles WHERE name IN (?)", bun.List(roles)).Scan(ctx, &known); err != nil {
			return fmt.Errorf("look up roles: %w", err)
		}
		if len(known) != len(roles) {
			return admin.ErrUnknownRole
		}
		var exists bool
		if err := tx.NewRaw("SELECT EXISTS (SELECT 1 FROM users WHERE id = ? FOR UPDATE)", uid).Scan(ctx, &exists); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if !exists {
			return account.ErrNotFound
		}
		if _, err := tx.NewRaw("DELETE FROM user_roles WHERE user_id = ? AND role NOT IN (?)", uid, bun.List(roles)).Exec(ctx); err != nil {
			return fmt.Errorf("remove roles: %w", err)
		}
		for _, r := range roles {
			if err := accounts.Grant(ctx, tx, uid, r); err != nil {
				return err
			}
		}
		if err := s.enqueue(ctx, tx, ev); err != nil {
			return err
		}
		if u, err = s.One(ctx, tx, "u.id = ?", uid); err != nil {
			return err
		}
		return invalidate(ctx, w, uid)
	})
	return u, err
}

// SetDisabled sets or clears disabled_at; setting it twice keeps the first time.
func (s *Admin) SetDisabled(ctx context.Context, userID string, disabled bool, ev account.Event, beforeCommit func(context.Context) error) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return account.ErrNotFound
	}
	return s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		expr := "disabled_at = NULL"
		if disabled {
			expr = "disabled_at = COALESCE(disabled_at, now())"
		}
		res, err := tx.NewUpdate().Table("users").Set(expr).Set("updated_at = now()").Where("id = ?", uid).Exec(ctx)
		if err != nil {
			return fmt.Errorf("set disabled: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return account.ErrNotFound
		}
		if err := s.enqueue(ctx, tx, ev); err != nil {
			return err
		}
		if err := invalidate(ctx, w, uid); err != nil {
			return err
		}
		return beforeCommit(ctx)
	})
}

type roleRow struct {
	Name        string    `bun:"name"`
	Permissions []string  `bun:"permissions,array"`
	CreatedAt   time.Time `bun:"created_at"`
}

// ListRoles lists roles by name with their permissions.
func (s *Admin) ListRoles(ctx context.Context) ([]admin.Role, error) {
	var rows []roleRow
	err := s.DB().NewRaw(`SELECT r.name, r.created_at,
		COALESCE(array_agg(rp.permission ORDER BY rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '{}') AS permissions
		FROM roles r LEFT JOIN role_permissions rp ON rp.role = r.name
		GROUP BY r.name, r.created_at ORDER BY r.name`).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	out := make([]admin.Role, len(rows))
	for i, r := range rows {
		out[i] = admin.Role{Name: r.Name, Permissions: r.Permissions, CreatedAt: r.CreatedAt}
	}
	return out, nil
}

// CreateRole inserts a role and its permissions; nobody holds it yet, so no cache
// entry can be stale.
func (s *Admin) CreateRole(ctx context.Context, r admin.Role, ev account.Event) (admin.Role, error) {
	err := s.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewRaw("INSERT INTO roles (name) VALUES (?) RETURNING created_at", r.Name).Scan(ctx, &r.CreatedAt); err != nil {
			if postgres.IsUniqueViolation(err, "") {
				return admin.ErrRoleExists
			}
			return fmt.Errorf("insert role: %w", err)
		}
		for _, p := range r.Permissions {
			if _, err := tx.NewRaw("INSERT INTO role_permissions (role, permission) VALUES (?, ?)", r.Name, p).Exec(ctx); err != nil {
				return fmt.Errorf("insert permission: %w", err)
			}
		}
		return s.enqueue(ctx, tx, ev)
	})
	if err != nil {
		return admin.Role{}, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

// DeleteRole removes a role; the foreign keys take it from every user and the cache
// entries of those users are invalidated before the commit and after it.
func (s *Admin) DeleteRole(ctx context.Context, name string, ev account.Event) error {
	return s.RunInTx(ctx, func(ctx context.Context, tx bun.Tx, w *usercache.Writes) error {
		var holders []uuid.UUID
		if err := tx.NewRaw("SELECT user_id FROM user_roles WHERE role = ? FOR UPDATE", name).Scan(ctx, &holders); err != nil &&
			!errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("find holders: %w", err)
		}
		res, err := tx.NewRaw("DELETE FROM roles WHERE name = ?", name).Exec(ctx)
		if err != nil {
			return fmt.Errorf("delete role: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return account.ErrNotFound
		}
		if err := s.enqueue(ctx, tx, ev); err != nil {
			return err
		}
		return invalidate(ctx, w, holders...)
	})
}
