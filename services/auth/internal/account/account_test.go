package account_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.DropDatabase()
	os.Exit(code)
}

// client is where the tests' requests come from.
var client = account.Client{IP: "203.0.113.7", UserAgent: "account-test/1"}

// newPassword is a second policy-compliant password.
const newPassword = "violet tractor ocean lantern ninety three"

// register creates a verified account through the use cases: Register, then
// VerifyEmail with the token the outbox holds.
func register(t *testing.T, e *apitest.Env, email string) account.User {
	t.Helper()
	ctx := context.Background()
	res, err := e.App.Accounts.Register(ctx, email, apitest.Password, "Test", client)
	if err != nil || !res.Pending {
		t.Fatalf("register %s: %+v, %v", email, res, err)
	}
	u, err := e.App.Accounts.VerifyEmail(ctx, e.OutboxToken(email, events.SubjectVerificationRequested), client)
	if err != nil {
		t.Fatalf("verify %s: %v", email, err)
	}
	return u
}

func login(t *testing.T, e *apitest.Env, email, pw string) account.TokenPair {
	t.Helper()
	p, err := e.App.Accounts.Login(context.Background(), email, pw, client)
	if err != nil || p.AccessToken == "" || p.RefreshToken == "" {
		t.Fatalf("login %s: %+v, %v", email, p, err)
	}
	return p
}

// newUser registers, verifies and signs in a fresh user.
func newUser(t *testing.T, e *apitest.Env) (string, account.User, account.TokenPair) {
	t.Helper()
	email := apitest.Email("account")
	u := register(t, e, email)
	return email, u, login(t, e, email, apitest.Password)
}

func authenticate(t *testing.T, e *apitest.Env, accessToken string) account.Principal {
	t.Helper()
	p, err := e.App.Accounts.Authenticate(context.Background(), accessToken)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return p
}

func refused(t *testing.T, e *apitest.Env, accessToken, why string) {
	t.Helper()
	if p, err := e.App.Accounts.Authenticate(context.Background(), accessToken); !errors.Is(err, account.ErrUnauthenticated) {
		t.Fatalf("%s: Authenticate = %+v, %v; want ErrUnauthenticated", why, p, err)
	}
}

// With verification required a new address and a taken one get the same answer; the
// owner of the taken one gets a notice, not a second verification link.
func TestRegisterPendingForNewAndTakenAddress(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	email := apitest.Email("reg")
	res, err := e.App.Accounts.Register(ctx, email, apitest.Password, "Ann", client)
	if err != nil || !res.Pending || res.User.ID == "" || res.User.Email != email || res.User.Verified() {
		t.Fatalf("register = %+v, %v; want a pending, unverified account", res, err)
	}
	if _, err := e.App.Accounts.Login(ctx, email, apitest.Password, client); !errors.Is(err, account.ErrEmailNotVerified) {
		t.Fatalf("login before verification = %v, want ErrEmailNotVerified", err)
	}

	again, err := e.App.Accounts.Register(ctx, strings.ToUpper(email), "another fine password 77", "Mallory", client)
	if err != nil || !again.Pending || again.User.ID != "" || again.User.Email != "" {
		t.Fatalf("register of a taken address = %+v, %v; want Pending and nothing else", again, err)
	}
	if n := e.OutboxCount(email, events.SubjectVerificationRequested); n != 1 {
		t.Fatalf("verification emails = %d, want 1", n)
	}
	if n := e.OutboxCount(email, events.SubjectRegisterExisting); n != 1 {
		t.Fatalf("register-existing notices = %d, want 1", n)
	}
	// The taken address kept its owner's password.
	if _, err := e.App.Accounts.Login(ctx, email, "another fine password 77", client); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("login with the second registration's password = %v, want ErrInvalidCredentials", err)
	}
}

func TestVerifyEmailTokenIsSingleUse(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	email := apitest.Email("verify")
	res, err := e.App.Accounts.Register(ctx, email, apitest.Password, "Ann", client)
	if err != nil {
		t.Fatal(err)
	}
	tok := e.OutboxToken(email, events.SubjectVerificationRequested)
	u, err := e.App.Accounts.VerifyEmail(ctx, tok, client)
	if err != nil || u.ID != res.User.ID || !u.Verified() {
		t.Fatalf("verify = %+v, %v; want the registered user, verified", u, err)
	}
	login(t, e, email, apitest.Password) // now allowed
	if _, err := e.App.Accounts.VerifyEmail(ctx, tok, client); !errors.Is(err, account.ErrInvalidToken) {
		t.Fatalf("second use = %v, want ErrInvalidToken", err)
	}
	if _, err := e.App.Accounts.VerifyEmail(ctx, "not-a-token", client); !errors.Is(err, account.ErrInvalidToken) {
		t.Fatalf("garbage token = %v, want ErrInvalidToken", err)
	}
}

