package api_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/services/auth/internal/account"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// Forgot-password and resend answer 202 once the request is stored (email_requests); a
// processor sends what it asks for afterwards (issue 14, item 13). These tests follow
// requests through that processor on the real PostgreSQL and Redis.

func erRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "er-" + hex.EncodeToString(b[:])
}

func erCount(t *testing.T, e *apitest.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.App.DB.NewRaw(query, args...).Scan(context.Background(), &n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// erWaitGone waits until no request is left in email_requests, up to 30 s.
func erWaitGone(t *testing.T, e *apitest.Env) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for erCount(t, e, "SELECT count(*) FROM email_requests") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("email requests still waiting after 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The email goes out once for an address that should get one, and nothing for one that
// should not, each request processed (its row gone) and its event carrying the
// request's X-Request-Id; the reset link works.
func TestEmailRequestsSendOnceForKnownNothingForOthers(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, nil)
	pending := apitest.Email("er-pending") // registered, not verified
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": pending, "password": apitest.Password}, ""), http.StatusAccepted, "")
	verified := apitest.Email("er-verified")
	e.Register(verified)
	unknown := apitest.Email("er-unknown")

	cases := []struct {
		name, route, email, subject string
		before, after               int // the address's events of subject
	}{
		{"forgot, known", "/v1/auth/password/forgot", verified, account.SubjectPasswordResetRequest, 0, 1},
		{"forgot, unknown", "/v1/auth/password/forgot", unknown, account.SubjectPasswordResetRequest, 0, 0},
		{"resend, unverified", "/v1/auth/email/resend", strings.ToUpper(pending), account.SubjectVerificationRequested, 1, 2},
		{"resend, verified", "/v1/auth/email/resend", verified, account.SubjectVerificationRequested, 1, 1},
		{"resend, unknown", "/v1/auth/email/resend", unknown, account.SubjectVerificationRequested, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := strings.ToLower(tc.email)
			if n := e.OutboxCount(addr, tc.subject); n != tc.before {
				t.Fatalf("%d %s events before, want %d", n, tc.subject, tc.before)
			}
			rid := erRequestID()
			r := e.Request(http.MethodPost, tc.route, map[string]string{"email": tc.email}, http.Header{"X-Request-Id": {rid}})
			apitest.Expect(t, r, http.StatusAccepted, "")
			e.WaitEmailRequests()
			if n := erCount(t, e, "SELECT count(*) FROM email_requests WHERE request_id = ?", rid); n != 0 {
				t.Fatalf("the request is still waiting (%d rows)", n)
			}
			if n := e.OutboxCount(addr, tc.subject); n != tc.after {
				t.Fatalf("%d %s events after the request, want %d", n, tc.subject, tc.after)
			}
			if tc.after > tc.before {
				if env := e.OutboxEnvelope(addr, tc.subject); env.RequestID != rid {
					t.Fatalf("the event's request_id %q, want the request's %q", env.RequestID, rid)
				}
			}
		})
	}
	tok := e.OutboxToken(verified, account.SubjectPasswordResetRequest)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": "a new passphrase for er 77"}, ""), http.StatusNoContent, "")
}

// A replica that stopped right after answering leaves its requests in email_requests,
// the address sealed (never in clear). Once the takeover time has passed, two other
// replicas take them over, in parallel: every known address gets its email exactly once,
// an unknown one nothing, and the links work with the keys the replicas share.
func TestEmailRequestsOfAStoppedReplicaAreSentOnceByOthers(t *testing.T) {
	t.Parallel()
	var key [32]byte
	_, _ = rand.Read(key[:])
	env := map[string]string{
		"DATABASE_URL": apitest.NewDatabase(t),
		"EVENT_KEYS":   "er-" + erRequestID()[3:] + ":" + base64.StdEncoding.EncodeToString(key[:]),
	}
	stopped := apitest.StartWithoutEmailProcessor(t, env)
	const n = 8
	var known, unknown []string
	for range n {
		k, u := apitest.Email("er-takeover-known"), apitest.Email("er-takeover-unknown")
		stopped.Register(k)
		known, unknown = append(known, k), append(unknown, u)
	}
	for i := range n {
		for _, addr := range []string{known[i], unknown[i]} {
			apitest.Expect(t, stopped.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": addr}, ""),
				http.StatusAccepted, "")
		}
	}
	if got := erCount(t, stopped, "SELECT count(*) FROM email_requests"); got != 2*n {
		t.Fatalf("%d requests waiting, want %d", got, 2*n)
	}
	for _, addr := range append(known, unknown...) {
		local, _, _ := strings.Cut(addr, "@")
		if got := erCount(t, stopped, "SELECT count(*) FROM email_requests r WHERE strpos(row_to_json(r)::text, ?) > 0", local); got != 0 {
			t.Fatalf("a request row holds %s in clear", addr)
		}
		if got := stopped.OutboxCount(addr, account.SubjectPasswordResetRequest); got != 0 {
			t.Fatalf("%d reset events for %s before any processor ran", got, addr)
		}
	}

	// Two replicas with the same keys; the takeover time passes (moved, not waited for).
	a, b := apitest.Start(t, env), apitest.Start(t, env)
	if _, err := a.App.DB.NewRaw("UPDATE email_requests SET next_attempt_at = now()").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	erWaitGone(t, a)
	for i := range n {
		if got := a.OutboxCount(known[i], account.SubjectPasswordResetRequest); got != 1 {
			t.Fatalf("%d reset events for %s, want 1", got, known[i])
		}
		if got := a.OutboxCount(unknown[i], account.SubjectPasswordResetRequest); got != 0 {
			t.Fatalf("%d reset events for the unknown %s, want 0", got, unknown[i])
		}
	}
	tok := b.OutboxToken(known[0], account.SubjectPasswordResetRequest)
	apitest.Expect(t, b.Do(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": "a new passphrase for er 78"}, ""), http.StatusNoContent, "")
}
