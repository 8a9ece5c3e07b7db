// Package admin holds the use cases of the admin API: listing and inspecting users,
// setting their roles, disabling and enabling them, and managing roles and their
// permissions. Every action is recorded through the outbox for the audit log.
package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/emailaddr"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/auth/internal/account"
)

// Role is a named set of permissions.
type Role struct {
	Name        string
	Permissions []string
	CreatedAt   time.Time
}

// Cursor is a position in the newest-first user list.
type Cursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"id"`
}

// UserQuery selects a page of users, newest first.
type UserQuery struct {
	Limit       int
	After       *Cursor
	EmailPrefix string
}

// Built-in roles cannot be deleted.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Errors the HTTP layer maps to codes.
var (
	ErrUnknownRole       = errors.New("unknown role")
	ErrRoleExists        = errors.New("role exists")
	ErrRoleProtected     = errors.New("built-in role")
	ErrInvalidRole       = errors.New("invalid role name")
	ErrInvalidPermission = errors.New("invalid permission")
	ErrInvalidCursor     = errors.New("invalid cursor")
	ErrInvalidLimit      = errors.New("invalid limit")
)

// Store is what the admin use cases need from PostgreSQL. Writes invalidate the user
// cache of every user they change before they commit.
type Store interface {
	ListUsers(ctx context.Context, q UserQuery) ([]account.User, error)
	UserByID(ctx context.Context, id string) (account.User, error)
	// SetRoles replaces the user's roles; ErrUnknownRole names none of them.
	SetRoles(ctx context.Context, userID string, roles []string, ev account.Event) (account.User, error)
	// SetDisabled sets or clears the disabled flag; beforeCommit runs in the transaction.
	SetDisabled(ctx context.Context, userID string, disabled bool, ev account.Event, beforeCommit func(context.Context) error) error
	ListRoles(ctx context.Context) ([]Role, error)
	CreateRole(ctx context.Context, r Role, ev account.Event) (Role, error)
	DeleteRole(ctx context.Context, name string, ev account.Event) error
}

// Sessions ends sessions.
type Sessions interface {
	RevokeAll(ctx context.Context, userID, keep string) (int, error)
}

// Service implements the admin use cases.
type Service struct {
	store    Store
	sessions Sessions
}

// NewService wires the use cases.
func NewService(store Store, sessions Sessions) *Service {
	return &Service{store: store, sessions: sessions}
}

// Page is a page of users and the cursor of the next one (nil at the end).
type Page struct {
	Users []account.User
	Next  *Cursor
}

const (
	defaultLimit = 50
	maxLimit     = 200
)

// PageSize is the size of an admin listing's page asked for as limit: 0 is the
// default (50), more than 200 or less than 1 is ErrInvalidLimit.
func PageSize(limit int) (int, error) {
	if limit == 0 {
		return defaultLimit, nil
	}
	if limit < 1 || limit > maxLimit {
		return 0, ErrInvalidLimit
	}
	return limit, nil
}

// ListUsers pages through users newest first. Keyset paging on (created_at, id) never
// repeats or skips a user while others register: new users sort before the first page.
func (s *Service) ListUsers(ctx context.Context, limit int, cursor, email string) (Page, error) {
	limit, err := PageSize(limit)
	if err != nil {
		return Page{}, err
	}
	q := UserQuery{Limit: limit + 1, EmailPrefix: emailaddr.Fold(email)}
	if cursor != "" {
		c, err := DecodeCursor(cursor)
		if err != nil {
			return Page{}, err
		}
		q.After = &c
	}
	users, err := s.store.ListUsers(ctx, q)
	if err != nil {
		return Page{}, fmt.Errorf("list users: %w", err)
	}
	page := Page{Users: users}
	if len(users) > limit {
		page.Users = users[:limit]
		last := page.Users[limit-1]
		page.Next = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}

// EncodeCursor makes the opaque cursor string.
func EncodeCursor(c Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(s string) (Cursor, error) {
	var c Cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 256 || json.Unmarshal(b, &c) != nil || c.CreatedAt.IsZero() {
		return Cursor{}, ErrInvalidCursor
	}
	if _, err := uuid.Parse(c.ID); err != nil {
		return Cursor{}, ErrInvalidCursor
	}
	return c, nil
}

// User returns one user.
func (s *Service) User(ctx context.Context, id string) (account.User, error) {
	return s.store.UserByID(ctx, id)
}

// SetRoles replaces a user's roles. Every account keeps "user". An admin cannot change
// their own roles, so nobody removes the last way back in by mistake.
func (s *Service) SetRoles(ctx context.Context, actor account.Principal, userID string, roles []string) (account.User, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return account.User{}, account.ErrNotFound
	}
	if userID == actor.UserID {
		return account.User{}, account.ErrForbidden
	}
	set := []string{RoleUser}
	for _, r := range roles {
		if !roleName.MatchString(r) {
			return account.User{}, ErrUnknownRole
		}
		if !slices.Contains(set, r) {
			set = append(set, r)
		}
	}
	slices.Sort(set)
	return s.store.SetRoles(ctx, userID, set, Audit(events.SubjectUserRolesSet, events.UserRolesSet{UserID: userID, Roles: set, Actor: ActorOf(actor)}))
}

// Disable stops a user: every session ends at once and login answers account_disabled.
func (s *Service) Disable(ctx context.Context, actor account.Principal, userID string) error {
	if _, err := uuid.Parse(userID); err != nil {
		return account.ErrNotFound
	}
	if userID == actor.UserID {
		return account.ErrForbidden
	}
	return s.store.SetDisabled(ctx, userID, true, Audit(events.SubjectUserDisabled, events.UserDisabled{UserID: userID, Actor: ActorOf(actor)}),
		func(ctx context.Context) error {
			_, err := s.sessions.RevokeAll(ctx, userID, "")
			return err
		})
}

// Enable lets a disabled user sign in again.
func (s *Service) Enable(ctx context.Context, actor account.Principal, userID string) error {
	if _, err := uuid.Parse(userID); err != nil {
		return account.ErrNotFound
	}
	return s.store.SetDisabled(ctx, userID, false, Audit(events.SubjectUserEnabled, events.UserEnabled{UserID: userID, Actor: ActorOf(actor)}),
		func(context.Context) error { return nil })
}

// Roles lists every role with its permissions.
func (s *Service) Roles(ctx context.Context) ([]Role, error) { return s.store.ListRoles(ctx) }

var (
	roleName   = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)
	permission = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}(:[a-z0-9_.*-]{1,64}){0,3}$`)
)

