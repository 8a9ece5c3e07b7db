package api_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// One-time codes: sign-in by an emailed code or link (amr otp) and by SMS (amr sms),
// and the phone number proven by an SMS code. The codes are read back from the outbox
// events, opened with the service's event keys, as the token-worker opens them.

const subjectOTP = events.SubjectOTPRequested

// smsEnv is the service with an SMS provider, so the phone routes are on.
func smsEnv(t *testing.T, env map[string]string) *apitest.Env {
	t.Helper()
	vars := map[string]string{"SMS_PROVIDER": "twilio"}
	for k, v := range env {
		vars[k] = v
	}
	return apitest.Start(t, vars)
}

func otpAsk(e *apitest.Env, body map[string]string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/otp", body, "")
}

func otpVerify(e *apitest.Env, body map[string]string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/otp/verify", body, "")
}

// otpEmailCode asks for an emailed code and returns the code and the link's token.
func otpEmailCode(t *testing.T, e *apitest.Env, email string) (code, token string) {
	t.Helper()
	apitest.Expect(t, otpAsk(e, map[string]string{"email": email}), http.StatusAccepted, "")
	return e.OutboxCode(email, subjectOTP), e.OutboxToken(email, subjectOTP)
}

func expectAMR(t *testing.T, r *apitest.Response, want ...string) apitest.Pair {
	t.Helper()
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if p.AccessToken == "" || p.RefreshToken == "" {
		t.Fatalf("no pair: %s", r.Body)
	}
	if amr := mfaAMR(t, p.AccessToken); !slices.Equal(amr, want) {
		t.Fatalf("amr = %v, want %v", amr, want)
	}
	return p
}

// randomPhone is a valid US number no other test or run uses (budgets per number live
// in the shared Redis for an hour).
func randomPhone(t *testing.T) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(8_000_000))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("+1650%07d", 2_000_000+n.Int64())
}

// wrongCode is a well-formed code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// TestOTPEmailCodeSignIn: an emailed code signs in once (amr otp); the outbox holds the
// code and the link only sealed; the link of the same email is used with it.
func TestOTPEmailCodeSignIn(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _ := e.NewUser(t)
	code, token := otpEmailCode(t, e, email)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		t.Fatalf("code %q is not 6 digits", code)
	}
	env := e.OutboxEnvelope(email, subjectOTP)
	if raw := string(env.Payload); strings.Contains(raw, code) || strings.Contains(raw, token) ||
		!strings.Contains(raw, `"code_sealed"`) || !strings.Contains(raw, `"token_sealed"`) {
		t.Fatalf("the outbox payload holds a secret in clear or lacks a sealed one: %s", raw)
	}
	p := expectAMR(t, otpVerify(e, map[string]string{"email": strings.ToUpper(email), "code": code}), "otp")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, p.AccessToken), http.StatusOK, "")
	// Used: the code again, and the link that came with it, are refused.
	apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": code}), http.StatusUnauthorized, "invalid_code")
	apitest.Expect(t, otpVerify(e, map[string]string{"token": token}), http.StatusUnauthorized, "invalid_code")
	// The audit trail names the sign-in.
	var amr string
	if err := e.App.DB.NewRaw(`SELECT payload->'payload'->>'amr' FROM outbox
		WHERE subject = ? AND payload->>'user_id' = ? ORDER BY id DESC LIMIT 1`, events.SubjectLoginSucceeded, p.User.ID).
		Scan(context.Background(), &amr); err != nil || amr != `["otp"]` {
		t.Fatalf("login_succeeded amr = %s (%v)", amr, err)
	}
}

// TestOTPEmailLinkSignIn: the link signs in once, and uses the code that came with it.
func TestOTPEmailLinkSignIn(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _ := e.NewUser(t)
	code, token := otpEmailCode(t, e, email)
	expectAMR(t, otpVerify(e, map[string]string{"token": token}), "otp")
	apitest.Expect(t, otpVerify(e, map[string]string{"token": token}), http.StatusUnauthorized, "invalid_code")
	apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": code}), http.StatusUnauthorized, "invalid_code")
	for _, bad := range []string{"", "short", strings.Repeat("A", 43), token + "x"} {
		r := otpVerify(e, map[string]string{"token": bad})
		if bad == "" {
			apitest.Expect(t, r, http.StatusBadRequest, "invalid_request")
			continue
		}
		apitest.Expect(t, r, http.StatusUnauthorized, "invalid_code")
	}
}

