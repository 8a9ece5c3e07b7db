package events

import (
	"time"

	"github.com/talentforge/auth/pkg/keyring"
)

// Subjects, one per event type, under auth.> (SubjectAll). The NATS subject and the
// envelope's Type are the same string; Catalog says who writes and who reads each.
const (
	SubjectVerificationRequested     = "auth.email.verification_requested"
	SubjectPasswordResetRequested    = "auth.email.password_reset_requested"
	SubjectRegisterExisting          = "auth.email.register_existing"
	SubjectOTPRequested              = "auth.email.otp_requested"
	SubjectSMSCodeRequested          = "auth.sms.code_requested"
	SubjectRegistered                = "auth.user.registered"
	SubjectEmailVerified             = "auth.user.email_verified"
	SubjectPasswordChanged           = "auth.user.password_changed"
	SubjectLoginSucceeded            = "auth.user.login_succeeded"
	SubjectLoginFailed               = "auth.user.login_failed"
	SubjectMFAEnabled                = "auth.user.mfa_enabled"
	SubjectMFADisabled               = "auth.user.mfa_disabled"
	SubjectPasskeyAdded              = "auth.passkey.added"
	SubjectPasskeyRemoved            = "auth.passkey.removed"
	SubjectPhoneVerified             = "auth.user.phone_verified"
	SubjectSignedIn                  = "auth.oauth.signed_in"
	SubjectIdentityLinked            = "auth.oauth.identity_linked"
	SubjectIdentityUnlinked          = "auth.oauth.identity_unlinked"
	SubjectUnverifiedAccountReplaced = "auth.oauth.unverified_account_replaced"
	SubjectRefreshReused             = "auth.session.refresh_reused"
	SubjectLoggedOut                 = "auth.session.logged_out"
	SubjectLoggedOutAll              = "auth.session.logged_out_all"
	SubjectUserRolesSet              = "auth.admin.user_roles_set"
	SubjectUserDisabled              = "auth.admin.user_disabled"
	SubjectUserEnabled               = "auth.admin.user_enabled"
	SubjectRoleCreated               = "auth.admin.role_created"
	SubjectRoleDeleted               = "auth.admin.role_deleted"
	SubjectWebhookCreated            = "auth.admin.webhook_created"
	SubjectWebhookDeleted            = "auth.admin.webhook_deleted"
	SubjectWebhookSecretRotated      = "auth.admin.webhook_secret_rotated"
	SubjectWebhookEnabled            = "auth.admin.webhook_enabled"
	SubjectFlagChanged               = "auth.admin.flag_changed"
	SubjectWebhookDisabled           = "auth.webhook.disabled"
)

// The payloads, one struct per event type. Their JSON is the event's "payload" object
// (docs/events.md); NewEnvelope turns a non-empty Token into TokenSealed, so a writer
// sets Token and a reader finds TokenSealed. The key order does not matter: the
// envelope stores the payload with its keys sorted.

// VerificationRequested asks for an email whose link proves the address (auth's
// sign-up and resend; oauth's sign-in with an address its provider did not vouch for,
// which sets Provider: the link then links that identity too).
type VerificationRequested struct {
	UserID      string          `json:"user_id"`
	Email       string          `json:"email"`
	Name        string          `json:"name"`
	Token       string          `json:"token,omitempty"`
	TokenSealed *keyring.Sealed `json:"token_sealed,omitempty"`
	ExpiresAt   time.Time       `json:"expires_at"`
	Provider    string          `json:"provider,omitempty"`
}

// PasswordResetRequested asks for an email whose link resets the password.
type PasswordResetRequested struct {
	UserID      string          `json:"user_id"`
	Email       string          `json:"email"`
	Name        string          `json:"name"`
	Token       string          `json:"token,omitempty"`
	TokenSealed *keyring.Sealed `json:"token_sealed,omitempty"`
	ExpiresAt   time.Time       `json:"expires_at"`
}

// OTPRequested asks for an email with a one-time sign-in code and a link that signs in
// too (POST /v1/auth/otp with an address that has an account). NewEnvelope seals both.
type OTPRequested struct {
	UserID      string          `json:"user_id"`
	Email       string          `json:"email"`
	Name        string          `json:"name"`
	Code        string          `json:"code,omitempty"`
	CodeSealed  *keyring.Sealed `json:"code_sealed,omitempty"`
	Token       string          `json:"token,omitempty"`
	TokenSealed *keyring.Sealed `json:"token_sealed,omitempty"`
	ExpiresAt   time.Time       `json:"expires_at"`
}

