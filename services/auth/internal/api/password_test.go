package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

const flowNewPassword = "a brand new passphrase 77"

// --- forgot ---

func TestForgotPasswordAnswersAlike(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	known := apitest.Email("forgot-known")
	e.Register(known)
	unknown := apitest.Email("forgot-unknown")

	rk := flowForgot(e, known)
	ru := flowForgot(e, unknown)
	ri := flowForgot(e, "not an address")
	for _, r := range []*apitest.Response{rk, ru, ri} {
		apitest.Expect(t, r, http.StatusAccepted, "")
		if string(r.Body) != string(rk.Body) || r.Header.Get("Content-Type") != rk.Header.Get("Content-Type") {
			t.Fatalf("forgot answers differ: %s vs %s", r.Body, rk.Body)
		}
	}
	if n := flowCount(t, e, known, events.SubjectPasswordResetRequested); n != 1 {
		t.Fatalf("%d reset events for the known address, want 1", n)
	}
	if n := flowCount(t, e, unknown, events.SubjectPasswordResetRequested); n != 0 {
		t.Fatalf("%d reset events for an unknown address", n)
	}
}

func TestForgotPasswordMailsStoredAddress(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	stored := apitest.Email("alice")
	u := e.Register(stored)
	local, domain, _ := strings.Cut(stored, "@")
	typed := strings.ToUpper(local) + "@" + strings.ToUpper(domain[:1]) + domain[1:]

	apitest.Expect(t, flowForgot(e, typed), http.StatusAccepted, "")
	if n := flowCount(t, e, stored, events.SubjectPasswordResetRequested); n != 1 {
		t.Fatalf("%d reset events for the stored address %q, want 1", n, stored)
	}
	if n := flowCount(t, e, typed, events.SubjectPasswordResetRequested); n != 0 {
		t.Fatalf("a reset event names the typed address %q", typed)
	}
	payload := e.OutboxPayload(stored, events.SubjectPasswordResetRequested)
	if payload["email"] != stored || payload["user_id"] != u.ID {
		t.Fatalf("reset event payload %v", payload)
	}
	flowExpectLifetime(t, payload, time.Hour)
	apitest.Expect(t, flowReset(e, flowToken(t, e, stored, events.SubjectPasswordResetRequested), flowNewPassword), http.StatusNoContent, "")
	flowPair(t, flowLogin(e, stored, flowNewPassword))
}

func TestForgotPasswordSecondRequestRetiresFirstToken(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("forgot-twice")
	e.Register(email)

	apitest.Expect(t, flowForgot(e, email), http.StatusAccepted, "")
	first := flowToken(t, e, email, events.SubjectPasswordResetRequested)
	apitest.Expect(t, flowForgot(e, email), http.StatusAccepted, "")
	second := flowToken(t, e, email, events.SubjectPasswordResetRequested)
	if first == second {
		t.Fatal("the second request carries the first token")
	}
	apitest.Expect(t, flowReset(e, first, flowNewPassword), http.StatusBadRequest, "invalid_token")
	apitest.Expect(t, flowReset(e, second, flowNewPassword), http.StatusNoContent, "")
}

// --- reset ---

func TestResetPasswordEndsSessionsAndIsSingleUse(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, s1 := e.NewUser(t)
	s2 := e.Login(email, apitest.Password)
	s2 = flowRefreshOK(t, e, s2.RefreshToken)

	apitest.Expect(t, flowForgot(e, email), http.StatusAccepted, "")
	tok := flowToken(t, e, email, events.SubjectPasswordResetRequested)
	// Asking for a reset ends nothing and changes nothing yet.
	flowExpectATAlive(t, e, s1.AccessToken)
	flowPair(t, flowLogin(e, email, apitest.Password))

	r := flowReset(e, tok, flowNewPassword)
	apitest.Expect(t, r, http.StatusNoContent, "")
	if len(r.Body) != 0 {
		t.Fatalf("reset answered a body (it must not sign in): %s", r.Body)
	}

	for _, s := range []apitest.Pair{s1, s2} {
		flowExpectATDead(t, e, s.AccessToken)
		flowExpectRTDead(t, e, s.RefreshToken)
	}
	apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusUnauthorized, "invalid_credentials")
	flowPair(t, flowLogin(e, email, flowNewPassword))

	apitest.Expect(t, flowReset(e, tok, "yet another passphrase 88"), http.StatusBadRequest, "invalid_token")
	flowPair(t, flowLogin(e, email, flowNewPassword))

	if n := flowCount(t, e, email, events.SubjectPasswordChanged); n != 1 {
		t.Fatalf("%d password_changed events, want 1", n)
	}
	ev := e.OutboxPayload(email, events.SubjectPasswordChanged)
	if ev["user_id"] != s1.User.ID {
		t.Fatalf("password_changed payload %v", ev)
	}
	if _, ok := ev["token"]; ok {
		t.Fatalf("password_changed event carries a token: %v", ev)
	}
}

