package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Helpers shared by register_test.go, login_test.go, refresh_test.go, password_test.go
// and users_test.go. They carry the "flow" prefix so they cannot clash with helpers of
// the other test files of the package.

// flowFor returns a view of e whose failures are reported on t (a subtest), so a
// helper of the harness never calls FailNow on the parent from a subtest goroutine.
func flowFor(t testing.TB, e *apitest.Env) *apitest.Env {
	c := *e
	c.T = t
	return &c
}

func flowRegister(e *apitest.Env, email, password, name string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": email, "password": password, "name": name}, "")
}

func flowLogin(e *apitest.Env, email, password string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password}, "")
}

// flowLoginUA signs in with a chosen User-Agent and returns the pair.
func flowLoginUA(t testing.TB, e *apitest.Env, email, password, ua string) apitest.Pair {
	t.Helper()
	r := e.Request(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": password},
		http.Header{"User-Agent": {ua}})
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	return p
}

func flowRefresh(e *apitest.Env, rt string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt}, "")
}

func flowVerifyEmail(e *apitest.Env, tok string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/email/verify", map[string]string{"token": tok}, "")
}

func flowForgot(e *apitest.Env, email string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, "")
}

func flowReset(e *apitest.Env, tok, password string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/auth/password/reset", map[string]string{"token": tok, "password": password}, "")
}

func flowPair(t testing.TB, r *apitest.Response) apitest.Pair {
	t.Helper()
	apitest.Expect(t, r, http.StatusOK, "")
	var p apitest.Pair
	r.JSON(t, &p)
	if p.AccessToken == "" || p.RefreshToken == "" {
		t.Fatalf("token pair without tokens: %s", r.Body)
	}
	return p
}

// flowRefreshOK rotates rt and returns the new pair.
func flowRefreshOK(t testing.TB, e *apitest.Env, rt string) apitest.Pair {
	t.Helper()
	return flowPair(t, flowFor(t, e).Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt}, ""))
}

// flowClaims decodes the payload of a JWT without checking it (the service did).
func flowClaims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return c
}

func flowClaimStrings(t testing.TB, jwt, claim string) []string {
	t.Helper()
	v, ok := flowClaims(t, jwt)[claim].([]any)
	if !ok {
		t.Fatalf("claim %s is not an array: %v", claim, flowClaims(t, jwt)[claim])
	}
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	slices.Sort(out)
	return out
}

func flowSID(t testing.TB, jwt string) string {
	t.Helper()
	sid, _ := flowClaims(t, jwt)["sid"].(string)
	if sid == "" {
		t.Fatalf("access token without sid")
	}
	return sid
}

func flowExec(t testing.TB, e *apitest.Env, query string, args ...any) {
	t.Helper()
	if _, err := e.App.DB.NewRaw(query, args...).Exec(context.Background()); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func flowScan(t testing.TB, e *apitest.Env, dest any, query string, args ...any) {
	t.Helper()
	if err := e.App.DB.NewRaw(query, args...).Scan(context.Background(), dest); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func flowUserCount(t testing.TB, e *apitest.Env, email string) int {
	t.Helper()
	var n int
	flowScan(t, e, &n, "SELECT count(*) FROM users WHERE email = ?", email)
	return n
}

func flowUserID(t testing.TB, e *apitest.Env, email string) string {
	t.Helper()
	var id string
	flowScan(t, e, &id, "SELECT id::text FROM users WHERE email = ?", email)
	return id
}

// flowDBRoles lists the user's roles as stored, sorted and comma-joined.
func flowDBRoles(t testing.TB, e *apitest.Env, userID string) string {
	t.Helper()
	var roles string
	flowScan(t, e, &roles, "SELECT COALESCE(string_agg(role, ',' ORDER BY role), '') FROM user_roles WHERE user_id = ?", userID)
	return roles
}

func flowCount(t testing.TB, e *apitest.Env, email, subject string) int {
	t.Helper()
	return flowFor(t, e).OutboxCount(email, subject)
}

func flowToken(t testing.TB, e *apitest.Env, email, subject string) string {
	t.Helper()
	return flowFor(t, e).OutboxToken(email, subject)
}

// flowExpectATAlive and flowExpectATDead check an access token on the gateway check and
// on a protected route.
func flowExpectATAlive(t testing.TB, e *apitest.Env, at string) {
	t.Helper()
	e = flowFor(t, e)
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, at), http.StatusOK, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, at), http.StatusOK, "")
}

