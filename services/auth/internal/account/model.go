// Package account holds the auth service's use cases: registration, verification,
// login, refresh, logout, password reset and change, the profile and sessions. It knows
// nothing of HTTP; it declares the small interfaces it needs from its stores.
package account

import (
	"errors"
	"time"

	"github.com/talentforge/auth/pkg/accounts"
)

// User is an account (the account core's).
type User = accounts.User

// Purpose of a one-time token.
type Purpose = accounts.Purpose

// The purposes a one-time token can serve; a token serves exactly one.
const (
	PurposeEmailVerification = accounts.PurposeEmailVerification
	PurposePasswordReset     = accounts.PurposePasswordReset
	PurposeOTPEmail          = accounts.PurposeOTPEmail
	PurposeOTPSMS            = accounts.PurposeOTPSMS
	PurposePhoneVerification = accounts.PurposePhoneVerification
)

// OneTimeToken is a verification or reset token as stored: its hash, never the token.
type OneTimeToken = accounts.OneTimeToken

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
// Its subject is one of pkg/events' Subject constants and its payload that subject's
// struct (events.Catalog).
type Event struct {
	Subject string
	Payload any
}

// Errors the HTTP layer maps to codes. They say nothing that would help enumeration.
var (
	ErrInvalidEmail        = errors.New("invalid email")
	ErrEmailTaken          = accounts.ErrEmailTaken
	ErrInvalidCredentials  = errors.New("invalid credentials")
	ErrEmailNotVerified    = errors.New("email not verified")
	ErrAccountDisabled     = accounts.ErrAccountDisabled
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	ErrRefreshTokenReused  = errors.New("refresh token reused")
	ErrInvalidToken        = errors.New("invalid or expired token")
	ErrUnauthenticated     = accounts.ErrUnauthenticated
	ErrForbidden           = errors.New("forbidden")
	ErrNotFound            = accounts.ErrNotFound
	ErrInvalidName         = errors.New("invalid name")
	ErrInvalidRequest      = errors.New("invalid request")
	ErrUnavailable         = accounts.ErrUnavailable
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