// TestOTPUnknownAddress: an address without an account gets the same 202, no email and
// no account (OTP_SIGNUP off), and its guesses the same 401 as a wrong code's.
func TestOTPUnknownAddress(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	known, _ := e.NewUser(t)
	unknown := apitest.Email("otp-unknown")
	ra := otpAsk(e, map[string]string{"email": unknown})
	rk := otpAsk(e, map[string]string{"email": known})
	apitest.Expect(t, ra, http.StatusAccepted, "")
	if string(ra.Body) != string(rk.Body) {
		t.Fatalf("answers differ: %s vs %s", ra.Body, rk.Body)
	}
	if n := e.OutboxCount(unknown, subjectOTP); n != 0 {
		t.Fatalf("%d emails to an unknown address", n)
	}
	var users int
	if err := e.App.DB.NewRaw(`SELECT count(*) FROM users WHERE email = ?`, unknown).Scan(context.Background(), &users); err != nil || users != 0 {
		t.Fatalf("%d accounts for the unknown address (%v)", users, err)
	}
	code := e.OutboxCode(known, subjectOTP)
	wu := otpVerify(e, map[string]string{"email": unknown, "code": code})
	wk := otpVerify(e, map[string]string{"email": known, "code": wrongCode(code)})
	apitest.Expect(t, wu, http.StatusUnauthorized, "invalid_code")
	apitest.Expect(t, wk, http.StatusUnauthorized, "invalid_code")
	if wu.Code() != wk.Code() || wu.Header.Get("Content-Type") != wk.Header.Get("Content-Type") {
		t.Fatalf("unknown and known answers differ: %s vs %s", wu.Body, wk.Body)
	}
	// Malformed requests: a clear 400, never a 500.
	for _, body := range []map[string]string{{}, {"email": known, "phone": "+14155550123"}, {"email": known},
		{"code": code}, {"email": known, "code": code, "token": "x"}} {
		apitest.Expect(t, otpVerify(e, body), http.StatusBadRequest, "invalid_request")
	}
	apitest.Expect(t, otpAsk(e, map[string]string{}), http.StatusBadRequest, "invalid_request")
	apitest.Expect(t, otpAsk(e, map[string]string{"email": known, "phone": "+14155550123"}), http.StatusBadRequest, "invalid_request")
	// Malformed codes are refused as wrong ones, without spending the real one.
	for _, bad := range []string{"12345", "1234567", "12a456", "１２３４５６"} {
		apitest.Expect(t, otpVerify(e, map[string]string{"email": known, "code": bad}), http.StatusUnauthorized, "invalid_code")
	}
}

// TestOTPWrongCodesBurnIt: the fifth wrong code burns the code: the right one then fails.
func TestOTPWrongCodesBurnIt(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _ := e.NewUser(t)
	code, token := otpEmailCode(t, e, email)
	for i := 0; i < 4; i++ {
		apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": wrongCode(code)}), http.StatusUnauthorized, "invalid_code")
	}
	// Four wrong guesses: the code still works... on a second code, since this test
	// burns the first with the fifth.
	apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": wrongCode(code)}), http.StatusUnauthorized, "invalid_code")
	apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": code}), http.StatusUnauthorized, "invalid_code")
	apitest.Expect(t, otpVerify(e, map[string]string{"token": token}), http.StatusUnauthorized, "invalid_code")

	code, _ = otpEmailCode(t, e, email)
	for i := 0; i < 4; i++ {
		apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": wrongCode(code)}), http.StatusUnauthorized, "invalid_code")
	}
	expectAMR(t, otpVerify(e, map[string]string{"email": email, "code": code}), "otp")
}

