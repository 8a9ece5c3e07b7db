package api

import (
	"errors"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talentforge/auth/pkg/httpx"
	"github.com/talentforge/auth/services/auth/internal/account"
)

// Business metrics, counted here from the use cases' outcomes (the account package
// stays free of Prometheus). Every series is created up front, so a rate() over one
// that never moved is 0 rather than absent, and counting allocates nothing.
//
//   - auth_logins_total{result}: sign-in attempts at /v{1,2}/auth/login, the second
//     step at /v{1,2}/auth/login/mfa and passkey sign-ins at /v{1,2}/auth/passkey/finish.
//     result is success (tokens issued, with or without MFA), mfa_required (password
//     right, a second factor is asked: the same login is counted again, as success,
//     invalid_mfa_code or invalid_passkey, at its second step), invalid_credentials,
//     invalid_mfa_code, invalid_passkey, email_not_verified, account_disabled,
//     throttled (429: the login throttle or a per-IP budget), overloaded (503: the
//     password hasher's queue is full), unavailable (503: Redis or PostgreSQL down),
//     invalid_request (a body that is not JSON or lacks a field) or error (anything
//     else, a 500).
//   - auth_refresh_total{result}: refresh-token rotations at /v{1,2}/auth/refresh:
//     success, invalid_refresh_token, refresh_token_reused, throttled, unavailable,
//     invalid_request, error.
//   - auth_refresh_reuse_detected_total: refresh tokens presented again after their
//     grace, each of which ended its session (the refresh_token_reused answer).
//   - auth_throttled_requests_total{purpose}: 429 answers by the limiter that refused:
//     global (the per-IP budget of every route), login_throttle (the per-account login
//     throttle), or the route's purpose: login, mfa, register, forgot, resend, refresh,
//     email_verify, other. A spent per-address email budget answers 202 and sends
//     nothing, so it is never counted here.
type Metrics struct {
	logins    map[string]prometheus.Counter
	refreshes map[string]prometheus.Counter
	reuse     prometheus.Counter
	throttled map[string]prometheus.Counter
}

// Label values.
const (
	resultSuccess            = "success"
	resultMFARequired        = "mfa_required"
	resultInvalidCredentials = "invalid_credentials"
	resultInvalidMFACode     = "invalid_mfa_code"
	resultInvalidPasskey     = "invalid_passkey"
	resultInvalidCode        = "invalid_code"
	resultEmailNotVerified   = "email_not_verified"
	resultAccountDisabled    = "account_disabled"
	resultInvalidRefresh     = "invalid_refresh_token"
	resultRefreshReused      = "refresh_token_reused"
	resultThrottled          = "throttled"
	resultOverloaded         = "overloaded"
	resultUnavailable        = "unavailable"
	resultInvalidRequest     = "invalid_request"
	resultError              = "error"

	purposeGlobal        = "global"
	purposeLoginThrottle = "login_throttle"
	purposeOther         = "other"
)

var (
	loginResults = []string{resultSuccess, resultMFARequired, resultInvalidCredentials, resultInvalidMFACode,
		resultInvalidPasskey, resultInvalidCode, resultEmailNotVerified, resultAccountDisabled, resultThrottled, resultOverloaded, resultUnavailable,
		resultInvalidRequest, resultError}
	refreshResults = []string{resultSuccess, resultInvalidRefresh, resultRefreshReused, resultThrottled,
		resultUnavailable, resultInvalidRequest, resultError}
	throttlePurposes = []string{purposeGlobal, purposeLoginThrottle, account.LimitLogin, account.LimitMFA,
		account.LimitRegister, account.LimitForgot, account.LimitResend, account.LimitRefresh,
		account.LimitEmailVerify, account.LimitOTP, purposeOther}
)

// NewMetrics builds the counters and registers them on reg (nil: counted, not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_logins_total", Help: "Sign-in attempts by result (success, mfa_required, invalid_credentials, throttled...).",
	}, []string{"result"})
	refreshes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_refresh_total", Help: "Refresh-token rotations by result (success, invalid_refresh_token, refresh_token_reused...).",
	}, []string{"result"})
	reuse := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "auth_refresh_reuse_detected_total", Help: "Refresh tokens replayed after their grace; each ended its session.",
	})
	throttled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_throttled_requests_total", Help: "Requests refused with 429, by the limiter's purpose (global, login_throttle, login, register...).",
	}, []string{"purpose"})
	if reg != nil {
		reg.MustRegister(logins, refreshes, reuse, throttled)
	}
	m := &Metrics{logins: map[string]prometheus.Counter{}, refreshes: map[string]prometheus.Counter{},
		reuse: reuse, throttled: map[string]prometheus.Counter{}}
	for _, r := range loginResults {
		m.logins[r] = logins.WithLabelValues(r)
	}
	for _, r := range refreshResults {
		m.refreshes[r] = refreshes.WithLabelValues(r)
	}
	for _, p := range throttlePurposes {
		m.throttled[p] = throttled.WithLabelValues(p)
	}
	return m
}

