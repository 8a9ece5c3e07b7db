package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/session"
	"github.com/talentforge/auth/pkg/token"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Credential changes need a fresh sign-in (REAUTH_MAX_AGE) or the current password
// in the request: an access token alone, stolen or left open, cannot add or remove a
// second factor. Sessions keep the time their user authenticated; refreshing never
// moves it. And a session opened with a password that has since changed is over,
// whenever it was opened.

// reauthAge is short so that a test can outlive it; the sleeps below wait for it to
// pass, they measure nothing.
const reauthAge = time.Second

func reauthStale(t *testing.T) {
	t.Helper()
	time.Sleep(reauthAge + 200*time.Millisecond)
}

// jwtClaims decodes the claims of an access token without checking it.
func jwtClaims(t *testing.T, at string, v any) {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", at)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func authTimeOf(t *testing.T, at string) int64 {
	t.Helper()
	var claims struct {
		AuthTime int64 `json:"auth_time"`
	}
	jwtClaims(t, at, &claims)
	if claims.AuthTime == 0 {
		t.Fatalf("no auth_time in %s", at)
	}
	return claims.AuthTime
}

func expectReauth(t *testing.T, r *apitest.Response) {
	t.Helper()
	apitest.Expect(t, r, http.StatusUnauthorized, "reauth_required")
	if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_user_authentication"`) {
		t.Fatalf("WWW-Authenticate = %q, want RFC 9470's insufficient_user_authentication", h)
	}
}

// TestReauthTOTPWithStaleSession: past REAUTH_MAX_AGE, enrolling, confirming and
// turning TOTP off answer 401 reauth_required without current_password, 401
// invalid_credentials with a wrong one, and go through with the right one. A refresh
// keeps auth_time, so it does not make a session fresh again.
func TestReauthTOTPWithStaleSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"REAUTH_MAX_AGE": reauthAge.String()})
	_, pair := e.NewUser(t)
	signedIn := authTimeOf(t, pair.AccessToken)
	reauthStale(t)

	r := e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, "")
	apitest.Expect(t, r, http.StatusOK, "")
	r.JSON(t, &pair)
	if got := authTimeOf(t, pair.AccessToken); got != signedIn {
		t.Fatalf("auth_time after refresh = %d, want the sign-in's %d", got, signedIn)
	}

	expectReauth(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp", nil, pair.AccessToken))
	if r := e.Do(http.MethodPost, "/v2/users/me/mfa/totp", map[string]string{}, pair.AccessToken); r.Status != http.StatusUnauthorized ||
		!strings.Contains(string(r.Body), `"code":"reauth_required"`) || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("v2: %d %s %v, want a 401 problem with code reauth_required", r.Status, r.Body, r.Header)
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp",
		map[string]string{"current_password": "not the password"}, pair.AccessToken), http.StatusUnauthorized, "invalid_credentials")

	withPassword := map[string]string{"current_password": apitest.Password}
	r = e.Do(http.MethodPost, "/v1/users/me/mfa/totp", withPassword, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	var en mfaEnrolment
	r.JSON(t, &en)
	clock := &mfaClock{secret: en.Secret}

	expectReauth(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm", map[string]string{"code": clock.next(t)}, pair.AccessToken))
	r = e.Do(http.MethodPost, "/v1/users/me/mfa/totp/confirm",
		map[string]string{"code": clock.next(t), "current_password": apitest.Password}, pair.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	if u := mfaMe(t, e, pair.AccessToken); !u.MFAEnabled {
		t.Fatal("TOTP not on after a confirmation with the current password")
	}

	expectReauth(t, e.Do(http.MethodDelete, "/v1/users/me/mfa/totp", map[string]string{"code": clock.next(t)}, pair.AccessToken))
	if u := mfaMe(t, e, pair.AccessToken); !u.MFAEnabled {
		t.Fatal("a stale session turned TOTP off")
	}
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/mfa/totp",
		map[string]string{"code": clock.next(t), "current_password": apitest.Password}, pair.AccessToken), http.StatusNoContent, "")
}

// TestReauthFreshSessionNeedsNoPassword: within REAUTH_MAX_AGE of signing in, the
// session itself is the re-authentication; auth_time is the sign-in's.
func TestReauthFreshSessionNeedsNoPassword(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil) // REAUTH_MAX_AGE's default, 5m
	before := time.Now().Unix()
	_, pair := e.NewUser(t)
	if at := authTimeOf(t, pair.AccessToken); at < before-1 || at > time.Now().Unix()+1 {
		t.Fatalf("auth_time %d is not the sign-in's (%d..%d)", at, before, time.Now().Unix())
	}
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/mfa/totp", nil, pair.AccessToken), http.StatusOK, "")
}

