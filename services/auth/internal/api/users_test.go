package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

func flowMe(t testing.TB, e *apitest.Env, at string) apitest.User {
	t.Helper()
	r := flowFor(t, e).Do(http.MethodGet, "/v1/users/me", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	flowCheckUserShape(t, r.Body)
	var u apitest.User
	r.JSON(t, &u)
	return u
}

func TestUsersMeGet(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("me")
	reg := e.Register(email)
	p := e.Login(email, apitest.Password)

	u := flowMe(t, e, p.AccessToken)
	if u.ID != reg.ID || u.Email != email || u.Name != "Test" || !u.EmailVerified || u.MFAEnabled ||
		!slices.Equal(u.Roles, []string{"user"}) || u.CreatedAt != reg.CreatedAt {
		t.Fatalf("me = %+v, registered %+v", u, reg)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, ""), http.StatusUnauthorized, "")
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me", nil, p.RefreshToken), http.StatusUnauthorized, "")
}

func TestUsersMePatchName(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)

	r := e.Do(http.MethodPatch, "/v1/users/me", map[string]string{"name": "Ada Lovelace"}, p.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	flowCheckUserShape(t, r.Body)
	var u apitest.User
	r.JSON(t, &u)
	if u.Name != "Ada Lovelace" || u.ID != p.User.ID {
		t.Fatalf("patched user = %+v", u)
	}
	if got := flowMe(t, e, p.AccessToken).Name; got != "Ada Lovelace" {
		t.Fatalf("GET after PATCH: name %q", got)
	}
	var stored string
	flowScan(t, e, &stored, "SELECT name FROM users WHERE id = ?", p.User.ID)
	if stored != "Ada Lovelace" {
		t.Fatalf("stored name %q", stored)
	}

	// 200 characters (not bytes) is the limit.
	long := strings.Repeat("é", 200)
	r = e.Do(http.MethodPatch, "/v1/users/me", map[string]string{"name": long}, p.AccessToken)
	apitest.Expect(t, r, http.StatusOK, "")
	if got := flowMe(t, e, p.AccessToken).Name; got != long {
		t.Fatalf("200-character name stored as %q", got)
	}
	apitest.Expect(t, e.Do(http.MethodPatch, "/v1/users/me", map[string]string{"name": "x"}, ""), http.StatusUnauthorized, "")
}

func TestUsersMePatchInvalidName(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, p := e.NewUser(t)
	apitest.Expect(t, e.Do(http.MethodPatch, "/v1/users/me", map[string]string{"name": "Kept Name"}, p.AccessToken), http.StatusOK, "")

	for name, value := range map[string]string{
		"201 characters": strings.Repeat("a", 201),
		"201 accented":   strings.Repeat("é", 201),
		"newline":        "Mallory\nAdmin",
		"carriage ret":   "Mallory\rX",
		"tab":            "Mallory\tX",
		"NUL":            "Mallory\x00",
		"escape":         "Mallory\x1b[31m",
		"DEL":            "Mallory\x7f",
		"C1 control":     "Mal\u0085lory",
	} {
		r := e.Do(http.MethodPatch, "/v1/users/me", map[string]string{"name": value}, p.AccessToken)
		if r.Status != http.StatusBadRequest || r.Code() != "invalid_name" {
			t.Errorf("%s: got %d %s, want 400 invalid_name", name, r.Status, r.Body)
		}
	}
	if got := flowMe(t, e, p.AccessToken).Name; got != "Kept Name" {
		t.Fatalf("a refused PATCH changed the name to %q", got)
	}
}