func flowExpectATDead(t testing.TB, e *apitest.Env, at string) {
	t.Helper()
	e = flowFor(t, e)
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, at), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, at), http.StatusUnauthorized, "")
}

// flowExpectRTDead checks that rt no longer refreshes (whatever the 401 code).
func flowExpectRTDead(t testing.TB, e *apitest.Env, rt string) {
	t.Helper()
	r := flowFor(t, e).Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt}, "")
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("refresh with a dead refresh token: got %d %s, want 401", r.Status, r.Body)
	}
}

// flowKeys returns the sorted keys of a JSON object.
func flowKeys(t testing.TB, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return slices.Sorted(maps.Keys(m))
}

var flowUserKeys = []string{"created_at", "email", "email_verified", "id", "mfa_enabled", "name", "phone", "phone_verified", "roles"}

// flowCheckUserShape asserts the contract's user representation and nothing more.
func flowCheckUserShape(t testing.TB, raw []byte) {
	t.Helper()
	if got := flowKeys(t, raw); !slices.Equal(got, flowUserKeys) {
		t.Fatalf("user keys = %v, want %v (body %s)", got, flowUserKeys, raw)
	}
	lower := strings.ToLower(string(raw))
	for _, bad := range []string{"argon2", "$2a$", "$2b$", "password", "hash", "token", "secret"} {
		if strings.Contains(lower, bad) {
			t.Fatalf("user representation holds %q: %s", bad, raw)
		}
	}
	var u apitest.User
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(u.ID); err != nil {
		t.Fatalf("id %q is not a UUID", u.ID)
	}
	if _, err := time.Parse(time.RFC3339Nano, u.CreatedAt); err != nil {
		t.Fatalf("created_at %q: %v", u.CreatedAt, err)
	}
}

// flowExpectLifetime checks that the token an event carries expires ttl from now.
func flowExpectLifetime(t testing.TB, payload map[string]any, ttl time.Duration) {
	t.Helper()
	raw, _ := payload["expires_at"].(string)
	exp, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		t.Fatalf("event expires_at %q: %v", raw, err)
	}
	if d := time.Until(exp); d > ttl+time.Minute || d < ttl-time.Minute {
		t.Fatalf("token lives %s, want %s", d.Round(time.Second), ttl)
	}
}

const flowPendingBody = `{"status":"verification_pending"}`

func flowExpectPending(t testing.TB, r *apitest.Response) {
	t.Helper()
	apitest.Expect(t, r, http.StatusAccepted, "")
	var got, want map[string]any
	r.JSON(t, &got)
	_ = json.Unmarshal([]byte(flowPendingBody), &want)
	if !maps.Equal(got, want) {
		t.Fatalf("register answer %s, want %s", r.Body, flowPendingBody)
	}
}

// --- register ---

func TestRegisterTakenAddressAnswersLikeNewOne(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("reg-taken")

	first := flowRegister(e, email, apitest.Password, "First Owner")
	flowExpectPending(t, first)
	second := flowRegister(e, email, "another fine passphrase 42", "Intruder")
	flowExpectPending(t, second)

	if first.Status != second.Status || string(first.Body) != string(second.Body) {
		t.Fatalf("new and taken address answer differently: %d %s vs %d %s", first.Status, first.Body, second.Status, second.Body)
	}
	if a, b := first.Header.Get("Content-Type"), second.Header.Get("Content-Type"); a != b {
		t.Fatalf("Content-Type differs: %q vs %q", a, b)
	}
	if n := flowUserCount(t, e, email); n != 1 {
		t.Fatalf("%d accounts for %s, want 1", n, email)
	}
	id := flowUserID(t, e, email)
	if n := flowCount(t, e, email, events.SubjectRegisterExisting); n != 1 {
		t.Fatalf("%d register_existing notices, want 1", n)
	}
	notice := e.OutboxPayload(email, events.SubjectRegisterExisting)
	if notice["user_id"] != id || notice["email"] != email {
		t.Fatalf("notice payload %v is not for the owner %s", notice, id)
	}
	if _, ok := notice["token"]; ok {
		t.Fatalf("the notice carries a token: %v", notice)
	}
	if n := flowCount(t, e, email, events.SubjectVerificationRequested); n != 1 {
		t.Fatalf("%d verification events, want 1 (the second attempt must not issue a token)", n)
	}
	var name string
	flowScan(t, e, &name, "SELECT name FROM users WHERE id = ?", id)
	if name != "First Owner" {
		t.Fatalf("the second register changed the name to %q", name)
	}
	// The intruder's password did not replace the owner's.
	apitest.Expect(t, flowLogin(e, email, "another fine passphrase 42"), http.StatusUnauthorized, "invalid_credentials")
	apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusForbidden, "email_not_verified")
}

