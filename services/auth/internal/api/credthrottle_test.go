package api_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Wrong credentials sent with a valid access token (a stolen one, say) are guesses
// like wrong passwords at login: they count in the login throttle of the account, and
// once it waits they get login's answer, whatever the client IP.

// ctThrottle: 3 failures per account before waits start; the per-IP threshold is out
// of the way, so only the account counter can add up over rotating addresses.
var ctThrottle = map[string]string{
	"LOGIN_THROTTLE_FAILURES":       "3",
	"LOGIN_THROTTLE_IP_FAILURES":    "100",
	"LOGIN_THROTTLE_WAIT_INCREMENT": "1m",
	"LOGIN_THROTTLE_MAX_WAIT":       "5m",
}

const ctFailures = 3

func (e *rlEnv) changePassword(at, current, next, ip string) *apitest.Response {
	e.T.Helper()
	return e.send(http.MethodPost, "/v1/users/me/password",
		map[string]string{"current_password": current, "new_password": next}, ip, at)
}

func (e *rlEnv) disableTOTP(at, code, ip string) *apitest.Response {
	e.T.Helper()
	return e.send(http.MethodDelete, "/v1/users/me/mfa/totp", map[string]string{"code": code}, ip, at)
}

// TestThrottleChangePasswordWrongCurrentPassword: LOGIN_THROTTLE_FAILURES wrong
// current_password values make the next attempt wait, even with the right password,
// with login's 429 too_many_attempts; login for the account waits too.
func TestThrottleChangePasswordWrongCurrentPassword(t *testing.T) {
	t.Parallel()
	e := rlStart(t, ctThrottle)
	email := apitest.Email("rl-change-pw")
	e.register(email)
	e.NewIP()
	at := e.Login(email, apitest.Password).AccessToken

	for i := 1; i <= ctFailures; i++ { // each guess from a fresh address
		apitest.Expect(t, e.changePassword(at, fmt.Sprintf("guess number %d!", i), rlResetPassword, rlIP()),
			http.StatusUnauthorized, "invalid_credentials")
	}
	right := e.changePassword(at, apitest.Password, rlResetPassword, rlIP())
	rlExpect429(t, right, "too_many_attempts", -1, time.Minute, 0)
	login := e.login(email, apitest.Password, rlIP())
	rlExpect429(t, login, "too_many_attempts", -1, time.Minute, 0)
	rlSameBody(t, login, right, "throttled: login vs change password")
	if n := e.OutboxCount(email, "auth.user.password_changed"); n != 0 {
		t.Fatalf("a throttled change wrote %d password_changed events", n)
	}
}

// TestThrottleChangePasswordRightCurrentPasswordResets: a right current_password
// resets the counter as a successful login does.
func TestThrottleChangePasswordRightCurrentPasswordResets(t *testing.T) {
	t.Parallel()
	e := rlStart(t, ctThrottle)
	email := apitest.Email("rl-change-pw-reset")
	e.register(email)
	e.NewIP()
	at := e.Login(email, apitest.Password).AccessToken

	for i := 1; i < ctFailures; i++ {
		apitest.Expect(t, e.changePassword(at, rlWrongPassword, rlResetPassword, ""), http.StatusUnauthorized, "invalid_credentials")
	}
	apitest.Expect(t, e.changePassword(at, apitest.Password, rlResetPassword, ""), http.StatusNoContent, "")
	// The whole threshold again, then the wait.
	for i := 1; i <= ctFailures; i++ {
		apitest.Expect(t, e.changePassword(at, rlWrongPassword, apitest.Password, ""), http.StatusUnauthorized, "invalid_credentials")
	}
	rlExpect429(t, e.changePassword(at, rlResetPassword, apitest.Password, ""), "too_many_attempts", -1, time.Minute, 0)
}

// TestThrottleDisableTOTPWrongCode: LOGIN_THROTTLE_FAILURES wrong codes on
// DELETE /v1/users/me/mfa/totp make the next attempt wait, even with a right code,
// with login's 429 too_many_attempts; login for the account waits too, and MFA stays on.
func TestThrottleDisableTOTPWrongCode(t *testing.T) {
	t.Parallel()
	e := rlStart(t, ctThrottle)
	email, clock, codes, pair := mfaEnable(t, e.Env)

	for i := 1; i <= ctFailures; i++ { // each guess from a fresh address
		apitest.Expect(t, e.disableTOTP(pair.AccessToken, clock.wrong(t), rlIP()), http.StatusBadRequest, "invalid_mfa_code")
	}
	right := e.disableTOTP(pair.AccessToken, clock.next(t), rlIP())
	rlExpect429(t, right, "too_many_attempts", -1, time.Minute, 0)
	rlExpect429(t, e.disableTOTP(pair.AccessToken, codes[0], rlIP()), "too_many_attempts", -1, time.Minute, 0)
	login := e.login(email, apitest.Password, rlIP())
	rlExpect429(t, login, "too_many_attempts", -1, time.Minute, 0)
	rlSameBody(t, login, right, "throttled: login vs disabling TOTP")
	if u := mfaMe(t, e.Env, pair.AccessToken); !u.MFAEnabled {
		t.Fatal("a throttled request turned MFA off")
	}
}

