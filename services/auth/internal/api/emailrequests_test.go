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

	"github.com/talentforge/auth/pkg/events"
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
		{"forgot, known", "/v1/auth/password/forgot", verified, events.SubjectPasswordResetRequested, 0, 1},
		{"forgot, unknown", "/v1/auth/password/forgot", unknown, events.SubjectPasswordResetRequested, 0, 0},
		{"resend, unverified", "/v1/auth/email/resend", strings.ToUpper(pending), events.SubjectVerificationRequested, 1, 2},
		{"resend, verified", "/v1/auth/email/resend", verified, events.SubjectVerificationRequested, 1, 1},
		{"resend, unknown", "/v1/auth/email/resend", unknown, events.SubjectVerificationRequested, 0, 0},
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
	tok := e.OutboxToken(verified, events.SubjectPasswordResetRequested)
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": "a new passphrase for er 77"}, ""), http.StatusNoContent, "")
}

// A replica that stopped right after answering leaves its requests in email_requests,
// the address sealed (never in clear). Once the takeover time has passed, two other
// replicas take them over, in parallel: every known address gets its email exactly once,
// an unknown one nothing, and the links work with the keys the replicas share.
func TestEmailRequestsOfAStoppedReplicaAreSentOnceByOthers(t *testing.T) {
	t.Parallel()
	env := erSharedEnv(t)
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
		if got := stopped.OutboxCount(addr, events.SubjectPasswordResetRequested); got != 0 {
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
		if got := a.OutboxCount(known[i], events.SubjectPasswordResetRequested); got != 1 {
			t.Fatalf("%d reset events for %s, want 1", got, known[i])
		}
		if got := a.OutboxCount(unknown[i], events.SubjectPasswordResetRequested); got != 0 {
			t.Fatalf("%d reset events for the unknown %s, want 0", got, unknown[i])
		}
	}
	tok := b.OutboxToken(known[0], events.SubjectPasswordResetRequested)
	apitest.Expect(t, b.Do(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": "a new passphrase for er 78"}, ""), http.StatusNoContent, "")
}

func erExec(t *testing.T, e *apitest.Env, query string, args ...any) {
	t.Helper()
	if _, err := e.App.DB.NewRaw(query, args...).Exec(context.Background()); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// erNow is the database's now(), the clock next_attempt_at and created_at are set by.
func erNow(t *testing.T, e *apitest.Env) time.Time {
	t.Helper()
	var now time.Time
	if err := e.App.DB.NewRaw("SELECT now()").Scan(context.Background(), &now); err != nil {
		t.Fatal(err)
	}
	return now
}

// erForgot asks for a reset link for email and returns the request's X-Request-Id.
func erForgot(t *testing.T, e *apitest.Env, email string) string {
	t.Helper()
	rid := erRequestID()
	apitest.Expect(t, e.Request(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email},
		http.Header{"X-Request-Id": {rid}}), http.StatusAccepted, "")
	return rid
}

// erResetTokens counts the password-reset tokens of the account of email.
func erResetTokens(t *testing.T, e *apitest.Env, email string) int {
	t.Helper()
	return erCount(t, e, `SELECT count(*) FROM one_time_tokens o JOIN users u ON u.id = o.user_id
		WHERE u.email = ? AND o.purpose = 'password_reset'`, email)
}

const (
	erFailures = "auth_email_request_failures_total"
	erExpired  = "auth_email_requests_expired_total"
	erPending  = "auth_email_requests_pending"
	erOldest   = "auth_email_requests_oldest_pending_age_seconds"
	erSent     = `auth_email_requests_total{kind="forgot",outcome="sent"}`
)

// A failed attempt (here: the address is sealed under an EVENT_KEYS key the processing
// replica lacks) leaves the request in email_requests, attempts + 1 and next_attempt_at
// put off by 1 s doubling up to 5 min from the database's now(), counted in
// auth_email_request_failures_total, with no token and no event written; it is not
// claimed again before it is due. Once a replica with the key processes it, the email
// is written exactly once. Every attempt is a direct ProcessDue call, no processor runs.
func TestEmailRequestFailedAttemptIsRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := apitest.NewDatabase(t)
	// Each replica has a random event key of its own (apitest.Start).
	sealer := apitest.StartWithoutEmailProcessor(t, map[string]string{"DATABASE_URL": db})
	lacking := apitest.StartWithoutEmailProcessor(t, map[string]string{"DATABASE_URL": db})
	addr := apitest.Email("er-retry")
	sealer.Register(addr)
	rid := erForgot(t, sealer, addr)

	state := func() (attempts int, next time.Time) {
		t.Helper()
		err := sealer.App.DB.NewRaw("SELECT attempts, next_attempt_at FROM email_requests WHERE request_id = ?", rid).
			Scan(ctx, &attempts, &next)
		if err != nil {
			t.Fatalf("the request is gone: %v", err)
		}
		return attempts, next
	}
	// fail makes the request due, lets the replica without the key try it and checks
	// the attempt failed and put the request off by delay.
	fail := func(attempts int, delay time.Duration) {
		t.Helper()
		erExec(t, sealer, "UPDATE email_requests SET attempts = ?, next_attempt_at = now() WHERE request_id = ?", attempts, rid)
		before := scrape(t, lacking)
		t0 := erNow(t, lacking)
		if n := lacking.App.Emails.ProcessDue(ctx, lacking.App.Accounts); n != 0 {
			t.Fatalf("a replica without the key processed %d requests", n)
		}
		t1 := erNow(t, lacking)
		got, next := state()
		if got != attempts+1 {
			t.Fatalf("attempts %d after a failed attempt, want %d", got, attempts+1)
		}
		if next.Before(t0.Add(delay)) || next.After(t1.Add(delay)) {
			t.Fatalf("after attempt %d next_attempt_at is %v, want now() + %v, in [%v, %v]",
				attempts+1, next, delay, t0.Add(delay), t1.Add(delay))
		}
		expectDelta(t, before, scrape(t, lacking), map[string]float64{erFailures: 1, erSent: 0})
	}
	fail(0, time.Second)
	fail(1, 2*time.Second)
	fail(2, 4*time.Second)
	fail(8, 256*time.Second)
	// Not due yet (256 s off): no replica claims it, nothing fails.
	before := scrape(t, lacking)
	for _, e := range []*apitest.Env{lacking, sealer} {
		if n := e.App.Emails.ProcessDue(ctx, e.App.Accounts); n != 0 {
			t.Fatalf("%d requests processed before they were due", n)
		}
	}
	if got, _ := state(); got != 9 {
		t.Fatalf("attempts %d after an attempt before the request was due, want 9", got)
	}
	expectDelta(t, before, scrape(t, lacking), map[string]float64{erFailures: 0})
	fail(9, 5*time.Minute)  // 512 s, at most 5 min
	fail(30, 5*time.Minute) // 2^30 s
	if n := sealer.OutboxCount(addr, events.SubjectPasswordResetRequested); n != 0 {
		t.Fatalf("%d reset events written by failed attempts", n)
	}
	if n := erResetTokens(t, sealer, addr); n != 0 {
		t.Fatalf("%d reset tokens written by failed attempts", n)
	}

	// The replica with the key: the email once, the request gone.
	erExec(t, sealer, "UPDATE email_requests SET next_attempt_at = now()")
	before = scrape(t, sealer)
	if n := sealer.App.Emails.ProcessDue(ctx, sealer.App.Accounts); n != 1 {
		t.Fatalf("the replica with the key processed %d requests, want 1", n)
	}
	erExec(t, sealer, "UPDATE email_requests SET next_attempt_at = now()")
	for _, e := range []*apitest.Env{sealer, lacking} {
		if n := e.App.Emails.ProcessDue(ctx, e.App.Accounts); n != 0 {
			t.Fatalf("%d requests processed after the only one was", n)
		}
	}
	expectDelta(t, before, scrape(t, sealer), map[string]float64{erSent: 1, erFailures: 0})
	if n := erCount(t, sealer, "SELECT count(*) FROM email_requests"); n != 0 {
		t.Fatalf("%d requests left", n)
	}
	if n := sealer.OutboxCount(addr, events.SubjectPasswordResetRequested); n != 1 {
		t.Fatalf("%d reset events, want 1", n)
	}
	if n := erResetTokens(t, sealer, addr); n != 1 {
		t.Fatalf("%d reset tokens, want 1", n)
	}
	tok := sealer.OutboxToken(addr, events.SubjectPasswordResetRequested)
	apitest.Expect(t, sealer.Do(http.MethodPost, "/v1/auth/password/reset",
		map[string]string{"token": tok, "password": "a new passphrase for er 79"}, ""), http.StatusNoContent, "")
}

// erAgeRows stores a due forgot-password request for old, accepted just over the
// maximum age (24 h) ago, and one for young, accepted just under it, through stopped,
// and returns their request ids.
func erAgeRows(t *testing.T, stopped *apitest.Env, old, young string) (string, string) {
	t.Helper()
	stopped.Register(old)
	stopped.Register(young)
	oldID, youngID := erForgot(t, stopped, old), erForgot(t, stopped, young)
	erExec(t, stopped, "UPDATE email_requests SET created_at = now() - interval '24 hours 1 second', next_attempt_at = now() WHERE request_id = ?", oldID)
	erExec(t, stopped, "UPDATE email_requests SET created_at = now() - interval '23 hours 59 minutes', next_attempt_at = now() WHERE request_id = ?", youngID)
	return oldID, youngID
}

// erCheckAged checks that old got nothing and young its reset link.
func erCheckAged(t *testing.T, e *apitest.Env, old, young string) {
	t.Helper()
	if n := e.OutboxCount(old, events.SubjectPasswordResetRequested); n != 0 {
		t.Errorf("%d reset events for the request older than the maximum age, want 0", n)
	}
	if n := erResetTokens(t, e, old); n != 0 {
		t.Errorf("%d reset tokens for the request older than the maximum age, want 0", n)
	}
	if n := e.OutboxCount(young, events.SubjectPasswordResetRequested); n != 1 {
		t.Errorf("%d reset events for the request younger than the maximum age, want 1", n)
	}
}

// A request older than the maximum age (24 h) is dropped unsent by HouseKeep and
// counted in auth_email_requests_expired_total; one just younger stays and is sent.
func TestEmailRequestOlderThanMaxAgeIsDroppedUnsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := apitest.StartWithoutEmailProcessor(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t)})
	old, young := apitest.Email("er-old"), apitest.Email("er-young")
	oldID, youngID := erAgeRows(t, e, old, young)

	before := scrape(t, e)
	e.App.Emails.HouseKeep(ctx, e.App.Accounts)
	expectDelta(t, before, scrape(t, e), map[string]float64{erExpired: 1})
	if n := erCount(t, e, "SELECT count(*) FROM email_requests WHERE request_id = ?", oldID); n != 0 {
		t.Fatal("the request older than the maximum age is still stored")
	}
	if n := erCount(t, e, "SELECT count(*) FROM email_requests WHERE request_id = ?", youngID); n != 1 {
		t.Fatal("the request younger than the maximum age was dropped")
	}
	if n := e.App.Emails.ProcessDue(ctx, e.App.Accounts); n != 1 {
		t.Fatalf("%d requests processed, want 1 (the younger)", n)
	}
	erCheckAged(t, e, old, young)
}

