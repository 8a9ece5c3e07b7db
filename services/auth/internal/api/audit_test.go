package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// auditPayloads returns the payloads of the outbox events of subject about userID.
func auditPayloads(t *testing.T, e *apitest.Env, subject, userID string) []map[string]any {
	t.Helper()
	var rows [][]byte
	err := e.App.DB.NewRaw(`SELECT payload->'payload' FROM outbox WHERE subject = ? AND payload->>'user_id' = ? ORDER BY id`,
		subject, userID).Scan(context.Background(), &rows)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Every security event reaches the outbox for the audit log, never with a secret.
func TestAuditEventsOfSessions(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"REFRESH_REUSE_GRACE": "0s"})
	email, pair := e.NewUser(t)
	uid := pair.User.ID

	ok := auditPayloads(t, e, "auth.user.login_succeeded", uid)
	if len(ok) != 1 || ok[0]["session_id"] == "" || ok[0]["ip"] == "" {
		t.Fatalf("login_succeeded events = %v", ok)
	}

	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": email, "password": "not the password at all"}, ""),
		http.StatusUnauthorized, "invalid_credentials")
	failed := auditPayloads(t, e, "auth.user.login_failed", uid)
	if len(failed) != 1 || failed[0]["reason"] != "invalid_credentials" {
		t.Fatalf("login_failed events = %v", failed)
	}

	// An unknown address is audited by a hash of it, never in clear.
	unknown := apitest.Email("nobody")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/login", map[string]string{"email": unknown, "password": apitest.Password}, ""),
		http.StatusUnauthorized, "invalid_credentials")
	var n int
	if err := e.App.DB.NewRaw(`SELECT count(*) FROM outbox WHERE subject = 'auth.user.login_failed' AND payload::text LIKE ?`,
		"%"+unknown+"%").Scan(context.Background(), &n); err != nil || n != 0 {
		t.Fatalf("an unknown address is in clear in %d login_failed events (%v)", n, err)
	}

	next := e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, "")
	apitest.Expect(t, next, http.StatusOK, "")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": pair.RefreshToken}, ""),
		http.StatusUnauthorized, "refresh_token_reused")
	reused := auditPayloads(t, e, "auth.session.refresh_reused", uid)
	if len(reused) != 1 || reused[0]["session_id"] != ok[0]["session_id"] {
		t.Fatalf("refresh_reused events = %v", reused)
	}

	second := e.Login(email, apitest.Password)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout", nil, second.AccessToken), http.StatusNoContent, "")
	if out := auditPayloads(t, e, "auth.session.logged_out", uid); len(out) != 1 {
		t.Fatalf("logged_out events = %v", out)
	}
	third := e.Login(email, apitest.Password)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/logout-all", nil, third.AccessToken), http.StatusNoContent, "")
	if out := auditPayloads(t, e, "auth.session.logged_out_all", uid); len(out) != 1 {
		t.Fatalf("logged_out_all events = %v", out)
	}

	var all [][]byte
	if err := e.App.DB.NewRaw(`SELECT payload FROM outbox WHERE payload->>'user_id' = ?`, uid).Scan(context.Background(), &all); err != nil {
		t.Fatal(err)
	}
	for _, row := range all {
		for _, secret := range []string{pair.RefreshToken, pair.AccessToken, apitest.Password} {
			if strings.Contains(string(row), secret) {
				t.Fatalf("an outbox row holds a secret: %s", row)
			}
		}
	}
}
