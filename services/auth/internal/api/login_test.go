package api_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

func TestLoginReturnsTokenPair(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("login")
	u := e.Register(email)

	r := flowLogin(e, email, apitest.Password)
	p := flowPair(t, r)
	if got := r.Header.Get("Cache-Control"); !strings.Contains(got, "no-store") {
		t.Fatalf("Cache-Control = %q, want no-store", got)
	}
	if p.TokenType != "Bearer" || p.ExpiresIn != 900 {
		t.Fatalf("token_type %q expires_in %d, want Bearer 900", p.TokenType, p.ExpiresIn)
	}
	if got := flowKeys(t, r.Body); !slices.Equal(got, []string{"access_token", "expires_in", "refresh_token", "token_type", "user"}) {
		t.Fatalf("pair keys = %v", got)
	}
	var raw struct {
		User json.RawMessage `json:"user"`
	}
	r.JSON(t, &raw)
	flowCheckUserShape(t, raw.User)
	if p.User.ID != u.ID || p.User.Email != email || !p.User.EmailVerified {
		t.Fatalf("user = %+v", p.User)
	}
	c := flowClaims(t, p.AccessToken)
	if c["sub"] != u.ID || c["iss"] != "http://auth.test" {
		t.Fatalf("claims = %v", c)
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 900 {
		t.Fatalf("exp - iat = %v, want 900", exp-iat)
	}
	if _, err := uuid.Parse(flowSID(t, p.AccessToken)); err != nil {
		t.Fatalf("sid: %v", err)
	}
	if got := flowClaimStrings(t, p.AccessToken, "roles"); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("roles = %v", got)
	}
	if got := flowClaimStrings(t, p.AccessToken, "amr"); !slices.Equal(got, []string{"pwd"}) {
		t.Fatalf("amr = %v", got)
	}
	flowExpectATAlive(t, e, p.AccessToken)
}

func TestLoginHonoursAccessTokenTTL(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"ACCESS_TOKEN_TTL": "5m"})
	_, p := e.NewUser(t)
	if p.ExpiresIn != 300 {
		t.Fatalf("expires_in = %d, want 300", p.ExpiresIn)
	}
	c := flowClaims(t, p.AccessToken)
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 300 {
		t.Fatalf("exp - iat = %v, want 300", exp-iat)
	}
	if r := flowPair(t, flowRefresh(e, p.RefreshToken)); r.ExpiresIn != 300 {
		t.Fatalf("refresh expires_in = %d, want 300", r.ExpiresIn)
	}
}

// A password is compared whole, in any Unicode form: what was accepted at register
// signs in with the same characters, composed or decomposed, and nothing else does.
func TestLoginPasswordUnicodeAndLength(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	cases := []struct {
		name     string
		register string
		good     []string
		bad      []string
	}{
		{"composed vs decomposed", "ma\u00f1ana ma\u00f1ana", []string{"ma\u00f1ana ma\u00f1ana", "man\u0303ana man\u0303ana"},
			[]string{"manana manana", " ma\u00f1ana ma\u00f1ana", "ma\u00f1ana ma\u00f1ana "}},
		{"no truncation at 72 bytes", strings.Repeat("A", 72) + "x", []string{strings.Repeat("A", 72) + "x"},
			[]string{strings.Repeat("A", 72) + "y", strings.Repeat("A", 72)}},
		{"64 emoji", strings.Repeat("\U0001F600", 64), []string{strings.Repeat("\U0001F600", 64)},
			[]string{strings.Repeat("\U0001F600", 63)}},
		// 200 characters once composed, 400 code points as typed: within
		// PASSWORD_MAX_LENGTH (256 characters) either way it is counted.
		{"long decomposed", strings.Repeat("e\u0301", 200), []string{strings.Repeat("e\u0301", 200), strings.Repeat("\u00e9", 200)},
			[]string{strings.Repeat("e\u0301", 199)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			se := flowFor(t, e)
			email := apitest.Email("pw-unicode")
			apitest.Expect(t, flowRegister(se, email, tc.register, ""), http.StatusCreated, "")
			for i, pw := range tc.good {
				if r := flowLogin(se, email, pw); r.Status != http.StatusOK {
					t.Errorf("good form #%d refused: %d %s", i, r.Status, r.Body)
				}
			}
			for i, pw := range tc.bad {
				if r := flowLogin(se, email, pw); r.Status != http.StatusUnauthorized || r.Code() != "invalid_credentials" {
					t.Errorf("wrong password #%d: %d %s, want 401 invalid_credentials", i, r.Status, r.Body)
				}
			}
		})
	}
}