// A replica that starts with requests older than the maximum age waiting (all replicas
// were down, or failed, for longer) drops them before it claims any: its processor's
// first round sends only the younger one.
func TestEmailRequestOlderThanMaxAgeIsDroppedBeforeTheFirstClaim(t *testing.T) {
	t.Parallel()
	env := erSharedEnv(t)
	stopped := apitest.StartWithoutEmailProcessor(t, env)
	old, young := apitest.Email("er-old"), apitest.Email("er-young")
	erAgeRows(t, stopped, old, young)

	e := apitest.Start(t, env) // its processor runs
	erWaitGone(t, e)
	erCheckAged(t, e, old, young)
	// The expired counter moves right after the deletion commits.
	deadline := time.Now().Add(10 * time.Second)
	for scrape(t, e)[erExpired] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want 1", erExpired, scrape(t, e)[erExpired])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The gauges show the requests waiting and the age of the oldest (created_at, as the
// database counts it), as of the last HouseKeep, and fall back to 0 once processed.
func TestEmailRequestGaugesReflectPending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := apitest.StartWithoutEmailProcessor(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t)})
	oldest := erForgot(t, e, apitest.Email("er-gauge"))
	erForgot(t, e, apitest.Email("er-gauge"))
	erExec(t, e, "UPDATE email_requests SET created_at = now() - interval '90 seconds' WHERE request_id = ?", oldest)
	if m := scrape(t, e); m[erPending] != 0 || m[erOldest] != 0 {
		t.Fatalf("gauges %v, %v before any count, want 0, 0", m[erPending], m[erOldest])
	}

	age := func() float64 {
		t.Helper()
		var s float64
		if err := e.App.DB.NewRaw("SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM email_requests").
			Scan(ctx, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a0 := age()
	e.App.Emails.HouseKeep(ctx, e.App.Accounts)
	a1 := age()
	m := scrape(t, e)
	if m[erPending] != 2 {
		t.Errorf("%s is %v, want 2", erPending, m[erPending])
	}
	if m[erOldest] < a0 || m[erOldest] > a1 {
		t.Errorf("%s is %v, want the oldest request's age, in [%v, %v]", erOldest, m[erOldest], a0, a1)
	}

	erExec(t, e, "UPDATE email_requests SET next_attempt_at = now()")
	if n := e.App.Emails.ProcessDue(ctx, e.App.Accounts); n != 2 {
		t.Fatalf("%d requests processed, want 2", n)
	}
	e.App.Emails.HouseKeep(ctx, e.App.Accounts)
	if m := scrape(t, e); m[erPending] != 0 || m[erOldest] != 0 {
		t.Errorf("gauges %v, %v with nothing waiting, want 0, 0", m[erPending], m[erOldest])
	}
}

// erSharedEnv is the settings of replicas that share a database of the test's own and
// one EVENT_KEYS key.
func erSharedEnv(t *testing.T) map[string]string {
	t.Helper()
	var key [32]byte
	_, _ = rand.Read(key[:])
	return map[string]string{
		"DATABASE_URL": apitest.NewDatabase(t),
		"EVENT_KEYS":   "er-" + erRequestID()[3:] + ":" + base64.StdEncoding.EncodeToString(key[:]),
	}
}