func TestLoginAndAuthenticate(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, u, pair := newUser(t, e)
	if pair.User.ID != u.ID || pair.SessionID == "" || pair.ExpiresIn <= 0 || pair.MFARequired {
		t.Fatalf("pair = %+v", pair)
	}
	p := authenticate(t, e, pair.AccessToken)
	if p.UserID != u.ID || p.User.ID != u.ID || p.User.Email != email || p.SessionID != pair.SessionID ||
		!slices.Contains(p.AMR, "pwd") || !p.HasRole("user") || p.AuthTime.IsZero() {
		t.Fatalf("principal = %+v", p)
	}
	refused(t, e, "not.a.token", "garbage token")
	refused(t, e, pair.RefreshToken, "refresh token as access token")
}

func TestLoginUnknownAddressOrWrongPassword(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	if _, err := e.App.Accounts.Login(ctx, apitest.Email("nobody"), apitest.Password, client); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("unknown address = %v, want ErrInvalidCredentials", err)
	}
	email, _, _ := newUser(t, e)
	if _, err := e.App.Accounts.Login(ctx, email, "wrong "+apitest.Password, client); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("wrong password = %v, want ErrInvalidCredentials", err)
	}
}

// Refresh rotates the pair; replaying the rotated-away token (no grace here) is reuse
// and ends the session, so its successor is refused too.
func TestRefreshRotatesAndReuseEndsSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"REFRESH_REUSE_GRACE": "0s"})
	ctx := context.Background()
	_, u, p0 := newUser(t, e)
	p1, err := e.App.Accounts.Refresh(ctx, p0.RefreshToken, client)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if p1.RefreshToken == p0.RefreshToken || p1.AccessToken == "" || p1.SessionID != p0.SessionID || p1.User.ID != u.ID {
		t.Fatalf("rotated pair = %+v (old session %s)", p1, p0.SessionID)
	}
	if p := authenticate(t, e, p1.AccessToken); p.SessionID != p0.SessionID {
		t.Fatalf("new access token's session = %s", p.SessionID)
	}

	if _, err := e.App.Accounts.Refresh(ctx, p0.RefreshToken, client); !errors.Is(err, account.ErrRefreshTokenReused) {
		t.Fatalf("replayed old token = %v, want ErrRefreshTokenReused", err)
	}
	if _, err := e.App.Accounts.Refresh(ctx, p1.RefreshToken, client); !errors.Is(err, account.ErrInvalidRefreshToken) {
		t.Fatalf("successor after reuse = %v, want ErrInvalidRefreshToken", err)
	}
	refused(t, e, p1.AccessToken, "access token of a session ended by reuse")
	if _, err := e.App.Accounts.Refresh(ctx, "", client); !errors.Is(err, account.ErrInvalidRefreshToken) {
		t.Fatalf("empty token = %v, want ErrInvalidRefreshToken", err)
	}
}

// ChangePassword keeps the caller's session and ends every other one.
func TestChangePasswordEndsOtherSessions(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	email, _, mine := newUser(t, e)
	other := login(t, e, email, apitest.Password)
	p := authenticate(t, e, mine.AccessToken)
	authenticate(t, e, other.AccessToken)

	if err := e.App.Accounts.ChangePassword(ctx, p, "wrong "+apitest.Password, newPassword); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("wrong current password = %v, want ErrInvalidCredentials", err)
	}
	authenticate(t, e, other.AccessToken) // a refused change ends nothing

	if err := e.App.Accounts.ChangePassword(ctx, p, apitest.Password, newPassword); err != nil {
		t.Fatalf("change password: %v", err)
	}
	refused(t, e, other.AccessToken, "other session after a password change")
	if _, err := e.App.Accounts.Refresh(ctx, other.RefreshToken, client); !errors.Is(err, account.ErrInvalidRefreshToken) {
		t.Fatalf("other session's refresh = %v, want ErrInvalidRefreshToken", err)
	}
	authenticate(t, e, mine.AccessToken) // the caller's session goes on
	if _, err := e.App.Accounts.Refresh(ctx, mine.RefreshToken, client); err != nil {
		t.Fatalf("caller's refresh after the change: %v", err)
	}
	if _, err := e.App.Accounts.Login(ctx, email, apitest.Password, client); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("login with the old password = %v, want ErrInvalidCredentials", err)
	}
	login(t, e, email, newPassword)
}

// Logout ends the caller's session, and the one of the refresh token it is given when
// that is another of the caller's; the rest live on.
func TestLogout(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	email, _, s1 := newUser(t, e)
	s2, s3 := login(t, e, email, apitest.Password), login(t, e, email, apitest.Password)

	if err := e.App.Accounts.Logout(ctx, authenticate(t, e, s1.AccessToken), ""); err != nil {
		t.Fatalf("logout: %v", err)
	}
	refused(t, e, s1.AccessToken, "logged-out session")
	if _, err := e.App.Accounts.Refresh(ctx, s1.RefreshToken, client); !errors.Is(err, account.ErrInvalidRefreshToken) {
		t.Fatalf("refresh of a logged-out session = %v, want ErrInvalidRefreshToken", err)
	}
	authenticate(t, e, s2.AccessToken)
	authenticate(t, e, s3.AccessToken)

	if err := e.App.Accounts.Logout(ctx, authenticate(t, e, s2.AccessToken), s3.RefreshToken); err != nil {
		t.Fatalf("logout with a refresh token: %v", err)
	}
	refused(t, e, s2.AccessToken, "logged-out session")
	refused(t, e, s3.AccessToken, "session of the refresh token given to logout")
}