// The purposes of an SMS code (SMSCodeRequested.Purpose).
const (
	SMSPurposePhoneVerification = "phone_verification"
	SMSPurposeSignIn            = "sign_in"
)

// SMSCodeRequested asks for an SMS with a 6-digit code to Phone (E.164): to prove a
// number being added to an account, or to sign in with a verified one. NewEnvelope
// seals the code; the token-worker's SMS reader sends it once.
type SMSCodeRequested struct {
	UserID     string          `json:"user_id"`
	Phone      string          `json:"phone"`
	Purpose    string          `json:"purpose"`
	Code       string          `json:"code,omitempty"`
	CodeSealed *keyring.Sealed `json:"code_sealed,omitempty"`
	ExpiresAt  time.Time       `json:"expires_at"`
}

// RegisterExisting asks for a notice to an address's owner that someone tried to
// register it (Provider: with that provider's sign-in).
type RegisterExisting struct {
	UserID   string `json:"user_id"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Provider string `json:"provider,omitempty"`
}

// Registered: an account was created (Method and Provider "oauth" and the provider for
// an oauth sign-up; absent for a password sign-up).
type Registered struct {
	UserID    string `json:"user_id"`
	Method    string `json:"method,omitempty"`
	Provider  string `json:"provider,omitempty"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// EmailVerified: the address was proven (a notice email).
type EmailVerified struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

// PasswordChanged: the password was changed (How: "change" or "reset"; a notice email).
type PasswordChanged struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
	How    string `json:"how"`
}

// LoginSucceeded: a password (and second factor) sign-in opened a session.
type LoginSucceeded struct {
	UserID    string   `json:"user_id"`
	SessionID string   `json:"session_id"`
	AMR       []string `json:"amr"`
	IP        string   `json:"ip"`
	UserAgent string   `json:"user_agent"`
}

// LoginFailed: a sign-in was refused. UserID names a known account; for an unknown
// address EmailSHA256 (hex) stands in for it.
type LoginFailed struct {
	UserID      string `json:"user_id,omitempty"`
	EmailSHA256 string `json:"email_sha256,omitempty"`
	Reason      string `json:"reason"`
	IP          string `json:"ip"`
	UserAgent   string `json:"user_agent"`
}

// MFAEnabled: TOTP was turned on (a notice email).
type MFAEnabled struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

// MFADisabled: TOTP was turned off (a notice email).
type MFADisabled struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

// PasskeyAdded: a passkey was registered (a notice email).
type PasskeyAdded struct {
	UserID      string `json:"user_id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	PasskeyID   string `json:"passkey_id"`
	PasskeyName string `json:"passkey_name"`
}

// PasskeyRemoved: a passkey was deleted by its owner (a notice email).
type PasskeyRemoved struct {
	UserID      string `json:"user_id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	PasskeyID   string `json:"passkey_id"`
	PasskeyName string `json:"passkey_name"`
}

// PhoneVerified: a phone number was proven and set on the account, replacing any
// earlier one (a notice email to the account's address).
type PhoneVerified struct {
	UserID        string `json:"user_id"`
	Email         string `json:"email"`
	Name          string `json:"name"`
	Phone         string `json:"phone"`
	PreviousPhone string `json:"previous_phone,omitempty"`
}