// CreateRole adds a role with its permissions (e.g. "jobs:write").
func (s *Service) CreateRole(ctx context.Context, actor account.Principal, name string, perms []string) (Role, error) {
	if !roleName.MatchString(name) {
		return Role{}, ErrInvalidRole
	}
	set := []string{}
	for _, p := range perms {
		if !permission.MatchString(p) {
			return Role{}, ErrInvalidPermission
		}
		if !slices.Contains(set, p) {
			set = append(set, p)
		}
	}
	slices.Sort(set)
	return s.store.CreateRole(ctx, Role{Name: name, Permissions: set},
		Audit(events.SubjectRoleCreated, events.RoleCreated{Role: name, Permissions: set, Actor: ActorOf(actor)}))
}

// DeleteRole removes a role and takes it from every user holding it.
func (s *Service) DeleteRole(ctx context.Context, actor account.Principal, name string) error {
	if name == RoleAdmin || name == RoleUser {
		return ErrRoleProtected
	}
	if !roleName.MatchString(name) {
		return account.ErrNotFound
	}
	return s.store.DeleteRole(ctx, name, Audit(events.SubjectRoleDeleted, events.RoleDeleted{Role: name, Actor: ActorOf(actor)}))
}

// Audit is an admin action's event.
func Audit(subject string, payload any) account.Event {
	return account.Event{Subject: subject, Payload: payload}
}

// ActorOf is the admin of an admin event.
func ActorOf(actor account.Principal) events.Actor {
	return events.Actor{ActorID: actor.UserID, ActorSessionID: actor.SessionID}
}