// flowWithoutRequestID strips error.request_id so two error bodies can be compared.
func flowWithoutRequestID(t testing.TB, raw []byte) string {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if m["error"]["request_id"] == "" || m["error"]["request_id"] == nil {
		t.Fatalf("error without request_id: %s", raw)
	}
	delete(m["error"], "request_id")
	b, _ := json.Marshal(m)
	return string(b)
}

func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	const wrongPassword = "wrong horse battery staple"
	email := apitest.Email("login-enum")
	e.Register(email)
	unverified := apitest.Email("login-enum-unverified")
	flowExpectPending(t, flowRegister(e, unverified, apitest.Password, ""))
	disabled := apitest.Email("login-enum-disabled")
	flowExec(t, e, "UPDATE users SET disabled_at = now() WHERE id = ?", e.Register(disabled).ID)
	// An account that signs in only through a provider has no password at all.
	passwordless := apitest.Email("login-enum-oauth")
	id := uuid.NewString()
	flowExec(t, e, "INSERT INTO users (id, email, email_verified_at) VALUES (?, ?, now())", id, passwordless)
	flowExec(t, e, "INSERT INTO user_roles (user_id, role) VALUES (?, 'user')", id)

	unknown := flowLogin(e, apitest.Email("login-nobody"), wrongPassword)
	apitest.Expect(t, unknown, http.StatusUnauthorized, "invalid_credentials")
	for name, addr := range map[string]string{
		"wrong password":             email,
		"unverified, wrong password": unverified,
		"disabled, wrong password":   disabled,
		"passwordless account":       passwordless,
	} {
		r := flowLogin(e, addr, wrongPassword)
		apitest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
		if a, b := flowWithoutRequestID(t, r.Body), flowWithoutRequestID(t, unknown.Body); a != b {
			t.Fatalf("%s: body differs from an unknown address:\n%s\n%s", name, a, b)
		}
		if a, b := slices.Sorted(maps.Keys(r.Header)), slices.Sorted(maps.Keys(unknown.Header)); !slices.Equal(a, b) {
			t.Fatalf("%s: header set differs from an unknown address:\n%v\n%v", name, a, b)
		}
		for k := range r.Header {
			if k == "X-Request-Id" || k == "Date" {
				continue
			}
			if !slices.Equal(r.Header[k], unknown.Header[k]) {
				t.Fatalf("%s: header %s differs: %q vs %q", name, k, r.Header[k], unknown.Header[k])
			}
		}
	}
}

func TestLoginEmailCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("login-case")
	u := e.Register(email)
	for _, variant := range []string{strings.ToUpper(email), "  " + email + " "} {
		p := flowPair(t, flowLogin(e, variant, apitest.Password))
		if p.User.ID != u.ID || p.User.Email != email {
			t.Fatalf("login as %q: %+v", variant, p.User)
		}
	}
}

func TestLoginDisabledAccount(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("login-disabled")
	u := e.Register(email)
	flowExec(t, e, "UPDATE users SET disabled_at = now() WHERE id = ?", u.ID)

	apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusForbidden, "account_disabled")
	apitest.Expect(t, flowLogin(e, email, "wrong horse battery staple"), http.StatusUnauthorized, "invalid_credentials")

	flowExec(t, e, "UPDATE users SET disabled_at = NULL WHERE id = ?", u.ID)
	flowPair(t, flowLogin(e, email, apitest.Password))
}