// Client is where a request came from, for the events that record it.
type Client struct {
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// SignedIn: an oauth sign-in opened a session.
type SignedIn struct {
	UserID    string `json:"user_id"`
	Provider  string `json:"provider"`
	Subject   string `json:"subject"`
	How       string `json:"how"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// IdentityLinked: a provider identity was linked to an account, by the oauth service
// (Subject and the Client; SessionID when a signed-in user linked it) or by auth when
// proving an address linked the identity its link was sent for (neither).
type IdentityLinked struct {
	UserID    string `json:"user_id"`
	Provider  string `json:"provider"`
	Subject   string `json:"subject,omitempty"`
	How       string `json:"how"`
	SessionID string `json:"session_id,omitempty"`
	*Client
}

// IdentityUnlinked: a provider identity was unlinked, by its user at the oauth service
// (SessionID and the Client) or by auth when proving the address unlinked the
// identities linked while it was unproven (How "address_proven").
type IdentityUnlinked struct {
	UserID    string `json:"user_id"`
	Provider  string `json:"provider"`
	How       string `json:"how,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	*Client
}

// UnverifiedAccountReplaced: a provider-verified sign-in replaced the account that
// held the address without proving it.
type UnverifiedAccountReplaced struct {
	UserID         string `json:"user_id"`
	ReplacedUserID string `json:"replaced_user_id"`
	Provider       string `json:"provider"`
	IP             string `json:"ip"`
	UserAgent      string `json:"user_agent"`
}

// RefreshReused: a rotated refresh token was presented again (the session ends).
type RefreshReused struct {
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
}

// LoggedOut: sessions ended at the user's request.
type LoggedOut struct {
	UserID     string   `json:"user_id"`
	SessionIDs []string `json:"session_ids"`
}

// LoggedOutAll: every session of the user ended.
type LoggedOutAll struct {
	UserID        string `json:"user_id"`
	SessionsEnded int    `json:"sessions_ended"`
}

// Actor is the admin who caused an admin event.
type Actor struct {
	ActorID        string `json:"actor_id"`
	ActorSessionID string `json:"actor_session_id"`
}

// UserRolesSet: an admin set a user's roles.
type UserRolesSet struct {
	UserID string   `json:"user_id"`
	Roles  []string `json:"roles"`
	Actor
}

// UserDisabled: an admin disabled a user.
type UserDisabled struct {
	UserID string `json:"user_id"`
	Actor
}

// UserEnabled: an admin enabled a user again.
type UserEnabled struct {
	UserID string `json:"user_id"`
	Actor
}

// RoleCreated: an admin created (or replaced) a role.
type RoleCreated struct {
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
	Actor
}

// RoleDeleted: an admin deleted a role.
type RoleDeleted struct {
	Role string `json:"role"`
	Actor
}

// WebhookCreated: an admin added a webhook endpoint.
type WebhookCreated struct {
	WebhookID string   `json:"webhook_id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Actor
}

// WebhookDeleted: an admin deleted a webhook endpoint (its pending deliveries stop).
type WebhookDeleted struct {
	WebhookID string `json:"webhook_id"`
	URL       string `json:"url"`
	Actor
}

// WebhookSecretRotated: an admin gave an endpoint a new signing secret; the old one
// signs too until PreviousExpiresAt.
type WebhookSecretRotated struct {
	WebhookID         string    `json:"webhook_id"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
	Actor
}

// WebhookEnabled: an admin enabled again an endpoint the token-worker had disabled.
type WebhookEnabled struct {
	WebhookID string `json:"webhook_id"`
	Actor
}

// FlagChanged: an admin switched a feature flag.
type FlagChanged struct {
	Flag    string `json:"flag"`
	Enabled bool   `json:"enabled"`
	Actor
}

// WebhookDisabled: the token-worker disabled an endpoint that kept failing; one event
// per admin it notifies (UserID, Email, Name: that admin).
type WebhookDisabled struct {
	UserID       string    `json:"user_id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	WebhookID    string    `json:"webhook_id"`
	URL          string    `json:"url"`
	FailingSince time.Time `json:"failing_since"`
	LastError    string    `json:"last_error"`
}

// UserPayload is a payload whose user its writer fills in last: the oauth store sets
// the user of the transaction. WithUserID returns the payload with UserID set.
type UserPayload interface {
	WithUserID(id string) any
}

// WithUserID implements UserPayload.
func (p VerificationRequested) WithUserID(id string) any { p.UserID = id; return p }

// WithUserID implements UserPayload.
func (p RegisterExisting) WithUserID(id string) any { p.UserID = id; return p }

// WithUserID implements UserPayload.
func (p Registered) WithUserID(id string) any { p.UserID = id; return p }

// WithUserID implements UserPayload.
func (p SignedIn) WithUserID(id string) any { p.UserID = id; return p }

// WithUserID implements UserPayload.
func (p IdentityLinked) WithUserID(id string) any { p.UserID = id; return p }

// WithUserID implements UserPayload.
func (p IdentityUnlinked) WithUserID(id string) any { p.UserID = id; return p }

// WithUserID implements UserPayload.
func (p UnverifiedAccountReplaced) WithUserID(id string) any { p.UserID = id; return p }
