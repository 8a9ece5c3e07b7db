package api

import (
	"errors"
	"net/http"

	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/pkg/ratelimit"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/admin"
)

// The one table from use-case errors to answers. Codes are the public contract.
var errorTable = []struct {
	err  error
	resp *httpx.Error
}{
	{account.ErrInvalidEmail, httpx.NewError(http.StatusBadRequest, "invalid_email", "The email address is not valid.")},
	{account.ErrEmailTaken, httpx.NewError(http.StatusConflict, "email_taken", "An account with this email address already exists.")},
	{account.ErrInvalidCredentials, httpx.NewError(http.StatusUnauthorized, "invalid_credentials", "Invalid email or password.")},
	{account.ErrEmailNotVerified, httpx.NewError(http.StatusForbidden, "email_not_verified", "The email address has not been verified.")},
	{account.ErrAccountDisabled, httpx.NewError(http.StatusForbidden, "account_disabled", "This account is disabled.")},
	{account.ErrInvalidRefreshToken, httpx.NewError(http.StatusUnauthorized, "invalid_refresh_token", "The refresh token is invalid or expired.")},
	{account.ErrRefreshTokenReused, httpx.NewError(http.StatusUnauthorized, "refresh_token_reused", "The refresh token was already used; the session has been ended.")},
	{account.ErrInvalidToken, httpx.NewError(http.StatusBadRequest, "invalid_token", "The token is invalid, used or expired.")},
	{account.ErrUnauthenticated, httpx.ErrUnauthorized},
	// RFC 9470's step-up challenge: sign in again, or send current_password.
	{account.ErrReauthRequired, &httpx.Error{Status: http.StatusUnauthorized, Code: "reauth_required",
		Message: "Sign in again, or send current_password, to change credentials.",
		Header:  http.Header{"WWW-Authenticate": {`Bearer error="insufficient_user_authentication", error_description="sign in again or send current_password"`}}}},
	{account.ErrForbidden, httpx.NewError(http.StatusForbidden, "forbidden", "You are not allowed to do this.")},
	{account.ErrNotFound, httpx.ErrNotFound},
	{account.ErrInvalidName, httpx.NewError(http.StatusBadRequest, "invalid_name", "The name must be at most 200 characters without control characters.")},
	{account.ErrInvalidRequest, httpx.NewError(http.StatusBadRequest, "invalid_request", "A required field is missing.")},
	{errCSRF, httpx.NewError(http.StatusForbidden, "csrf_failed", "A cookie-based call needs the X-Requested-With header or an allowed Origin.")},
	// The password hasher's queue is full: shed the request at once, and say when to retry.
	{account.ErrBusy, &httpx.Error{Status: http.StatusServiceUnavailable, Code: "overloaded",
		Message: "The service is overloaded. Try again shortly.", Header: http.Header{"Retry-After": {"1"}}}},
	{account.ErrUnavailable, httpx.ErrUnavailable},
	{account.ErrInvalidMFACode, httpx.NewError(http.StatusUnauthorized, "invalid_mfa_code", "The code or the MFA token is invalid, used or expired.")},
	{account.ErrWrongMFACode, httpx.NewError(http.StatusBadRequest, "invalid_mfa_code", "The code is not valid.")},
	{account.ErrMFAAlreadyEnabled, httpx.NewError(http.StatusConflict, "mfa_already_enabled", "Two-factor authentication is already on; turn it off first.")},
	{account.ErrMFANotEnabled, httpx.NewError(http.StatusBadRequest, "mfa_not_enabled", "Two-factor authentication is not on.")},
	{admin.ErrUnknownRole, httpx.NewError(http.StatusBadRequest, "unknown_role", "A role does not exist.")},
	{admin.ErrRoleExists, httpx.NewError(http.StatusConflict, "role_exists", "A role with this name already exists.")},
	{admin.ErrRoleProtected, httpx.NewError(http.StatusConflict, "role_protected", "The built-in roles admin and user cannot be deleted.")},
	{admin.ErrInvalidRole, httpx.NewError(http.StatusBadRequest, "invalid_role", "A role name is 1 to 64 of a-z, 0-9, _ . : - and starts with a letter.")},
	{admin.ErrInvalidPermission, httpx.NewError(http.StatusBadRequest, "invalid_permission", "A permission looks like resource:action, e.g. jobs:write.")},
	{admin.ErrInvalidCursor, httpx.NewError(http.StatusBadRequest, "invalid_cursor", "The cursor is not one this API returned.")},
	{admin.ErrInvalidLimit, httpx.NewError(http.StatusBadRequest, "invalid_request", "limit must be between 1 and 200.")},
}

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
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			out := *e.resp
			out.Err = err
			if out.Status == http.StatusUnauthorized && out.Code == httpx.ErrUnauthorized.Code {
				out.Header = http.Header{"Www-Authenticate": {`Bearer realm="talentforge"`}}
			}
			return &out
		}
	}
	return err
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