func TestRegisterWithoutVerificationReturnsUser(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	email := apitest.Email("reg-direct")

	r := flowRegister(e, email, apitest.Password, "Direct User")
	apitest.Expect(t, r, http.StatusCreated, "")
	flowCheckUserShape(t, r.Body)
	var u apitest.User
	r.JSON(t, &u)
	if u.Email != email || u.Name != "Direct User" || u.EmailVerified || u.MFAEnabled || !slices.Equal(u.Roles, []string{"user"}) {
		t.Fatalf("user = %+v", u)
	}
	if id := flowUserID(t, e, email); id != u.ID {
		t.Fatalf("answered id %s, stored %s", u.ID, id)
	}

	for _, variant := range []string{email, strings.ToUpper(email)} {
		r := flowRegister(e, variant, "another fine passphrase 42", "")
		apitest.Expect(t, r, http.StatusConflict, "email_taken")
	}
	if n := flowUserCount(t, e, email); n != 1 {
		t.Fatalf("%d accounts, want 1", n)
	}
	// Without required verification the account signs in at once.
	p := flowPair(t, flowLogin(e, email, apitest.Password))
	if p.User.ID != u.ID {
		t.Fatalf("login user %s, registered %s", p.User.ID, u.ID)
	}
}

func TestRegisterInvalidEmail(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + ".com" // 259 characters
	cases := map[string]string{
		"empty":             "",
		"no at":             "plainaddress",
		"no local part":     "@example.com",
		"no domain":         "user@",
		"dotless domain":    "user@localhost",
		"two ats":           "a@b@example.com",
		"space":             "a b@example.com",
		"display name":      "Alice <alice@example.com>",
		"double dot domain": "user@example..com",
		"leading dot":       "user@.example.com",
		"control character": "us\u0007er@example.com",
		"too long":          long,
	}
	for name, addr := range cases {
		t.Run(name, func(t *testing.T) {
			r := flowFor(t, e).Do(http.MethodPost, "/v1/auth/register",
				map[string]string{"email": addr, "password": apitest.Password}, "")
			apitest.Expect(t, r, http.StatusBadRequest, "invalid_email")
		})
	}
}

func TestRegisterPasswordPolicy(t *testing.T) {
	t.Parallel()
	emoji64 := strings.Repeat("😀", 64) // 64 characters, 256 bytes
	cases := []struct {
		name     string
		env      map[string]string
		password func(email string) string
		accepted bool
	}{
		{"7 characters", nil, func(string) string { return "abc1234" }, false},
		{"8 characters", nil, func(string) string { return "kq8vz3mw" }, true},
		{"common password", nil, func(string) string { return "qwertyuiop" }, false},
		{"common password other case", nil, func(string) string { return "IloveYou" }, false},
		{"contains email local part", nil, func(email string) string {
			return "My " + strings.SplitN(email, "@", 2)[0] + " secret!"
		}, false},
		{"over PASSWORD_MAX_LENGTH default", nil, func(string) string { return strings.Repeat("xy", 128) + "z" }, false},
		{"exactly PASSWORD_MAX_LENGTH default", nil, func(string) string { return strings.Repeat("xy", 128) }, true},
		{"64 emoji", nil, func(string) string { return emoji64 }, true},
		{"over PASSWORD_MAX_LENGTH 64", map[string]string{"PASSWORD_MAX_LENGTH": "64"}, func(string) string {
			return strings.Repeat("q", 65)
		}, false},
		{"64 emoji at PASSWORD_MAX_LENGTH 64", map[string]string{"PASSWORD_MAX_LENGTH": "64"}, func(string) string {
			return emoji64
		}, true},
		{"passphrase without composition", nil, func(string) string { return apitest.Password }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"}
			maps.Copy(env, tc.env)
			e := apitest.Start(t, env)
			email := apitest.Email("policy")
			pw := tc.password(email)
			r := flowRegister(e, email, pw, "")
			if !tc.accepted {
				apitest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password")
				if n := flowUserCount(t, e, email); n != 0 {
					t.Fatalf("a refused password still created %d account(s)", n)
				}
				return
			}
			apitest.Expect(t, r, http.StatusCreated, "")
			flowPair(t, flowLogin(e, email, pw))
		})
	}
}