// login counts the outcome of a login or of its MFA step.
func (m *Metrics) login(err error, mfaRequired bool) {
	switch {
	case err == nil && mfaRequired:
		m.logins[resultMFARequired].Inc()
	case err == nil:
		m.logins[resultSuccess].Inc()
	case errors.Is(err, account.ErrInvalidCredentials):
		m.logins[resultInvalidCredentials].Inc()
	case errors.Is(err, account.ErrInvalidMFACode):
		m.logins[resultInvalidMFACode].Inc()
	case errors.Is(err, account.ErrInvalidPasskey):
		m.logins[resultInvalidPasskey].Inc()
	case errors.Is(err, account.ErrInvalidCode):
		m.logins[resultInvalidCode].Inc()
	case errors.Is(err, account.ErrEmailNotVerified):
		m.logins[resultEmailNotVerified].Inc()
	case errors.Is(err, account.ErrAccountDisabled):
		m.logins[resultAccountDisabled].Inc()
	default:
		m.logins[commonResult(err)].Inc()
	}
}

// refresh counts the outcome of a refresh.
func (m *Metrics) refresh(err error) {
	switch {
	case err == nil:
		m.refreshes[resultSuccess].Inc()
	case errors.Is(err, account.ErrRefreshTokenReused):
		m.refreshes[resultRefreshReused].Inc()
		m.reuse.Inc()
	case errors.Is(err, account.ErrInvalidRefreshToken):
		m.refreshes[resultInvalidRefresh].Inc()
	default:
		m.refreshes[commonResult(err)].Inc()
	}
}

// commonResult classifies the failures every route shares.
func commonResult(err error) string {
	var limited *account.RateLimitedError
	switch {
	case errors.As(err, &limited):
		return resultThrottled
	case errors.Is(err, account.ErrBusy):
		return resultOverloaded
	case errors.Is(err, account.ErrUnavailable):
		return resultUnavailable
	case errors.Is(err, account.ErrInvalidRequest), errors.Is(err, account.ErrInvalidFlow), isBindError(err):
		return resultInvalidRequest
	}
	return resultError
}

// throttle counts a 429 of the route (a route template) when err is one.
func (m *Metrics) throttle(err error, route string) {
	if err == nil {
		return
	}
	var limited *account.RateLimitedError
	if !errors.As(err, &limited) {
		return
	}
	m.throttled[throttlePurpose(route, limited)].Inc()
}

// throttlePurpose names the limiter behind a 429 of route: the account package's
// budgets carry no purpose, but each route spends only its own.
func throttlePurpose(route string, e *account.RateLimitedError) string {
	if len(route) > 3 && (route[:3] == "/v1" || route[:3] == "/v2") {
		route = route[3:]
	}
	switch route {
	case "/auth/login":
		if e.Limit < 0 { // the per-account throttle has no budget
			return purposeLoginThrottle
		}
		return account.LimitLogin
	case "/auth/login/mfa", "/users/me/mfa/totp", "/users/me/mfa/totp/confirm":
		return account.LimitMFA
	case "/auth/register":
		return account.LimitRegister
	case "/auth/password/forgot":
		return account.LimitForgot
	case "/auth/email/resend":
		return account.LimitResend
	case "/auth/refresh":
		return account.LimitRefresh
	case "/auth/email/verify":
		return account.LimitEmailVerify
	case "/auth/otp", "/users/me/phone":
		return account.LimitOTP
	case "/auth/otp/verify":
		if e.Limit < 0 {
			return purposeLoginThrottle
		}
		return account.LimitLogin
	}
	return purposeOther
}

// countThrottled counts every 429 a route's handler answers (the global budget is
// counted by globalLimit, which runs before it).
func (h *Handler) countThrottled(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		h.metrics.throttle(err, c.Path())
		return err
	}
}

// isBindError reports a body the handler could not bind (invalid JSON, too large).
func isBindError(err error) bool {
	var he *httpx.Error
	return errors.As(err, &he) && he.Status < 500
}