func TestLoginUpgradesLegacyBcryptHash(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("login-bcrypt")
	const legacyPassword = "legacy passphrase from 2019"
	hash, err := bcrypt.GenerateFromPassword([]byte(legacyPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	flowExec(t, e, `INSERT INTO users (id, email, name, password_hash, email_verified_at) VALUES (?, ?, 'Legacy', ?, now())`,
		id, email, string(hash))
	flowExec(t, e, `INSERT INTO user_roles (user_id, role) VALUES (?, 'user')`, id)
	stored := func() string {
		t.Helper()
		var h string
		flowScan(t, e, &h, "SELECT password_hash FROM users WHERE id = ?", id)
		return h
	}

	apitest.Expect(t, flowLogin(e, email, "wrong passphrase from 2019"), http.StatusUnauthorized, "invalid_credentials")
	if stored() != string(hash) {
		t.Fatal("a failed login changed the stored hash")
	}

	p := flowPair(t, flowLogin(e, email, legacyPassword))
	if p.User.ID != id || !slices.Equal(p.User.Roles, []string{"user"}) {
		t.Fatalf("user = %+v", p.User)
	}
	upgraded := stored()
	if !strings.HasPrefix(upgraded, "$argon2id$") {
		t.Fatalf("hash after login = %q, want $argon2id$", upgraded)
	}
	// The upgraded hash still holds the same password, and only that one.
	flowPair(t, flowLogin(e, email, legacyPassword))
	apitest.Expect(t, flowLogin(e, email, "wrong passphrase from 2019"), http.StatusUnauthorized, "invalid_credentials")
	if stored() != upgraded {
		t.Fatal("the hash changed again on a login with a current hash")
	}
}

func TestLoginAdminEmails(t *testing.T) {
	t.Parallel()

	t.Run("verified account holds admin", func(t *testing.T) {
		t.Parallel()
		admin := apitest.Email("admin")
		// Configured in another case: the setting is matched case-insensitively.
		e := apitest.Start(t, map[string]string{"ADMIN_EMAILS": apitest.Email("other-admin") + "," + strings.ToUpper(admin)})

		u := e.Register(admin)
		if !slices.Contains(u.Roles, "admin") || !slices.Contains(u.Roles, "user") {
			t.Fatalf("verified admin roles = %v", u.Roles)
		}
		p := e.Login(admin, apitest.Password)
		if !slices.Contains(p.User.Roles, "admin") {
			t.Fatalf("login roles = %v", p.User.Roles)
		}
		if got := flowClaimStrings(t, p.AccessToken, "roles"); !slices.Equal(got, []string{"admin", "user"}) {
			t.Fatalf("token roles = %v", got)
		}
		r := e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, p.AccessToken)
		apitest.Expect(t, r, http.StatusOK, "")
		if r.Header.Get("X-Auth-User-Id") != u.ID || r.Header.Get("X-Auth-Email") != admin ||
			!slices.Contains(strings.Split(r.Header.Get("X-Auth-Roles"), ","), "admin") ||
			r.Header.Get("X-Auth-Session-Id") != flowSID(t, p.AccessToken) {
			t.Fatalf("verify headers = %v", r.Header)
		}
		if got := flowDBRoles(t, e, u.ID); got != "admin,user" {
			t.Fatalf("stored roles = %q", got)
		}

		_, other := e.NewUser(t)
		apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, other.AccessToken), http.StatusForbidden, "forbidden")
		apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=user", nil, other.AccessToken), http.StatusOK, "")
		apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, ""), http.StatusUnauthorized, "")
	})

	t.Run("unverified account is not admin", func(t *testing.T) {
		t.Parallel()
		admin := apitest.Email("admin-unverified")
		e := apitest.Start(t, map[string]string{"ADMIN_EMAILS": admin, "EMAIL_VERIFICATION_REQUIRED": "false"})
		r := flowRegister(e, admin, apitest.Password, "")
		apitest.Expect(t, r, http.StatusCreated, "")
		var u apitest.User
		r.JSON(t, &u)
		if slices.Contains(u.Roles, "admin") {
			t.Fatalf("unverified account got admin at register: %v", u.Roles)
		}
		p := e.Login(admin, apitest.Password)
		if slices.Contains(p.User.Roles, "admin") || slices.Contains(flowClaimStrings(t, p.AccessToken, "roles"), "admin") {
			t.Fatalf("unverified account got admin at login: %v", p.User.Roles)
		}
		apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, p.AccessToken), http.StatusForbidden, "forbidden")
		if got := flowDBRoles(t, e, u.ID); got != "user" {
			t.Fatalf("stored roles = %q", got)
		}

		v := flowVerifyEmail(e, flowToken(t, e, admin, "auth.email.verification_requested"))
		apitest.Expect(t, v, http.StatusOK, "")
		var vu apitest.User
		v.JSON(t, &vu)
		if !slices.Contains(vu.Roles, "admin") {
			t.Fatalf("verified account roles = %v", vu.Roles)
		}
		p = e.Login(admin, apitest.Password)
		apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, p.AccessToken), http.StatusOK, "")
	})
}