// TestOTPNewCodeRetiresOlder: only the newest code works; an expired one does not.
func TestOTPNewCodeRetiresOlder(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, user := e.NewUser(t)
	first, firstLink := otpEmailCode(t, e, email)
	second, _ := otpEmailCode(t, e, email)
	if first == second {
		second, _ = otpEmailCode(t, e, email) // one chance in a million
	}
	apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": first}), http.StatusUnauthorized, "invalid_code")
	apitest.Expect(t, otpVerify(e, map[string]string{"token": firstLink}), http.StatusUnauthorized, "invalid_code")
	expectAMR(t, otpVerify(e, map[string]string{"email": email, "code": second}), "otp")
	code, _ := otpEmailCode(t, e, email)
	// This user's only: the database is every test's.
	if _, err := e.App.DB.NewRaw(`UPDATE one_time_tokens SET expires_at = now() - interval '1 second'
		WHERE user_id = ? AND purpose = 'otp_email' AND used_at IS NULL`, user.User.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	apitest.Expect(t, otpVerify(e, map[string]string{"email": email, "code": code}), http.StatusUnauthorized, "invalid_code")
}

// TestOTPParallelRightCode: of parallel sign-ins with one right code exactly one wins.
func TestOTPParallelRightCode(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _ := e.NewUser(t)
	code, _ := otpEmailCode(t, e, email)
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() { statuses[i] = otpVerify(e, map[string]string{"email": email, "code": code}).Status })
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("status %d among %v", s, statuses)
		}
	}
	if ok != 1 {
		t.Fatalf("%d parallel sign-ins won with one code: %v", ok, statuses)
	}
}

// TestOTPCountsInLoginThrottle: wrong codes count in the login throttle of the address
// like wrong passwords: past the limit even the right code only learns the wait.
func TestOTPCountsInLoginThrottle(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"LOGIN_THROTTLE_FAILURES": "3", "LOGIN_THROTTLE_IP_FAILURES": "100",
		"LOGIN_THROTTLE_WAIT_INCREMENT": "1m"})
	email := apitest.Email("otp-throttle")
	e.register(email)
	apitest.Expect(t, otpAsk(e.Env, map[string]string{"email": email}), http.StatusAccepted, "")
	code := e.OutboxCode(email, subjectOTP)
	for i := 0; i < 3; i++ {
		apitest.Expect(t, otpVerify(e.Env, map[string]string{"email": email, "code": wrongCode(code)}), http.StatusUnauthorized, "invalid_code")
	}
	e.NewIP() // another client: the account's throttle holds
	r := otpVerify(e.Env, map[string]string{"email": email, "code": code})
	apitest.Expect(t, r, http.StatusTooManyRequests, "too_many_attempts")
	// A wrong password for the account is held too: one throttle for both.
	apitest.Expect(t, e.login(email, apitest.Password, ""), http.StatusTooManyRequests, "too_many_attempts")
}

// TestOTPRequestBudget: the per-IP budget of code requests (RATE_LIMIT_OTP), and the
// address's email budget spent only by emails really written.
func TestOTPRequestBudget(t *testing.T) {
	t.Parallel()
	// The sign-up's verification email spends one of the address's two.
	e := rlStart(t, map[string]string{"RATE_LIMIT_OTP": "2/h", "RATE_LIMIT_EMAILS_PER_ADDRESS": "2/h"})
	email := apitest.Email("otp-budget")
	e.register(email)
	apitest.Expect(t, otpAsk(e.Env, map[string]string{"email": email}), http.StatusAccepted, "")
	apitest.Expect(t, otpAsk(e.Env, map[string]string{"email": email}), http.StatusAccepted, "")
	if n := e.OutboxCount(email, subjectOTP); n != 1 {
		t.Fatalf("%d sign-in emails, want the 1 left of the address's budget", n)
	}
	rlExpect429(t, otpAsk(e.Env, map[string]string{"email": apitest.Email("other")}), "rate_limited", 2, time.Hour, time.Hour)
}

// TestOTPProvesTheAddress: a code to an account whose address is unproven and has no
// password (an OTP_SIGNUP account, a provider sign-up) proves it and ends the sessions
// opened before, as a verification link does. An unproven account with a password is sent
// nothing: whoever set that password may not own the address, and the code would hand
// the owner an account a stranger can open.
func TestOTPProvesTheAddress(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	email := apitest.Email("otp-unverified")
	r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": email, "password": apitest.Password}, "")
	apitest.Expect(t, r, http.StatusCreated, "")
	before := e.Login(email, apitest.Password)
	apitest.Expect(t, otpAsk(e, map[string]string{"email": email}), http.StatusAccepted, "")
	if n := e.OutboxCount(email, subjectOTP); n != 0 {
		t.Fatalf("%d codes to an unproven address with a password", n)
	}
	// Without the password (as an account a code or a provider created) it goes.
	if _, err := e.App.DB.NewRaw(`UPDATE users SET password_hash = NULL WHERE id = ?`, before.User.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, _ := otpEmailCode(t, e, email)
	p := expectAMR(t, otpVerify(e, map[string]string{"email": email, "code": code}), "otp")
	if !p.User.EmailVerified {
		t.Fatalf("address not verified by the code: %+v", p.User)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, before.AccessToken), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, p.AccessToken), http.StatusOK, "")
	if n := e.OutboxCount(email, events.SubjectEmailVerified); n != 1 {
		t.Fatalf("%d email_verified events", n)
	}
}

