// Package account holds the auth service's use cases: registration, verification,
// login, refresh, logout, password reset and change, the profile and sessions. It knows
// nothing of HTTP; it declares the small interfaces it needs from its stores.
package account

import (
	"errors"
	"slices"
	"time"
)

// User is an account as the use cases see it.
type User struct {
	ID              string
	Email           string
	Name            string
	PasswordHash    string // empty for accounts without a password
	EmailVerifiedAt *time.Time
	DisabledAt      *time.Time
	MFAEnabled      bool
	Roles           []string
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

// Purpose of a one-time token.
type Purpose string

// The purposes a one-time token can serve; a token serves exactly one.
const (
	PurposeEmailVerification Purpose = "email_verification"
	PurposePasswordReset     Purpose = "password_reset"
)

// OneTimeToken is a verification or reset token as stored: its hash, never the token.
type OneTimeToken struct {
	Hash      []byte
	UserID    string
	Purpose   Purpose
	ExpiresAt time.Time
}

// Proof is what proving an address (a verification or reset link used) changed.
type Proof struct {
	// WasUnverified: the address was unproven until now.
	WasUnverified bool
	// Unlinked are the providers whose identities were linked while the address was
	// unproven, unlinked now.
	Unlinked []string
	// Linked is the provider whose identity the verification link was sent for, now
	// linked ("" when none).
	Linked string
}

// Event is written to the outbox in the same transaction as the change that causes it.
type Event struct {
	Subject string
	Payload any
}

// Outbox subjects, one per event type, under auth.>.
const (
	SubjectVerificationRequested = "auth.email.verification_requested"
	SubjectRegisterExisting      = "auth.email.register_existing"
	SubjectPasswordResetRequest  = "auth.email.password_reset_requested"
	SubjectPasswordChanged       = "auth.user.password_changed"
	SubjectEmailVerified         = "auth.user.email_verified"
	// The oauth service's identity events, written here when proving an address
	// unlinks or links an identity.
	SubjectIdentityLinked   = "auth.oauth.identity_linked"
	SubjectIdentityUnlinked = "auth.oauth.identity_unlinked"
	SubjectRegistered       = "auth.user.registered"
	SubjectLoginSucceeded   = "auth.user.login_succeeded"
	SubjectLoginFailed      = "auth.user.login_failed"
	SubjectRefreshReused    = "auth.session.refresh_reused"
	SubjectLoggedOut        = "auth.session.logged_out"
	SubjectLoggedOutAll     = "auth.session.logged_out_all"
)

// Errors the HTTP layer maps to codes. They say nothing that would help enumeration.
var (
	ErrInvalidEmail        = errors.New("invalid email")
	ErrEmailTaken          = errors.New("email taken")
	ErrInvalidCredentials  = errors.New("invalid credentials")
	ErrEmailNotVerified    = errors.New("email not verified")
	ErrAccountDisabled     = errors.New("account disabled")
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	ErrRefreshTokenReused  = errors.New("refresh token reused")
	ErrInvalidToken        = errors.New("invalid or expired token")
	ErrUnauthenticated     = errors.New("unauthenticated")
	ErrForbidden           = errors.New("forbidden")
	ErrNotFound            = errors.New("not found")
	ErrInvalidName         = errors.New("invalid name")
	ErrInvalidRequest      = errors.New("invalid request")
	ErrUnavailable         = errors.New("dependency unavailable")
	ErrBusy                = errors.New("too busy")
	// ErrReauthRequired: a credential change with a session that authenticated longer
	// ago than REAUTH_MAX_AGE and no current password in the request.
	ErrReauthRequired = errors.New("reauthentication required")
)

// WeakPasswordError says why a password was refused.
type WeakPasswordError struct {
	Reason  string
	Message string
}

func (e *WeakPasswordError) Error() string { return "weak password: " + e.Reason }

// RateLimitedError is a refused request: a spent budget or a throttled login.
type RateLimitedError struct {
	// Code is "too_many_attempts" for login, "rate_limited" elsewhere.
	Code       string
	Limit      int // -1 when no budget applies (the login throttle)
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
}

func (e *RateLimitedError) Error() string { return "rate limited: " + e.Code }
