package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/talentforge/auth/pkg/accounts"
	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
	"github.com/talentforge/auth/services/auth/internal/flags"
	"github.com/talentforge/auth/services/auth/internal/webhooks"
)

// The one table from use-case errors to answers, ending with the account core's.
// Codes are the public contract.
var errorTable = append(httpx.ErrorTable{
	{Err: account.ErrInvalidEmail, Resp: httpx.NewError(http.StatusBadRequest, "invalid_email", "The email address is not valid.")},
	{Err: account.ErrInvalidCredentials, Resp: httpx.NewError(http.StatusUnauthorized, "invalid_credentials", "Invalid email or password.")},
	{Err: account.ErrEmailNotVerified, Resp: httpx.NewError(http.StatusForbidden, "email_not_verified", "The email address has not been verified.")},
	{Err: account.ErrInvalidRefreshToken, Resp: httpx.NewError(http.StatusUnauthorized, "invalid_refresh_token", "The refresh token is invalid or expired.")},
	{Err: account.ErrRefreshTokenReused, Resp: httpx.NewError(http.StatusUnauthorized, "refresh_token_reused", "The refresh token was already used; the session has been ended.")},
	{Err: account.ErrInvalidToken, Resp: httpx.NewError(http.StatusBadRequest, "invalid_token", "The token is invalid, used or expired.")},
	// RFC 9470's step-up challenge: sign in again, or send current_password.
	{Err: account.ErrReauthRequired, Resp: &httpx.Error{Status: http.StatusUnauthorized, Code: "reauth_required",
		Message: "Sign in again, or send current_password, to change credentials.",
		Header:  http.Header{"WWW-Authenticate": {`Bearer error="insufficient_user_authentication", error_description="sign in again or send current_password"`}}}},
	{Err: account.ErrForbidden, Resp: httpx.NewError(http.StatusForbidden, "forbidden", "You are not allowed to do this.")},
	{Err: account.ErrInvalidName, Resp: httpx.NewError(http.StatusBadRequest, "invalid_name", "The name must be at most 200 characters without control characters.")},
	{Err: account.ErrInvalidRequest, Resp: httpx.NewError(http.StatusBadRequest, "invalid_request", "A required field is missing.")},
	{Err: errCSRF, Resp: httpx.NewError(http.StatusForbidden, "csrf_failed", "A cookie-based call needs the X-Requested-With header or an allowed Origin.")},
	// The password hasher's queue is full: shed the request at once, and say when to retry.
	{Err: account.ErrBusy, Resp: &httpx.Error{Status: http.StatusServiceUnavailable, Code: "overloaded",
		Message: "The service is overloaded. Try again shortly.", Header: http.Header{"Retry-After": {"1"}}}},
	{Err: account.ErrInvalidMFACode, Resp: httpx.NewError(http.StatusUnauthorized, "invalid_mfa_code", "The code or the MFA token is invalid, used or expired.")},
	{Err: account.ErrWrongMFACode, Resp: httpx.NewError(http.StatusBadRequest, "invalid_mfa_code", "The code is not valid.")},
	{Err: account.ErrMFAAlreadyEnabled, Resp: httpx.NewError(http.StatusConflict, "mfa_already_enabled", "Two-factor authentication is already on; turn it off first.")},
	{Err: account.ErrMFANotEnabled, Resp: httpx.NewError(http.StatusBadRequest, "mfa_not_enabled", "Two-factor authentication is not on.")},
	{Err: account.ErrInvalidFlow, Resp: httpx.NewError(http.StatusBadRequest, "invalid_flow", "The passkey flow is unknown, used or expired; begin again.")},
	{Err: account.ErrInvalidPasskey, Resp: httpx.NewError(http.StatusUnauthorized, "invalid_passkey", "The passkey could not be verified.")},
	{Err: account.ErrPasskeyRefused, Resp: httpx.NewError(http.StatusBadRequest, "invalid_passkey", "The passkey could not be registered.")},
	{Err: account.ErrTooManyPasskeys, Resp: httpx.NewError(http.StatusConflict, "too_many_passkeys", "The account holds as many passkeys as it may; remove one first.")},
	{Err: account.ErrNoPasskeys, Resp: httpx.NewError(http.StatusBadRequest, "no_passkeys", "The account has no passkey; use another second factor.")},
	{Err: account.ErrPasskeysOff, Resp: httpx.NewError(http.StatusNotFound, "feature_disabled", "Passkeys are off: the service has no WebAuthn relying party (WEBAUTHN_RP_ID).")},
	{Err: account.ErrInvalidPasskeyName, Resp: httpx.NewError(http.StatusBadRequest, "invalid_name", "A passkey name is 1 to 64 characters without control characters.")},
	{Err: account.ErrInvalidCode, Resp: httpx.NewError(http.StatusUnauthorized, "invalid_code", "The code or link is invalid, used or expired.")},
	{Err: account.ErrWrongPhoneCode, Resp: httpx.NewError(http.StatusBadRequest, "invalid_code", "The code is not valid; ask for a new one if it expired.")},
	{Err: account.ErrInvalidPhone, Resp: httpx.NewError(http.StatusBadRequest, "invalid_phone", "The phone number is not valid; give it with its country code, e.g. +14155550123.")},
	{Err: account.ErrPhoneCountry, Resp: httpx.NewError(http.StatusBadRequest, "invalid_phone", "SMS cannot be sent to this country.")},
	{Err: account.ErrPhoneTaken, Resp: httpx.NewError(http.StatusConflict, "phone_taken", "This phone number belongs to another account.")},
	{Err: account.ErrSMSOff, Resp: httpx.NewError(http.StatusNotFound, "feature_disabled", "Phone numbers and SMS codes are off: the service has no SMS provider (SMS_PROVIDER).")},
	{Err: admin.ErrUnknownRole, Resp: httpx.NewError(http.StatusBadRequest, "unknown_role", "A role does not exist.")},
	{Err: admin.ErrRoleExists, Resp: httpx.NewError(http.StatusConflict, "role_exists", "A role with this name already exists.")},
	{Err: admin.ErrRoleProtected, Resp: httpx.NewError(http.StatusConflict, "role_protected", "The built-in roles admin and user cannot be deleted.")},
	{Err: admin.ErrInvalidRole, Resp: httpx.NewError(http.StatusBadRequest, "invalid_role", "A role name is 1 to 64 of a-z, 0-9, _ . : - and starts with a letter.")},
	{Err: admin.ErrInvalidPermission, Resp: httpx.NewError(http.StatusBadRequest, "invalid_permission", "A permission looks like resource:action, e.g. jobs:write.")},
	{Err: admin.ErrInvalidCursor, Resp: httpx.NewError(http.StatusBadRequest, "invalid_cursor", "The cursor is not one this API returned.")},
	{Err: admin.ErrInvalidLimit, Resp: httpx.NewError(http.StatusBadRequest, "invalid_request", "limit must be between 1 and 200.")},
	{Err: flags.ErrUnknownFlag, Resp: httpx.NewError(http.StatusNotFound, "unknown_flag", "No feature flag has this name.")},
	{Err: webhooks.ErrUnknownEvent, Resp: httpx.NewError(http.StatusBadRequest, "unknown_event", "events must list at least one event type of docs/events.md, e.g. auth.user.registered.")},
	{Err: webhooks.ErrInvalidDescription, Resp: httpx.NewError(http.StatusBadRequest, "invalid_description", "A description is at most 500 characters without control characters.")},
	{Err: webhooks.ErrTooManyEndpoints, Resp: httpx.NewError(http.StatusConflict, "too_many_webhooks", "There are as many webhook endpoints as there may be (100); delete one first.")},
}, accounts.Errors...)