// TestSessionFromOldPasswordEndsAfterReset: a login that read the old password hash
// before a reset committed, and opened its session after the reset's RevokeAll, ends
// up with a live session stamped with the old credentials. Built here exactly (the
// session store and the service's own signing key), it must not pass a protected
// route, /v1/auth/verify or a refresh.
func TestSessionFromOldPasswordEndsAfterReset(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, pair, stamp := signedInStamp(t, e)

	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, ""), http.StatusAccepted, "")
	tok := waitOutboxToken(t, e, email, "auth.email.password_reset_requested")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": "a brand new passphrase 7"}, ""), http.StatusNoContent, "")

	// The racing login's session: opened after the reset, with the stamp it read before.
	at, rt := openSession(t, e, pair.User.ID, email, stamp, "pwd")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, at), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify", nil, at), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": rt}, ""),
		http.StatusUnauthorized, "invalid_refresh_token")

	// A sign-in with the new password is stamped with it and works.
	fresh := e.Login(email, "a brand new passphrase 7")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, fresh.AccessToken), http.StatusOK, "")
}

// TestPasswordChangeEndsOldStampedSessionsKeepsOwn: after a change, the session that
// made it goes on (it is re-stamped), and a session stamped with the old password,
// opened after the change's RevokeAll, does not.
func TestPasswordChangeEndsOldStampedSessionsKeepsOwn(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, pair, stamp := signedInStamp(t, e)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/password",
		map[string]string{"current_password": apitest.Password, "new_password": "another fine passphrase 9"}, pair.AccessToken),
		http.StatusNoContent, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, pair.AccessToken), http.StatusOK, "")
	r := e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, "")
	apitest.Expect(t, r, http.StatusOK, "")

	at, _ := openSession(t, e, pair.User.ID, email, stamp, "pwd")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, at), http.StatusUnauthorized, "")
}

// TestMFAStepAfterPasswordChange: the password step proved a password that changed
// before the second step: the mfa_token no longer opens a session.
func TestMFAStepAfterPasswordChange(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, clock, _, pair := mfaEnable(t, e)
	mfaToken := mfaLogin(t, e, email, apitest.Password)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/users/me/password",
		map[string]string{"current_password": apitest.Password, "new_password": "another fine passphrase 9"}, pair.AccessToken),
		http.StatusNoContent, "")
	apitest.Expect(t, mfaFinish(e, mfaToken, clock.next(t)), http.StatusUnauthorized, "invalid_mfa_code")
}

// openSession opens a session stamped stamp for the user with amr, as a login would
// (one that read the credentials before a change and got past its RevokeAll, say), and
// returns its access and refresh tokens, signed with the service's own key.
func openSession(t *testing.T, e *apitest.Env, userID, email, stamp, amr string) (accessToken, refreshToken string) {
	t.Helper()
	sess, rt, err := session.New(e.App.Redis).Create(context.Background(), userID, email, []string{amr}, stamp,
		session.Meta{IP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	at, _, err := token.NewIssuer(e.App.Keys, e.Cfg.PublicURL, e.Cfg.JWTAudience, time.Minute).
		Issue(userID, sess.ID, sess.CreatedAt, []string{"user"}, []string{amr})
	if err != nil {
		t.Fatal(err)
	}
	return at, rt
}

// signedInStamp signs a new user in and returns the credential stamp its session got.
func signedInStamp(t *testing.T, e *apitest.Env) (string, apitest.Pair, string) {
	t.Helper()
	email, pair := e.NewUser(t)
	sess, err := session.New(e.App.Redis).Get(context.Background(), pair.User.ID, sessionOf(t, e, pair.AccessToken))
	if err != nil || sess.Stamp == "" {
		t.Fatalf("the login's session has no credential stamp: %+v, %v", sess, err)
	}
	return email, pair, sess.Stamp
}

func sessionOf(t *testing.T, e *apitest.Env, at string) string {
	t.Helper()
	claims, err := token.NewVerifier(e.App.Keys, e.Cfg.PublicURL, e.Cfg.JWTAudience).Verify(at)
	if err != nil {
		t.Fatal(err)
	}
	return claims.SessionID
}

// waitOutboxToken waits for the email event of address (the service may write it
// after answering) and opens its token.
func waitOutboxToken(t *testing.T, e *apitest.Env, email, subject string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.OutboxCount(email, subject) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s", subject, email)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e.OutboxToken(email, subject)
}
