// Package accounts is the account core that auth and oauth share over one users table:
// the user model, the users and roles store with the Redis user cache and its
// invalidation rule, authenticating a bearer token, opening a session and minting its
// token pair, the ADMIN_EMAILS rule, the user and token-pair views and the error table
// of the errors both services answer. auth adds passwords, one-time tokens, MFA and
// administration on top; oauth adds identities and provider flows.
package accounts

import (
	"errors"
	"slices"
	"time"
)

// User is an account.
type User struct {
	ID              string
	Email           string
	Name            string
	PasswordHash    string // empty for accounts without a password, and in cached users
	EmailVerifiedAt *time.Time
	DisabledAt      *time.Time
	MFAEnabled      bool
	// Phone is the account's proven number in E.164, or empty: a number is stored only
	// once an SMS code proved it.
	Phone string
	Roles []string
	// Permissions is the union of the roles' permissions; admin holds every one.
	Permissions []string
	CreatedAt   time.Time
	// CredentialStamp is session.CredentialStamp of the password's last change:
	// a session stamped otherwise was opened with a password since replaced.
	CredentialStamp string
}

// HasRole reports whether the user holds role.
func (u User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// HasPermission reports whether the user holds permission; admin holds every one.
func (u User) HasPermission(p string) bool {
	return u.HasRole("admin") || slices.Contains(u.Permissions, p)
}

// Verified reports whether the address was verified.
func (u User) Verified() bool { return u.EmailVerifiedAt != nil }

// Errors of the core; both services answer them (Errors).
var (
	ErrNotFound        = errors.New("not found")
	ErrEmailTaken      = errors.New("email taken")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrAccountDisabled = errors.New("account disabled")
	// ErrUnavailable: PostgreSQL or Redis did not answer (timeout, closed, refused).
	ErrUnavailable = errors.New("dependency unavailable")
)

// Admins is ADMIN_EMAILS: normalised addresses whose accounts hold the admin role once
// the address is verified (never before: whoever registers an admin's address without
// proving it gets nothing).
type Admins []string

// Roles are the roles of a new account of email.
func (a Admins) Roles(email string, verified bool) []string {
	if verified && slices.Contains(a, email) {
		return []string{"admin", "user"}
	}
	return []string{"user"}
}

// Owed reports whether u is a configured admin without the role yet.
func (a Admins) Owed(u User) bool {
	return u.Verified() && slices.Contains(a, u.Email) && !u.HasRole("admin")
}