func TestLogoutAll(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	email, _, s1 := newUser(t, e)
	s2 := login(t, e, email, apitest.Password)
	_, _, stranger := newUser(t, e)
	p := authenticate(t, e, s1.AccessToken)
	if err := e.App.Accounts.LogoutAll(ctx, p); err != nil {
		t.Fatalf("logout all: %v", err)
	}
	refused(t, e, s1.AccessToken, "caller's session after logout-all")
	refused(t, e, s2.AccessToken, "other session after logout-all")
	if list, err := e.App.Accounts.ListSessions(ctx, p); err != nil || len(list) != 0 {
		t.Fatalf("sessions after logout-all = %+v, %v; want none", list, err)
	}
	authenticate(t, e, stranger.AccessToken) // another user's sessions are untouched
}

// ListSessions lists only the caller's sessions; RevokeSession finds only the caller's,
// so another user's session id is not found and that session lives on.
func TestListAndRevokeSessions(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	email, u, a1 := newUser(t, e)
	a2 := login(t, e, email, apitest.Password)
	_, _, b := newUser(t, e)
	pa, pb := authenticate(t, e, a1.AccessToken), authenticate(t, e, b.AccessToken)

	list, err := e.App.Accounts.ListSessions(ctx, pa)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range list {
		ids[s.ID] = s.Current
		if s.UserID != u.ID || s.IP != client.IP || s.UserAgent != client.UserAgent {
			t.Fatalf("session %+v", s)
		}
	}
	if len(list) != 2 || !ids[a1.SessionID] || ids[a2.SessionID] {
		t.Fatalf("sessions = %+v; want %s (current) and %s", list, a1.SessionID, a2.SessionID)
	}
	if _, ok := ids[a2.SessionID]; !ok {
		t.Fatalf("sessions = %+v; missing %s", list, a2.SessionID)
	}

	if err := e.App.Accounts.RevokeSession(ctx, pa, pb.SessionID); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("revoke another user's session = %v, want ErrNotFound", err)
	}
	authenticate(t, e, b.AccessToken)
	if err := e.App.Accounts.RevokeSession(ctx, pa, "not-a-uuid"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("revoke a malformed id = %v, want ErrNotFound", err)
	}

	if err := e.App.Accounts.RevokeSession(ctx, pa, a2.SessionID); err != nil {
		t.Fatalf("revoke own session: %v", err)
	}
	refused(t, e, a2.AccessToken, "revoked session")
	authenticate(t, e, a1.AccessToken)
	if list, err := e.App.Accounts.ListSessions(ctx, pa); err != nil || len(list) != 1 || list[0].ID != a1.SessionID {
		t.Fatalf("sessions after revoke = %+v, %v", list, err)
	}
	if err := e.App.Accounts.RevokeSession(ctx, pa, a2.SessionID); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("revoke twice = %v, want ErrNotFound", err)
	}
}

func TestUpdateName(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	ctx := context.Background()
	_, user, pair := newUser(t, e)
	// Drop the tombstone of the account's last write, so this read fills the user
	// cache and the next one sees the new name only if UpdateName invalidates it.
	e.ForgetCachedUser(user.ID)
	p := authenticate(t, e, pair.AccessToken)
	u, err := e.App.Accounts.UpdateName(ctx, p, "  Grace Hopper  ")
	if err != nil || u.Name != "Grace Hopper" {
		t.Fatalf("update name = %+v, %v; want the trimmed name", u, err)
	}
	if got := authenticate(t, e, pair.AccessToken).User.Name; got != "Grace Hopper" {
		t.Fatalf("principal's name after update = %q", got)
	}
	for _, bad := range []string{"line\nbreak", "nul\x00", "bell\a", strings.Repeat("é", 201), "bad \xff utf-8"} {
		if u, err := e.App.Accounts.UpdateName(ctx, p, bad); !errors.Is(err, account.ErrInvalidName) {
			t.Fatalf("UpdateName(%q) = %+v, %v; want ErrInvalidName", bad, u, err)
		}
	}
	if got := authenticate(t, e, pair.AccessToken).User.Name; got != "Grace Hopper" {
		t.Fatalf("name after refused updates = %q", got)
	}
	if u, err := e.App.Accounts.UpdateName(ctx, p, strings.Repeat("é", 200)); err != nil || u.Name != strings.Repeat("é", 200) {
		t.Fatalf("200-character name = %q, %v", u.Name, err)
	}
}