func TestResetPasswordRejectsBadTokens(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	cases := []struct {
		name string
		// token returns the token to present for the account email (verified unless noted).
		token func(t *testing.T, e *apitest.Env, email string) string
		// verify: register and verify the account first.
		verify bool
	}{
		{"garbage", func(*testing.T, *apitest.Env, string) string { return "garbage" }, true},
		{"empty", func(*testing.T, *apitest.Env, string) string { return "" }, true},
		{"expired", func(t *testing.T, e *apitest.Env, email string) string {
			apitest.Expect(t, flowForgot(e, email), http.StatusAccepted, "")
			tok := flowToken(t, e, email, events.SubjectPasswordResetRequested)
			flowExec(t, e, `UPDATE one_time_tokens SET expires_at = now() - interval '1 second'
				WHERE user_id = ? AND purpose = 'password_reset'`, flowUserID(t, e, email))
			return tok
		}, true},
		{"verification token", func(t *testing.T, e *apitest.Env, email string) string {
			return flowToken(t, e, email, events.SubjectVerificationRequested)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			se := flowFor(t, e)
			email := apitest.Email("reset-bad")
			if tc.verify {
				se.Register(email)
			} else {
				flowExpectPending(t, flowRegister(se, email, apitest.Password, ""))
			}
			tok := tc.token(t, se, email)
			apitest.Expect(t, flowReset(se, tok, flowNewPassword), http.StatusBadRequest, "invalid_token")
			if n := flowCount(t, e, email, events.SubjectPasswordChanged); n != 0 {
				t.Fatal("a refused reset wrote password_changed")
			}
			if tc.verify {
				apitest.Expect(t, flowLogin(se, email, flowNewPassword), http.StatusUnauthorized, "invalid_credentials")
				flowPair(t, flowLogin(se, email, apitest.Password))
			} else {
				// The verification token was not spent by the attempt, and the address
				// was not verified by it.
				apitest.Expect(t, flowLogin(se, email, apitest.Password), http.StatusForbidden, "email_not_verified")
				apitest.Expect(t, flowVerifyEmail(se, tok), http.StatusOK, "")
				apitest.Expect(t, flowLogin(se, email, flowNewPassword), http.StatusUnauthorized, "invalid_credentials")
			}
		})
	}
}

func TestResetPasswordWeakPasswordKeepsToken(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, s := e.NewUser(t)
	apitest.Expect(t, flowForgot(e, email), http.StatusAccepted, "")
	tok := flowToken(t, e, email, events.SubjectPasswordResetRequested)

	for _, weak := range []string{"short1", "qwertyuiop", strings.SplitN(email, "@", 2)[0] + "!!", strings.Repeat("z", 257)} {
		apitest.Expect(t, flowReset(e, tok, weak), http.StatusUnprocessableEntity, "weak_password")
	}
	// Nothing happened: the old password and the session still work.
	flowExpectATAlive(t, e, s.AccessToken)
	flowPair(t, flowLogin(e, email, apitest.Password))

	apitest.Expect(t, flowReset(e, tok, flowNewPassword), http.StatusNoContent, "")
	flowPair(t, flowLogin(e, email, flowNewPassword))
}

// --- change password (POST /v1/users/me/password) ---

func flowChangePassword(e *apitest.Env, at, current, next string) *apitest.Response {
	e.T.Helper()
	return e.Do(http.MethodPost, "/v1/users/me/password", map[string]string{"current_password": current, "new_password": next}, at)
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, cur := e.NewUser(t)
	other := e.Login(email, apitest.Password)
	_, stranger := e.NewUser(t)

	apitest.Expect(t, flowChangePassword(e, cur.AccessToken, "wrong horse battery staple", flowNewPassword),
		http.StatusUnauthorized, "invalid_credentials")
	apitest.Expect(t, flowChangePassword(e, cur.AccessToken, apitest.Password, "qwertyuiop"),
		http.StatusUnprocessableEntity, "weak_password")
	apitest.Expect(t, flowChangePassword(e, cur.AccessToken, apitest.Password, "short"),
		http.StatusUnprocessableEntity, "weak_password")
	apitest.Expect(t, flowChangePassword(e, "", apitest.Password, flowNewPassword), http.StatusUnauthorized, "")
	// The refused attempts changed nothing.
	flowExpectATAlive(t, e, other.AccessToken)
	if n := flowCount(t, e, email, events.SubjectPasswordChanged); n != 0 {
		t.Fatalf("refused changes wrote %d password_changed events", n)
	}

	r := flowChangePassword(e, cur.AccessToken, apitest.Password, flowNewPassword)
	apitest.Expect(t, r, http.StatusNoContent, "")

	// Other sessions end, the current one goes on.
	flowExpectATDead(t, e, other.AccessToken)
	flowExpectRTDead(t, e, other.RefreshToken)
	flowExpectATAlive(t, e, cur.AccessToken)
	next := flowRefreshOK(t, e, cur.RefreshToken)
	flowExpectATAlive(t, e, next.AccessToken)
	// Another user is untouched.
	flowExpectATAlive(t, e, stranger.AccessToken)

	apitest.Expect(t, flowLogin(e, email, apitest.Password), http.StatusUnauthorized, "invalid_credentials")
	flowPair(t, flowLogin(e, email, flowNewPassword))
	if n := flowCount(t, e, email, events.SubjectPasswordChanged); n != 1 {
		t.Fatalf("%d password_changed events, want 1", n)
	}
}

// The current password is compared whole whatever its Unicode form: a password the
// policy accepted (200 characters once composed, 400 code points as typed) must be
// accepted as current_password in the form it was set.
func TestChangePasswordLongDecomposedCurrent(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	email := apitest.Email("change-nfd")
	decomposed := strings.Repeat("e\u0301", 200)
	apitest.Expect(t, flowRegister(e, email, decomposed, ""), http.StatusCreated, "")
	// The composed spelling (200 code points) gets in, so the hash is right.
	p := flowPair(t, flowLogin(e, email, strings.Repeat("\u00e9", 200)))

	apitest.Expect(t, flowChangePassword(e, p.AccessToken, decomposed, flowNewPassword), http.StatusNoContent, "")
	flowPair(t, flowLogin(e, email, flowNewPassword))
}
