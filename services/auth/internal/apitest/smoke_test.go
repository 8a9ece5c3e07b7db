package apitest

import (
	"net/http"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	DropDatabase()
	os.Exit(code)
}

// TestHarness proves the harness drives the real service end to end.
func TestHarness(t *testing.T) {
	e := Start(t, nil)
	email, pair := e.NewUser(t)
	if pair.User.Email != email || !pair.User.EmailVerified {
		t.Fatalf("user = %+v", pair.User)
	}
	r := e.Do(http.MethodGet, "/v1/auth/verify", nil, pair.AccessToken)
	Expect(t, r, http.StatusOK, "")
	if r.Header.Get("X-Auth-Email") != email {
		t.Fatalf("X-Auth-Email = %q", r.Header.Get("X-Auth-Email"))
	}
}