// TestOTPDisabledAccount: a disabled account is sent nothing.
func TestOTPDisabledAccount(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, p := e.NewUser(t)
	if _, err := e.App.DB.NewRaw(`UPDATE users SET disabled_at = now() WHERE id = ?`, p.User.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	apitest.Expect(t, otpAsk(e, map[string]string{"email": email}), http.StatusAccepted, "")
	if n := e.OutboxCount(email, subjectOTP); n != 0 {
		t.Fatalf("%d codes to a disabled account", n)
	}
}

// TestOTPWithMFA: an account with TOTP on still needs its second factor after a code.
func TestOTPWithMFA(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, clock, _, _ := mfaEnable(t, e)
	code, _ := otpEmailCode(t, e, email)
	r := otpVerify(e, map[string]string{"email": email, "code": code})
	apitest.Expect(t, r, http.StatusOK, "")
	var a mfaLoginAnswer
	r.JSON(t, &a)
	if !a.MFARequired || a.MFAToken == "" || a.AccessToken != "" {
		t.Fatalf("code sign-in with MFA on answered %s", r.Body)
	}
	r = mfaFinish(e, a.MFAToken, clock.next(t))
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if amr := mfaAMR(t, p.AccessToken); !slices.Equal(amr, []string{"otp", "mfa"}) {
		t.Fatalf("amr = %v, want [otp mfa]", amr)
	}
}

// TestOTPSignup: with OTP_SIGNUP an emailed code creates the account, proven once used.
func TestOTPSignup(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"OTP_SIGNUP": "true"})
	email := apitest.Email("otp-signup")
	code, _ := otpEmailCode(t, e, email)
	p := expectAMR(t, otpVerify(e, map[string]string{"email": email, "code": code}), "otp")
	if p.User.Email != email || !p.User.EmailVerified || !slices.Equal(p.User.Roles, []string{"user"}) {
		t.Fatalf("new account %+v", p.User)
	}
	// No password: a password login cannot open it.
	r := e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": apitest.Password}, "")
	apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
}

// TestOTPVerifyV2: v2's verify sets the refresh cookie behind the CSRF guard.
func TestOTPVerifyV2(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, _ := e.NewUser(t)
	code, _ := otpEmailCode(t, e, email)
	v2Problem(t, e.Request(http.MethodPost, "/v2/auth/otp/verify", map[string]string{"email": email, "code": code}, nil),
		http.StatusForbidden, "csrf_failed")
	r := e.Request(http.MethodPost, "/v2/auth/otp/verify", map[string]string{"email": email, "code": code}, v2XRW())
	apitest.Expect(t, r, http.StatusOK, "")
	if strings.Contains(string(r.Body), "refresh_token") || !strings.Contains(r.Header.Get("Set-Cookie"), "tf_refresh=") {
		t.Fatalf("v2 answer %s, Set-Cookie %q", r.Body, r.Header.Get("Set-Cookie"))
	}
}

// TestPhoneRoutesOffWithoutProvider: SMS_PROVIDER=none turns phone numbers off.
func TestPhoneRoutesOffWithoutProvider(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": "+14155550123"}, p.AccessToken),
		http.StatusNotFound, "feature_disabled")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone/verify", map[string]string{"code": "123456"}, p.AccessToken),
		http.StatusNotFound, "feature_disabled")
	apitest.Expect(t, otpAsk(e, map[string]string{"phone": "+14155550123"}), http.StatusNotFound, "feature_disabled")
	apitest.Expect(t, otpVerify(e, map[string]string{"phone": "+14155550123", "code": "123456"}), http.StatusNotFound, "feature_disabled")
}

