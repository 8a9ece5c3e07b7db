package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/webhook"
)

var databases = platformtest.NewDatabases("worker_webhooks_test_")

func TestMain(m *testing.M) {
	code := m.Run()
	databases.Drop()
	os.Exit(code)
}

func openDB(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(databases.Shared(t), nil, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func testKeys(t *testing.T) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Parse(platformtest.KeySpec("k1"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// addEndpoint inserts an endpoint as auth's admin API does, its secret sealed under its
// id; extra sets more columns (SQL).
func addEndpoint(t *testing.T, db *postgres.DB, keys *keyring.Keyring, url string, types []string, extra string) string {
	t.Helper()
	id := uuid.NewString()
	sealed, err := keys.Seal([]byte(webhook.NewSecret()), id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sealed)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, url, events, secret_sealed) VALUES (?, ?, ?::text[], ?)`,
		id, url, "{"+strings.Join(types, ",")+"}", string(b)); err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		if _, err := db.ExecContext(ctx, "UPDATE webhook_endpoints SET "+extra+" WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func count(t *testing.T, db *postgres.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.NewRaw(q, args...).Scan(context.Background(), &n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestBody(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 678000000, time.FixedZone("CET", 3600))
	ev := events.Envelope{ID: uuid.NewString(), Type: events.SubjectVerificationRequested, OccurredAt: at,
		Payload: json.RawMessage(`{"user_id":"u1","email":"a@example.com","token_sealed":{"kid":"k"},"code_sealed":{},"key_hash":"h","nested":{"client_secret":"s","ok":1}}`)}
	b, err := Body(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"auth.email.verification_requested","timestamp":"2026-01-02T02:04:05.678Z","data":{"email":"a@example.com","nested":{"ok":1},"user_id":"u1"}}`
	if string(b) != want {
		t.Errorf("body\n%s\nwant\n%s", b, want)
	}
	if _, err := Body(events.Envelope{Type: "auth.user.registered", Payload: json.RawMessage(`{"a":`)}); err == nil {
		t.Error("a broken payload made a body")
	}
}

// The fan-out writes one delivery per live endpoint subscribed to the type and created no
// later than the event, and nothing more for a redelivered event.
func TestFanout(t *testing.T) {
	db, keys := openDB(t), testKeys(t)
	typ := events.SubjectPasswordChanged
	ev := events.Envelope{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, OccurredAt: time.Now().Add(time.Minute),
		Payload: json.RawMessage(`{"user_id":"u","email":"e@example.com","how":"change"}`)}
	want := addEndpoint(t, db, keys, "https://a.example.com/", []string{events.SubjectRegistered, typ}, "")
	others := []string{
		addEndpoint(t, db, keys, "https://b.example.com/", []string{events.SubjectRegistered}, ""),
		addEndpoint(t, db, keys, "https://c.example.com/", []string{typ}, "deleted_at = now()"),
		addEndpoint(t, db, keys, "https://d.example.com/", []string{typ}, "disabled_at = now()"),
		addEndpoint(t, db, keys, "https://e.example.com/", []string{typ}, "created_at = now() + interval '2 minutes'"),
	}
	woken := 0
	f := NewFanout(db, func() { woken++ })
	for i, want := range []string{OutcomeQueued, OutcomeNone} {
		out, err := f.Handle(context.Background(), ev)
		if err != nil || out != want {
			t.Fatalf("delivery %d: Handle = %q, %v; want %q", i+1, out, err, want)
		}
	}
	if woken != 1 {
		t.Errorf("woken %d times, want once (the redelivery wrote nothing)", woken)
	}
	if n := count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE event_id = ? AND endpoint_id = ?`, ev.ID, want); n != 1 {
		t.Errorf("%d deliveries to the subscribed endpoint, want 1", n)
	}
	for _, id := range others {
		if n := count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = ?`, id); n != 0 {
			t.Errorf("endpoint %s got %d deliveries, want none", id, n)
		}
	}
	var body string
	if err := db.NewRaw(`SELECT body FROM webhook_deliveries WHERE event_id = ?`, ev.ID).Scan(context.Background(), &body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `"type":"auth.user.password_changed"`) || !strings.Contains(body, `"how":"change"`) {
		t.Errorf("body %s", body)
	}
}

// A claim takes at most EndpointConcurrency deliveries of one endpoint, counting those
// in flight, at most n in all, leases them and counts the attempt; a leased delivery is
// not claimed again until its lease passes.
func TestClaim(t *testing.T) {
	db, keys := openDB(t), testKeys(t)
	ctx := context.Background()
	a := addEndpoint(t, db, keys, "https://a.example.com/", []string{events.SubjectRegistered}, "")
	b := addEndpoint(t, db, keys, "https://b.example.com/", []string{events.SubjectRegistered}, "")
	gone := addEndpoint(t, db, keys, "https://gone.example.com/", []string{events.SubjectRegistered}, "disabled_at = now()")
	for _, ep := range []string{a, b, gone} {
		for i := range 4 {
			if _, err := db.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, next_attempt_at)
				VALUES (gen_random_uuid(), ?, gen_random_uuid(), 'auth.user.registered', '{}', now() - make_interval(secs => ?))`, ep, 10-i); err != nil {
				t.Fatal(err)
			}
		}
	}
	mine := func(rows []claimed) (n map[string]int) {
		n = map[string]int{}
		for _, r := range rows {
			if r.EndpointID == a || r.EndpointID == b || r.EndpointID == gone {
				n[r.EndpointID]++
				if r.Attempts != 1 && r.EndpointID != b || r.URL == "" || r.Secret == "" || r.Previous != nil {
					t.Errorf("claimed %+v", r)
				}
			}
		}
		return n
	}
	d := NewDispatcher(db, keys, nil, nil, "", Config{Concurrency: 8, EndpointConcurrency: 2, Timeout: time.Minute})
	// Another claim of ours is in flight to a.
	d.busy[a], d.inflight = 1, 1
	rows, err := d.claim(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	got := mine(rows)
	if got[a] != 1 || got[b] != 2 || got[gone] != 0 {
		t.Fatalf("claimed %v; want 1 of a (one in flight), 2 of b, none of the disabled endpoint", got)
	}
	if d.busy[a] != 2 || d.busy[b] != 2 {
		t.Errorf("in flight %v", d.busy)
	}
	// Everything ends: the leased ones stay leased.
	d.busy, d.inflight = map[string]int{}, 0
	rows, err = d.claim(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	if got := mine(rows); got[a] != 2 || got[b] != 2 {
		t.Fatalf("second claim %v; want the 2 unleased of each", got)
	}
	d.busy, d.inflight = map[string]int{}, 0
	if rows, _ = d.claim(ctx, 8); mine(rows)[a] != 1 || mine(rows)[b] != 0 {
		t.Fatalf("third claim %v; want the last of a and none of b's leased ones", mine(rows))
	}
	d.busy, d.inflight = map[string]int{}, 0
	if rows, _ = d.claim(ctx, 8); len(mine(rows)) != 0 {
		t.Fatalf("claimed leased deliveries: %v", mine(rows))
	}
	if n := count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE endpoint_id IN (?, ?)
		AND locked_until > now() + interval '110 seconds' AND attempts = 1`, a, b); n != 8 {
		t.Errorf("%d deliveries leased for 2 × the timeout, want 8", n)
	}
	// A lease that passed frees its delivery, the same row (same event id) again.
	if _, err := db.ExecContext(ctx, `UPDATE webhook_deliveries SET locked_until = now() - interval '1 second' WHERE endpoint_id = ?`, b); err != nil {
		t.Fatal(err)
	}
	rows, _ = d.claim(ctx, 1)
	if got := mine(rows); got[b] != 1 || rows[0].Attempts != 2 {
		t.Fatalf("after the lease: %v %+v; want one of b, its second attempt", got, rows)
	}
}

// The reasons kept in last_error are short and fixed; the policy's refusals are named.
func TestReason(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	allow := webhook.Policy{AllowPrivate: true}
	tests := []struct {
		client *http.Client
		url    string
		want   string
	}{
		{allow.Client(200 * time.Millisecond), slow.URL, "timeout after 200ms"},
		{allow.Client(time.Second), "http://" + closed + "/", "connection refused"},
		{webhook.Policy{}.Client(time.Second), "https://" + closed + "/", reasonPolicy},
		{webhook.Policy{}.Client(time.Second), "https://localhost:1/", reasonPolicy},
		{allow.Client(time.Second), "http://no-such-host.invalid/", "the host does not resolve"},
		{allow.Client(time.Second), "https://" + strings.TrimPrefix(slow.URL, "http://") + "/", "TLS handshake failed (the endpoint answers plain HTTP)"},
	}
	for _, tt := range tests {
		resp, err := tt.client.Post(tt.url, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: answered %d", tt.url, resp.StatusCode)
			continue
		}
		if got := reason(err, 200*time.Millisecond); got != tt.want {
			t.Errorf("%s: reason %q (%v), want %q", tt.url, got, err, tt.want)
		}
	}
	if got := reason(errors.New("boom http://secret@x/?token=1"), time.Second); got != "connection failed" {
		t.Errorf("an unknown error gave %q", got)
	}
}