// MapError turns a use-case error into an answer; anything unknown passes through to
// the shared handler (500 with the request id). The server calls it for every route.
func MapError(err error) error {
	var weak *account.WeakPasswordError
	if errors.As(err, &weak) {
		return &httpx.Error{Status: http.StatusUnprocessableEntity, Code: "weak_password", Message: weak.Message, Err: err}
	}
	var limited *account.RateLimitedError
	if errors.As(err, &limited) {
		return rateLimited(limited)
	}
	// The code of every flow that is off (as ErrPasskeysOff and ErrSMSOff), naming the flag.
	var off *flags.DisabledError
	if errors.As(err, &off) {
		return &httpx.Error{Status: http.StatusNotFound, Code: "feature_disabled",
			Message: fmt.Sprintf("This feature is turned off (feature flag %s).", off.Flag), Err: err}
	}
	return errorTable.Map(err)
}

// rateLimited is 429 with Retry-After and the RateLimit-* headers (IETF draft fields).
func rateLimited(e *account.RateLimitedError) *httpx.Error {
	h := ratelimit.Decision{Limit: e.Limit, Remaining: e.Remaining, RetryAfter: e.RetryAfter, ResetAfter: e.ResetAfter}.Headers()
	msg := "Too many requests. Try again later."
	if e.Code == "too_many_attempts" {
		msg = "Too many attempts. Try again later."
	}
	return &httpx.Error{Status: http.StatusTooManyRequests, Code: e.Code, Message: msg, Header: h, Err: e}
}