func TestRegisterNormalisesEmail(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name            string
		stored, variant string
	}{
		{"case", "alice-%s@example.com", "Alice-%s@Example.COM"},
		{"NFD vs NFC", "jos\u00e9-%s@example.com", "jose\u0301-%s@example.com"},
		{"fullwidth", "alice-%s@example.com", "\uff41lice-%s@example.com"},
	}
	for _, tc := range cases {
		for _, required := range []bool{true, false} {
			name := tc.name + "/verification required"
			if !required {
				name = tc.name + "/verification not required"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": strconv.FormatBool(required)})
				tag := strings.TrimSuffix(strings.TrimPrefix(apitest.Email("x"), "x-"), "@example.com")
				stored := strings.ReplaceAll(tc.stored, "%s", tag)
				variant := strings.ReplaceAll(tc.variant, "%s", tag)

				first := flowRegister(e, stored, apitest.Password, "")
				second := flowRegister(e, variant, apitest.Password, "")
				if required {
					flowExpectPending(t, first)
					flowExpectPending(t, second)
					if n := flowCount(t, e, stored, events.SubjectRegisterExisting); n != 1 {
						t.Fatalf("the variant did not reach the owner of %q as a register_existing notice (%d)", stored, n)
					}
					apitest.Expect(t, flowVerifyEmail(e, flowToken(t, e, stored, events.SubjectVerificationRequested)), http.StatusOK, "")
				} else {
					apitest.Expect(t, first, http.StatusCreated, "")
					apitest.Expect(t, second, http.StatusConflict, "email_taken")
				}
				if n := flowUserCount(t, e, stored); n != 1 {
					t.Fatalf("%d accounts stored as %q, want 1", n, stored)
				}
				var total int
				flowScan(t, e, &total, "SELECT count(*) FROM users WHERE email LIKE ?", "%"+tag+"%")
				if total != 1 {
					t.Fatalf("%d accounts for the variants of %q, want 1", total, stored)
				}
				// Either spelling signs in to the one account.
				for _, addr := range []string{stored, variant} {
					p := flowPair(t, flowLogin(e, addr, apitest.Password))
					if p.User.Email != stored {
						t.Fatalf("login as %q: email %q, want %q", addr, p.User.Email, stored)
					}
				}
			})
		}
	}
}

// --- email verification ---

func TestEmailVerify(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("verify")
	flowExpectPending(t, flowRegister(e, email, apitest.Password, "Vera"))
	tok := flowToken(t, e, email, events.SubjectVerificationRequested)

	flowExpectLifetime(t, e.OutboxPayload(email, events.SubjectVerificationRequested), 24*time.Hour)

	r := flowVerifyEmail(e, tok)
	apitest.Expect(t, r, http.StatusOK, "")
	flowCheckUserShape(t, r.Body)
	var u apitest.User
	r.JSON(t, &u)
	if !u.EmailVerified || u.Email != email || u.Name != "Vera" || !slices.Equal(u.Roles, []string{"user"}) {
		t.Fatalf("verified user = %+v", u)
	}
	var verified bool
	flowScan(t, e, &verified, "SELECT email_verified_at IS NOT NULL FROM users WHERE id = ?", u.ID)
	if !verified {
		t.Fatal("email_verified_at not set in the database")
	}
	if n := flowCount(t, e, email, events.SubjectEmailVerified); n != 1 {
		t.Fatalf("%d email_verified events, want 1", n)
	}

	apitest.Expect(t, flowVerifyEmail(e, tok), http.StatusBadRequest, "invalid_token")
	flowPair(t, flowLogin(e, email, apitest.Password))
}