// phoneSet proves number for the signed-in user and returns the user as answered.
func phoneSet(t *testing.T, e *apitest.Env, at, number string) apitest.User {
	t.Helper()
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": number}, at), http.StatusAccepted, "")
	env, code, ok := e.OutboxSMS(number)
	if !ok {
		t.Fatalf("no SMS to %s", number)
	}
	var p events.SMSCodeRequested
	if decoded, err := env.DecodePayload(); err != nil {
		t.Fatal(err)
	} else {
		p = *decoded.(*events.SMSCodeRequested)
	}
	if p.Purpose != events.SMSPurposePhoneVerification || strings.Contains(string(env.Payload), code) {
		t.Fatalf("SMS event %s", env.Payload)
	}
	r := e.Do(http.MethodPost, "/v1/users/me/phone/verify", map[string]string{"code": code}, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var u apitest.User
	r.JSON(t, &u)
	return u
}

// TestPhoneVerifyAndSMSSignIn: a number is set once its SMS code comes back, then signs
// in by SMS (amr sms); an unknown number is sent nothing and answered the same.
func TestPhoneVerifyAndSMSSignIn(t *testing.T) {
	t.Parallel()
	e := smsEnv(t, map[string]string{"SMS_DEFAULT_REGION": "US"})
	email, p := e.NewUser(t)
	number := randomPhone(t)
	national := fmt.Sprintf("(650) %s-%s", number[5:8], number[8:])
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": national}, p.AccessToken),
		http.StatusAccepted, "")
	_, code, ok := e.OutboxSMS(number)
	if !ok {
		t.Fatal("no SMS to the national number read in SMS_DEFAULT_REGION")
	}
	// Not set before the code comes back; a wrong code is refused.
	if u := mfaMe(t, e, p.AccessToken); u.Phone != nil || u.PhoneVerified {
		t.Fatalf("phone set before verification: %+v", u)
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone/verify", map[string]string{"code": wrongCode(code)}, p.AccessToken),
		http.StatusBadRequest, "invalid_code")
	r := e.Do(http.MethodPost, "/v1/users/me/phone/verify", map[string]string{"code": code}, p.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var u apitest.User
	r.JSON(t, &u)
	if u.Phone == nil || *u.Phone != number || !u.PhoneVerified {
		t.Fatalf("after verification: %s", r.Body)
	}
	if mfaMe(t, e, p.AccessToken).Phone == nil {
		t.Fatal("GET /users/me lacks the phone (stale user cache)")
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone/verify", map[string]string{"code": code}, p.AccessToken),
		http.StatusBadRequest, "invalid_code")
	if n := e.OutboxCount(email, events.SubjectPhoneVerified); n != 1 {
		t.Fatalf("%d phone_verified events", n)
	}

	// SMS sign-in.
	apitest.Expect(t, otpAsk(e, map[string]string{"phone": "+1 650 " + number[5:8] + " " + number[8:]}), http.StatusAccepted, "")
	env, code, ok := e.OutboxSMS(number)
	if !ok || !strings.Contains(string(env.Payload), `"sign_in"`) {
		t.Fatalf("no sign-in SMS: %s", env.Payload)
	}
	apitest.Expect(t, otpVerify(e, map[string]string{"phone": number, "code": wrongCode(code)}), http.StatusUnauthorized, "invalid_code")
	expectAMR(t, otpVerify(e, map[string]string{"phone": number, "code": code}), "sms")
	apitest.Expect(t, otpVerify(e, map[string]string{"phone": number, "code": code}), http.StatusUnauthorized, "invalid_code")

	// An unknown number: the same 202, no SMS.
	stranger := randomPhone(t)
	apitest.Expect(t, otpAsk(e, map[string]string{"phone": stranger}), http.StatusAccepted, "")
	if _, _, ok := e.OutboxSMS(stranger); ok {
		t.Fatal("an SMS to a number no account has")
	}
	apitest.Expect(t, otpVerify(e, map[string]string{"phone": stranger, "code": code}), http.StatusUnauthorized, "invalid_code")
}

// TestPhoneRefusals: bad numbers, refused countries, stale sessions, and a number
// another account proved.
func TestPhoneRefusals(t *testing.T) {
	t.Parallel()
	e := smsEnv(t, map[string]string{"SMS_ALLOWED_COUNTRIES": "US,CA", "REAUTH_MAX_AGE": reauthAge.String()})
	_, p := e.NewUser(t)
	for _, bad := range []string{"hello", "650 253 0000", "+1", "+1 999 555 0123", strings.Repeat("9", 100)} {
		apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": bad}, p.AccessToken),
			http.StatusBadRequest, "invalid_phone")
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": "+44 20 7946 0958"}, p.AccessToken),
		http.StatusBadRequest, "invalid_phone")
	apitest.Expect(t, otpAsk(e, map[string]string{"phone": "+44 20 7946 0958"}), http.StatusBadRequest, "invalid_phone")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{}, p.AccessToken), http.StatusBadRequest, "invalid_request")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": randomPhone(t)}, ""), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone/verify", map[string]string{"code": "123456"}, p.AccessToken),
		http.StatusBadRequest, "invalid_code") // none asked

	// Another account's number: the SMS goes (nothing told before it is proven), the
	// proof is refused with 409.
	number := randomPhone(t)
	phoneSet(t, e, p.AccessToken, number)
	_, other := e.NewUser(t)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": number}, other.AccessToken), http.StatusAccepted, "")
	_, code, _ := e.OutboxSMS(number)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone/verify", map[string]string{"code": code}, other.AccessToken),
		http.StatusConflict, "phone_taken")

	// A stale session needs the password.
	reauthStale(t)
	fresh := randomPhone(t)
	expectReauth(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": fresh}, p.AccessToken))
	r := e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": fresh, "current_password": apitest.Password}, p.AccessToken)
	apitest.Expect(t, r, http.StatusAccepted, "")
}