func TestUsersMePatchIgnoresProtectedFields(t *testing.T) {
	t.Parallel()
	// Without required verification an unverified account can sign in, so a body that
	// could set email_verified would show.
	e := apitest.Start(t, map[string]string{"EMAIL_VERIFICATION_REQUIRED": "false"})
	email := apitest.Email("mass-assign")
	r := flowRegister(e, email, apitest.Password, "Original")
	apitest.Expect(t, r, http.StatusCreated, "")
	var before apitest.User
	r.JSON(t, &before)
	p := e.Login(email, apitest.Password)

	bodies := []struct {
		name string
		body string
		want string // expected name afterwards
	}{
		{"protected fields only",
			`{"roles":["admin"],"email_verified":true,"email":"x@y.z","id":"` + uuid.NewString() + `"}`, "Original"},
		{"with a name",
			`{"name":"Renamed","roles":["admin"],"email_verified":true,"email":"x@y.z","id":"` + uuid.NewString() + `","created_at":"2000-01-01T00:00:00Z","mfa_enabled":true}`,
			"Renamed"},
		{"other key cases",
			`{"Roles":["admin"],"ROLES":["admin"],"Email_Verified":true,"EMAIL":"x@y.z","Id":"` + uuid.NewString() + `","role":"admin","is_admin":true}`,
			"Renamed"},
	}
	for _, b := range bodies {
		r := e.Do(http.MethodPatch, "/v1/users/me", b.body, p.AccessToken)
		apitest.Expect(t, r, http.StatusOK, "")
		var u apitest.User
		r.JSON(t, &u)
		for _, got := range []apitest.User{u, flowMe(t, e, p.AccessToken)} {
			if got.ID != before.ID || got.Email != email || got.EmailVerified || got.MFAEnabled ||
				!slices.Equal(got.Roles, []string{"user"}) || got.CreatedAt != before.CreatedAt || got.Name != b.want {
				t.Fatalf("%s: user = %+v, before %+v", b.name, got, before)
			}
		}
	}

	var row struct {
		Email    string `bun:"email"`
		Verified bool   `bun:"verified"`
		MFA      bool   `bun:"mfa_enabled"`
		Count    int    `bun:"n"`
	}
	flowScan(t, e, &row, `SELECT email, email_verified_at IS NOT NULL AS verified, mfa_enabled,
		(SELECT count(*) FROM users WHERE email = 'x@y.z') AS n FROM users WHERE id = ?`, before.ID)
	if row.Email != email || row.Verified || row.MFA || row.Count != 0 {
		t.Fatalf("stored row changed: %+v", row)
	}
	if got := flowDBRoles(t, e, before.ID); got != "user" {
		t.Fatalf("stored roles %q", got)
	}
	next := flowRefreshOK(t, e, p.RefreshToken)
	if got := flowClaimStrings(t, next.AccessToken, "roles"); !slices.Equal(got, []string{"user"}) {
		t.Fatalf("token roles after the PATCHes = %v", got)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/auth/verify?role=admin", nil, next.AccessToken), http.StatusForbidden, "forbidden")
}

type flowSessionList struct {
	Sessions []struct {
		ID         string `json:"id"`
		CreatedAt  string `json:"created_at"`
		LastUsedAt string `json:"last_used_at"`
		IP         string `json:"ip"`
		UserAgent  string `json:"user_agent"`
		Current    bool   `json:"current"`
	} `json:"sessions"`
}

func flowSessions(t testing.TB, e *apitest.Env, at string) (flowSessionList, []byte) {
	t.Helper()
	r := flowFor(t, e).Do(http.MethodGet, "/v1/users/me/sessions", nil, at)
	apitest.Expect(t, r, http.StatusOK, "")
	var l flowSessionList
	r.JSON(t, &l)
	return l, r.Body
}

func TestUsersMeSessionsList(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email := apitest.Email("sessions")
	e.Register(email)
	s1 := flowLoginUA(t, e, email, apitest.Password, "flow-test-agent/1")
	s2 := flowLoginUA(t, e, email, apitest.Password, "flow-test-agent/2")
	_, stranger := e.NewUser(t)

	l, raw := flowSessions(t, e, s2.AccessToken)
	var shape struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	if got := flowKeys(t, raw); !slices.Equal(got, []string{"sessions"}) {
		t.Fatalf("sessions answer keys %v", got)
	}
	if len(shape.Sessions) != 2 {
		t.Fatalf("%d sessions, want 2: %s", len(shape.Sessions), raw)
	}
	want := []string{"created_at", "current", "id", "ip", "last_used_at", "user_agent"}
	for _, s := range shape.Sessions {
		if got := flowKeys(t, s); !slices.Equal(got, want) {
			t.Fatalf("session keys %v, want %v", got, want)
		}
		if strings.Contains(strings.ToLower(string(s)), "rt_") {
			t.Fatalf("a session view holds a refresh token: %s", s)
		}
	}
	current := 0
	byID := map[string]string{flowSID(t, s1.AccessToken): "flow-test-agent/1", flowSID(t, s2.AccessToken): "flow-test-agent/2"}
	for _, s := range l.Sessions {
		ua, ok := byID[s.ID]
		if !ok {
			t.Fatalf("listed session %s is not one of the caller's", s.ID)
		}
		if s.UserAgent != ua || s.IP != "127.0.0.1" {
			t.Fatalf("session %s: ua %q ip %q, want %q 127.0.0.1", s.ID, s.UserAgent, s.IP, ua)
		}
		for _, ts := range []string{s.CreatedAt, s.LastUsedAt} {
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || time.Since(at) > time.Minute || time.Until(at) > time.Minute {
				t.Fatalf("session %s timestamp %q: %v", s.ID, ts, err)
			}
		}
		if s.Current {
			current++
			if s.ID != flowSID(t, s2.AccessToken) {
				t.Fatalf("current session %s, want %s", s.ID, flowSID(t, s2.AccessToken))
			}
		}
	}
	if current != 1 {
		t.Fatalf("%d current sessions, want 1", current)
	}
	// The other caller sees only their own.
	if l, _ := flowSessions(t, e, stranger.AccessToken); len(l.Sessions) != 1 || l.Sessions[0].ID != flowSID(t, stranger.AccessToken) {
		t.Fatalf("stranger's sessions: %+v", l)
	}
	apitest.Expect(t, e.Do(http.MethodGet, "/v1/users/me/sessions", nil, ""), http.StatusUnauthorized, "")
}

func TestUsersMeDeleteSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	email, s1 := e.NewUser(t)
	s2 := e.Login(email, apitest.Password)
	sid2 := flowSID(t, s2.AccessToken)

	r := e.Do(http.MethodDelete, "/v1/users/me/sessions/"+sid2, nil, s1.AccessToken)
	apitest.Expect(t, r, http.StatusNoContent, "")
	l, _ := flowSessions(t, e, s1.AccessToken)
	if len(l.Sessions) != 1 || l.Sessions[0].ID != flowSID(t, s1.AccessToken) || !l.Sessions[0].Current {
		t.Fatalf("sessions after DELETE: %+v", l)
	}
	flowExpectATDead(t, e, s2.AccessToken)
	flowExpectRTDead(t, e, s2.RefreshToken)
	flowExpectATAlive(t, e, s1.AccessToken)

	for name, id := range map[string]string{
		"already deleted": sid2,
		"unknown uuid":    uuid.NewString(),
		"not a uuid":      "not-a-uuid",
		"sql":             "1%27%20OR%20%271%27=%271",
	} {
		r := e.Do(http.MethodDelete, "/v1/users/me/sessions/"+id, nil, s1.AccessToken)
		if r.Status != http.StatusNotFound {
			t.Fatalf("%s: got %d %s, want 404", name, r.Status, r.Body)
		}
	}
	apitest.Expect(t, e.Do(http.MethodDelete, "/v1/users/me/sessions/"+flowSID(t, s1.AccessToken), nil, ""), http.StatusUnauthorized, "")
	flowExpectATAlive(t, e, s1.AccessToken)
}

func TestUsersMeCannotDeleteAnotherUsersSession(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	_, a := e.NewUser(t)
	_, b := e.NewUser(t)

	r := e.Do(http.MethodDelete, "/v1/users/me/sessions/"+flowSID(t, b.AccessToken), nil, a.AccessToken)
	apitest.Expect(t, r, http.StatusNotFound, "")
	flowExpectATAlive(t, e, b.AccessToken)
	b2 := flowRefreshOK(t, e, b.RefreshToken)
	flowExpectATAlive(t, e, b2.AccessToken)
	if l, _ := flowSessions(t, e, b2.AccessToken); len(l.Sessions) != 1 {
		t.Fatalf("B's sessions after A's DELETE: %+v", l)
	}
	flowExpectATAlive(t, e, a.AccessToken)
}