func TestEmailVerifyRejectsBadTokens(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)

	cases := []struct {
		name  string
		token func(t *testing.T, e *apitest.Env, email string) string
	}{
		{"empty", func(*testing.T, *apitest.Env, string) string { return "" }},
		{"garbage", func(*testing.T, *apitest.Env, string) string { return "not-a-token" }},
		{"well formed but unknown", func(*testing.T, *apitest.Env, string) string {
			return base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		}},
		{"expired", func(t *testing.T, e *apitest.Env, email string) string {
			tok := flowToken(t, e, email, events.SubjectVerificationRequested)
			flowExec(t, e, `UPDATE one_time_tokens SET expires_at = now() - interval '1 minute'
				WHERE user_id = ? AND purpose = 'email_verification'`, flowUserID(t, e, email))
			return tok
		}},
		{"password reset token", func(t *testing.T, e *apitest.Env, email string) string {
			apitest.Expect(t, flowForgot(flowFor(t, e), email), http.StatusAccepted, "")
			return flowToken(t, e, email, events.SubjectPasswordResetRequested)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			se := flowFor(t, e)
			email := apitest.Email("verify-bad")
			flowExpectPending(t, flowRegister(se, email, apitest.Password, ""))
			apitest.Expect(t, flowVerifyEmail(se, tc.token(t, e, email)), http.StatusBadRequest, "invalid_token")
			var verified bool
			flowScan(t, e, &verified, "SELECT email_verified_at IS NOT NULL FROM users WHERE email = ?", email)
			if verified {
				t.Fatal("a refused token verified the address")
			}
			apitest.Expect(t, flowLogin(se, email, apitest.Password), http.StatusForbidden, "email_not_verified")
		})
	}
}

func TestEmailResend(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	resend := func(email string) *apitest.Response {
		t.Helper()
		r := e.Do(http.MethodPost, "/v1/auth/email/resend", map[string]string{"email": email}, "")
		apitest.Expect(t, r, http.StatusAccepted, "")
		return r
	}

	unknown := resend(apitest.Email("resend-nobody"))
	invalid := resend("not an address")

	pending := apitest.Email("resend-pending")
	flowExpectPending(t, flowRegister(e, pending, apitest.Password, ""))
	old := flowToken(t, e, pending, events.SubjectVerificationRequested)
	known := resend(strings.ToUpper(pending))
	if n := flowCount(t, e, pending, events.SubjectVerificationRequested); n != 2 {
		t.Fatalf("%d verification events after a resend, want 2", n)
	}
	fresh := flowToken(t, e, pending, events.SubjectVerificationRequested)
	if fresh == old {
		t.Fatal("the resend carries the old token")
	}
	apitest.Expect(t, flowVerifyEmail(e, old), http.StatusBadRequest, "invalid_token")
	apitest.Expect(t, flowVerifyEmail(e, fresh), http.StatusOK, "")

	// Verified now: a resend sends nothing.
	verified := resend(pending)
	if n := flowCount(t, e, pending, events.SubjectVerificationRequested); n != 2 {
		t.Fatalf("a resend for a verified address wrote an event (%d)", n)
	}

	for _, r := range []*apitest.Response{invalid, known, verified} {
		if string(r.Body) != string(unknown.Body) {
			t.Fatalf("resend answers differ: %s vs %s", r.Body, unknown.Body)
		}
	}
}

func TestLoginBeforeVerification(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("unverified")
	flowExpectPending(t, flowRegister(e, email, apitest.Password, ""))

	apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusForbidden, "email_not_verified")
	apitest.Expect(t, flowLogin(e, email, "wrong horse battery staple"), http.StatusUnauthorized, "invalid_credentials")

	apitest.Expect(t, flowVerifyEmail(e, flowToken(t, e, email, events.SubjectVerificationRequested)), http.StatusOK, "")
	flowPair(t, flowLogin(e, email, apitest.Password))
}