// TestPhoneParallelRequests: parallel phone changes each answer 202 (one live code
// remains, the newest), never a 500.
func TestPhoneParallelRequests(t *testing.T) {
	t.Parallel()
	e := smsEnv(t, nil)
	_, p := e.NewUser(t)
	var wg sync.WaitGroup
	statuses := make([]int, 6)
	for i := range statuses {
		number := randomPhone(t)
		wg.Go(func() {
			statuses[i] = e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": number}, p.AccessToken).Status
		})
	}
	wg.Wait()
	for _, s := range statuses {
		if s != http.StatusAccepted {
			t.Fatalf("statuses %v", statuses)
		}
	}
	var live int
	if err := e.App.DB.NewRaw(`SELECT count(*) FROM one_time_tokens WHERE user_id = ? AND purpose = 'phone_verification'
		AND used_at IS NULL`, p.User.ID).Scan(context.Background(), &live); err != nil || live != 1 {
		t.Fatalf("%d live phone codes (%v)", live, err)
	}
}

// TestSMSNumberBudget: a number's sign-in SMS stop at RATE_LIMIT_SMS_PER_NUMBER (the
// answer unchanged), and verifications typed by others do not spend them.
func TestSMSNumberBudget(t *testing.T) {
	t.Parallel()
	e := rlStart(t, map[string]string{"SMS_PROVIDER": "twilio", "RATE_LIMIT_SMS_PER_NUMBER": "2/h"})
	// phoneSet spends one of the verification bucket, the other caller the second.
	number := randomPhone(t)
	e.NewIP()
	_, p := e.NewUser(t)
	phoneSet(t, e.Env, p.AccessToken, number)
	_, other := e.NewUser(t)
	// Someone else types the number twice: their verification SMS, then 429.
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": number}, other.AccessToken), http.StatusAccepted, "")
	rlExpect429(t, e.Do(http.MethodPost, "/v1/users/me/phone", map[string]string{"phone": number}, other.AccessToken), "rate_limited", 2, time.Hour, time.Hour)
	count := func() int {
		var n int
		if err := e.App.DB.NewRaw(`SELECT count(*) FROM outbox WHERE subject = ? AND payload->'payload'->>'phone' = ?
			AND payload->'payload'->>'purpose' = 'sign_in'`, events.SubjectSMSCodeRequested, number).Scan(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := 0; i < 3; i++ {
		apitest.Expect(t, otpAsk(e.Env, map[string]string{"phone": number}), http.StatusAccepted, "")
	}
	if n := count(); n != 2 {
		t.Fatalf("%d sign-in SMS, want the budget's 2", n)
	}
}