// --- logout ---

func TestLogoutEndsOnlyThatSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, s1 := e.NewUser(t)
	s2 := e.Login(email, apitest.Password)

	r := e.Do(http.MethodPost, "/v1/auth/logout", nil, s1.AccessToken)
	apitest.Expect(t, r, http.StatusNoContent, "")
	if len(r.Body) != 0 {
		t.Fatalf("204 with a body: %s", r.Body)
	}
	flowExpectATDead(t, e, s1.AccessToken)
	flowExpectRTDead(t, e, s1.RefreshToken)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout", nil, s1.AccessToken), http.StatusUnauthorized, "")

	flowExpectATAlive(t, e, s2.AccessToken)
	flowRefreshOK(t, e, s2.RefreshToken)
}

func TestLogoutWithRefreshTokenOfOwnOtherSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, a1 := e.NewUser(t)
	a2 := e.Login(email, apitest.Password)
	a3 := e.Login(email, apitest.Password)
	_, b1 := e.NewUser(t)

	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout", map[string]string{"refresh_token": a2.RefreshToken}, a1.AccessToken),
		http.StatusNoContent, "")
	flowExpectATDead(t, e, a1.AccessToken)
	flowExpectATDead(t, e, a2.AccessToken)
	flowExpectRTDead(t, e, a1.RefreshToken)
	flowExpectRTDead(t, e, a2.RefreshToken)
	flowExpectATAlive(t, e, a3.AccessToken)

	// Another user's refresh token in the body ends nothing of theirs.
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout", map[string]string{"refresh_token": b1.RefreshToken}, a3.AccessToken),
		http.StatusNoContent, "")
	flowExpectATDead(t, e, a3.AccessToken)
	flowExpectATAlive(t, e, b1.AccessToken)
	flowRefreshOK(t, e, b1.RefreshToken)
}

func TestLogoutAll(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, s1 := e.NewUser(t)
	s2 := e.Login(email, apitest.Password)
	s3 := e.Login(email, apitest.Password)
	s3 = flowRefreshOK(t, e, s3.RefreshToken) // a rotated session ends too
	_, other := e.NewUser(t)

	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout-all", nil, s2.AccessToken), http.StatusNoContent, "")
	for _, s := range []apitest.Pair{s1, s2, s3} {
		flowExpectATDead(t, e, s.AccessToken)
		flowExpectRTDead(t, e, s.RefreshToken)
	}
	flowExpectATAlive(t, e, other.AccessToken)
	flowRefreshOK(t, e, other.RefreshToken)
	// The account itself still signs in.
	flowExpectATAlive(t, e, e.Login(email, apitest.Password).AccessToken)
}

func TestLogoutRequiresAccessToken(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	for _, path := range []string{"/v1/auth/logout", "/v1/auth/logout-all"} {
		for name, h := range map[string]http.Header{
			"none":          {},
			"garbage":       {"Authorization": {"Bearer not-a-jwt"}},
			"refresh token": {"Authorization": {"Bearer " + p.RefreshToken}},
			"basic":         {"Authorization": {"Basic dXNlcjpwYXNz"}},
		} {
			r := e.Request(http.MethodPost, path, nil, h)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("%s with %s authorization: %d %s, want 401", path, name, r.Status, r.Body)
			}
		}
	}
	flowExpectATAlive(t, e, p.AccessToken)
	flowRefreshOK(t, e, p.RefreshToken)
}