// TestThrottleDisableTOTPRightCodeResets: a right code resets the counter as a
// finished MFA login does.
func TestThrottleDisableTOTPRightCodeResets(t *testing.T) {
	t.Parallel()
	e := rlStart(t, ctThrottle)
	_, clock, _, pair := mfaEnable(t, e.Env)
	at := pair.AccessToken

	for i := 1; i < ctFailures; i++ {
		apitest.Expect(t, e.disableTOTP(at, clock.wrong(t), ""), http.StatusBadRequest, "invalid_mfa_code")
	}
	apitest.Expect(t, e.disableTOTP(at, clock.next(t), ""), http.StatusNoContent, "")

	// Turn it on again with a new secret: the whole threshold again, then the wait.
	r := e.Do(http.MethodPost, "/v1/users/me/mfa/totp", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var en mfaEnrolment
	r.JSON(t, &en)
	clock = &mfaClock{secret: en.Secret}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm", map[string]string{"code": clock.next(t)}, at), http.StatusOK, "")
	for i := 1; i <= ctFailures; i++ {
		apitest.Expect(t, e.disableTOTP(at, clock.wrong(t), ""), http.StatusBadRequest, "invalid_mfa_code")
	}
	rlExpect429(t, e.disableTOTP(at, clock.next(t), ""), "too_many_attempts", -1, time.Minute, 0)
}

// ctSlash64 is a random /64 of 2001:db8::/32 (no other test or run shares it) and
// hosts in it: host(1) is "<prefix>::1".
func ctSlash64(t *testing.T) (host func(iid byte) string, next func(iid byte) string) {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[4:8]); err != nil {
		t.Fatal(err)
	}
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	mk := func(base [16]byte) func(byte) string {
		return func(iid byte) string { base[15] = iid; return netip.AddrFrom16(base).String() }
	}
	n := b
	n[7]++
	return mk(b), mk(n)
}

// TestRateLimitIPv6ClientKeyedByPrefix: an IPv6 client picks any address of its /64,
// so ::1 and ::2 of one /64 share one budget; the next /64 has its own.
func TestRateLimitIPv6ClientKeyedByPrefix(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"RATE_LIMIT_LOGIN": "2/m"})
	host, next := ctSlash64(t)
	nobody := apitest.Email("rl-v6-nobody")
	apitest.Expect(t, e.login(nobody, rlWrongPassword, host(1)), http.StatusUnauthorized, "invalid_credentials")
	apitest.Expect(t, e.login(nobody, rlWrongPassword, host(2)), http.StatusUnauthorized, "invalid_credentials")
	rlExpect429(t, e.login(nobody, rlWrongPassword, host(3)), "too_many_attempts", 2, time.Minute, time.Minute)
	apitest.Expect(t, e.login(nobody, rlWrongPassword, next(1)), http.StatusUnauthorized, "invalid_credentials")
}

// TestThrottleIPv6ClientKeyedByPrefix: the per-account-and-IP login throttle counts
// the addresses of one /64 as one client.
func TestThrottleIPv6ClientKeyedByPrefix(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{
		"LOGIN_THROTTLE_FAILURES":       "100",
		"LOGIN_THROTTLE_IP_FAILURES":    "2",
		"LOGIN_THROTTLE_WAIT_INCREMENT": "1m",
		"LOGIN_THROTTLE_MAX_WAIT":       "5m",
	})
	email := apitest.Email("rl-v6-throttle")
	e.register(email)
	host, next := ctSlash64(t)
	apitest.Expect(t, e.login(email, rlWrongPassword, host(1)), http.StatusUnauthorized, "invalid_credentials")
	apitest.Expect(t, e.login(email, rlWrongPassword, host(2)), http.StatusUnauthorized, "invalid_credentials")
	rlExpect429(t, e.login(email, apitest.Password, host(3)), "too_many_attempts", -1, time.Minute, 0)
	apitest.Expect(t, e.login(email, apitest.Password, next(1)), http.StatusOK, "")
}
