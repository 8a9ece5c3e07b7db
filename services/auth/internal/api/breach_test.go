package api_test

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// breachAPI is a local fake of the k-anonymity range API that knows one breached
// password, speaking the real protocol over a real socket.
func breachAPI(t *testing.T, breached string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	sum := sha1.Sum([]byte(breached))
	full := strings.ToUpper(hex.EncodeToString(sum[:]))
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		prefix := strings.TrimPrefix(r.URL.Path, "/range/")
		if len(prefix) != 5 {
			http.Error(w, "bad prefix", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "0018A45C4D1DEF81644B54AB7F969B88D65:0\r\n")
		if prefix == full[:5] {
			fmt.Fprintf(w, "%s:42\r\n", full[5:])
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestBreachCheckRefusesBreachedPasswords(t *testing.T) {
	t.Parallel()
	const leaked = "tangerine submarine orchestra"
	srv, calls := breachAPI(t, leaked)
	e := apitest.Start(t, map[string]string{"PASSWORD_BREACH_CHECK_URL": srv.URL})

	r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": apitest.Email("breach"), "password": leaked}, "")
	apitest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": apitest.Email("breach"), "password": apitest.Password}, ""), http.StatusAccepted, "")
	if calls.Load() != 2 {
		t.Fatalf("breach API called %d times, want 2", calls.Load())
	}

	// Password change goes through the same check.
	_, pair := e.NewUser(t)
	r = e.Do(http.MethodPost, "/v1/users/me/password",
		map[string]string{"current_password": apitest.Password, "new_password": leaked}, pair.AccessToken)
	apitest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password")
}

func TestBreachCheckDown(t *testing.T) {
	t.Parallel()
	srv, _ := breachAPI(t, "whatever")
	url := srv.URL
	srv.Close() // nothing answers there any more

	closed := apitest.Start(t, map[string]string{"PASSWORD_BREACH_CHECK_URL": url})
	apitest.Expect(t, closed.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": apitest.Email("breach-down"), "password": apitest.Password}, ""), http.StatusServiceUnavailable, "unavailable")

	open := apitest.Start(t, map[string]string{"PASSWORD_BREACH_CHECK_URL": url, "PASSWORD_BREACH_CHECK_FAIL_CLOSED": "false"})
	apitest.Expect(t, open.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": apitest.Email("breach-down"), "password": apitest.Password}, ""), http.StatusAccepted, "")
}

func TestPasswordMinStrength(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, map[string]string{"PASSWORD_MIN_STRENGTH": "3"})
	r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": apitest.Email("strength"), "password": "qwertyuiop1"}, "")
	apitest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": apitest.Email("strength"), "password": apitest.Password}, ""), http.StatusAccepted, "")
}
