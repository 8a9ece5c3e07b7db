package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/keyring"
	"github.com/talentforge/auth/pkg/platformtest"
	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/pkg/webhook"
	"github.com/talentforge/auth/services/token-worker/internal/app"
	"github.com/talentforge/auth/services/token-worker/internal/consumer"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

// Each webhook test has a database of its own: every worker's dispatcher claims any due
// delivery of its database, and these tests' workers differ (schedules, address policy),
// so one test's worker must never call another test's endpoints.
var webhookDatabases = platformtest.NewDatabases("worker_webhook_test_")

// hookRig is a rig on a database of the test's own, with a connection to it.
type hookRig struct {
	*rig
	db  *postgres.DB
	env workertest.Env
}

func newHookRig(t *testing.T, env workertest.Env) *hookRig {
	t.Helper()
	url := webhookDatabases.Own(t)
	all := workertest.Env{
		"DATABASE_URL":                   url,
		"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
		"WORKER_WEBHOOK_POLL_INTERVAL":   "50ms",
		"WORKER_WEBHOOK_TIMEOUT":         "2s",
		"WORKER_WEBHOOK_RETRY_SCHEDULE":  "100ms,200ms,300ms",
	}
	for k, v := range env {
		all[k] = v
	}
	db, err := postgres.Open(url, nil, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &hookRig{rig: newRig(t, all), db: db, env: all}
}

// endpoint inserts a webhook endpoint as auth's admin API does (its secret sealed with
// EVENT_KEYS under its id) and returns its id and secret; extra sets more columns (SQL).
func (r *hookRig) endpoint(t *testing.T, url string, types []string, extra string, args ...any) (id, secret string) {
	t.Helper()
	id, secret = uuid.NewString(), webhook.NewSecret()
	if _, err := r.db.ExecContext(context.Background(), `INSERT INTO webhook_endpoints (id, url, events, secret_sealed) VALUES (?, ?, ?::text[], ?)`,
		id, url, "{"+strings.Join(types, ",")+"}", sealSecret(t, r.keys, secret, id)); err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		if _, err := r.db.ExecContext(context.Background(), "UPDATE webhook_endpoints SET "+extra+" WHERE id = ?", append(args, id)...); err != nil {
			t.Fatal(err)
		}
	}
	return id, secret
}

func sealSecret(t *testing.T, keys *keyring.Keyring, secret, id string) string {
	t.Helper()
	s, err := keys.Seal([]byte(secret), id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// delivery is one row of webhook_deliveries as a test reads it.
type delivery struct {
	ID           string  `bun:"id"`
	EventID      string  `bun:"event_id"`
	Status       string  `bun:"status"`
	Attempts     int     `bun:"attempts"`
	StatusCode   *int    `bun:"last_status_code"`
	LastError    *string `bun:"last_error"`
	Body         string  `bun:"body"`
	DeadLettered bool    `bun:"dead_lettered"`
}

func (r *hookRig) deliveries(t *testing.T, endpointID string) []delivery {
	t.Helper()
	var rows []delivery
	if err := r.db.NewRaw(`SELECT id, event_id, status, attempts, last_status_code, last_error, body, dead_lettered_at IS NOT NULL AS dead_lettered
		FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY created_at, event_id`, endpointID).Scan(context.Background(), &rows); err != nil && !postgres.IsNoRows(err) {
		t.Fatal(err)
	}
	return rows
}

// waitDeliveries waits until every delivery of the endpoint has status and n exist.
func (r *hookRig) waitDeliveries(t *testing.T, endpointID string, n int, status string) []delivery {
	t.Helper()
	var rows []delivery
	workertest.Eventually(t, 20*time.Second, fmt.Sprintf("%d deliveries %s", n, status), func() bool {
		rows = r.deliveries(t, endpointID)
		if len(rows) != n {
			return false
		}
		for _, d := range rows {
			if d.Status != status || (status == "dead" && !d.DeadLettered) {
				return false
			}
		}
		return true
	})
	return rows
}

// hookCall is one request the receiver got.
type hookCall struct {
	Path, ID, Timestamp, Signature, ContentType string
	Body                                        []byte
	// Verified: the official library accepted the call with each secret the receiver
	// knows for the path, in order.
	Verified []bool
}

// receiver is an HTTP server on a real socket that checks each call's signature with
// the official Standard Webhooks library, as an integrator's endpoint would.
type receiver struct {
	srv *httptest.Server
	// answer decides the status of the n-th call (1-based) to path; nil: 204.
	answer func(path string, n int, r *http.Request) int

	mu      sync.Mutex
	secrets map[string][]string
	calls   []hookCall
	conns   atomic.Int64
}

func newReceiver(t *testing.T, answer func(path string, n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer, secrets: map[string][]string{}}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rc.conns.Add(1)
		}
	}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

// url is the receiver's URL for path.
func (rc *receiver) url(path string) string { return rc.srv.URL + path }

// trust makes the receiver verify the calls to path with each of secrets.
func (rc *receiver) trust(path string, secrets ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets[path] = secrets
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := hookCall{Path: r.URL.Path, ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
		Signature: r.Header.Get("webhook-signature"), ContentType: r.Header.Get("Content-Type"), Body: body}
	rc.mu.Lock()
	for _, s := range rc.secrets[r.URL.Path] {
		wh, err := standardwebhooks.NewWebhook(s)
		c.Verified = append(c.Verified, err == nil && wh.Verify(body, r.Header) == nil)
	}
	rc.calls = append(rc.calls, c)
	n := 0
	for _, o := range rc.calls {
		if o.Path == c.Path {
			n++
		}
	}
	rc.mu.Unlock()
	status := http.StatusNoContent
	if !slices.Contains(c.Verified, true) {
		status = http.StatusUnauthorized
	} else if rc.answer != nil {
		status = rc.answer(c.Path, n, r)
	}
	if status >= 300 && status < 400 {
		w.Header().Set("Location", rc.srv.URL+"/elsewhere")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "the receiver's own words, never to be kept: whsec_nope")
}

// callsTo returns the calls to path.
func (rc *receiver) callsTo(path string) []hookCall {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hookCall
	for _, c := range rc.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// body is a delivered body.
type body struct {
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// One event reaches each live endpoint subscribed to its type once, signed, with the
// Standard Webhooks body and headers; an endpoint not subscribed, created after the
// event, deleted or disabled gets nothing.
func TestWebhookDelivered(t *testing.T) {
	t.Parallel()
	r := newHookRig(t, nil)
	rc := newReceiver(t, nil)
	typ := events.SubjectVerificationRequested

	idA, secretA := r.endpoint(t, rc.url("/a"), []string{events.SubjectRegistered, typ}, "")
	rc.trust("/a", secretA)
	idB, secretB := r.endpoint(t, rc.url("/b"), []string{events.SubjectRegistered}, "")
	rc.trust("/b", secretB)
	deleted, deletedSecret := r.endpoint(t, rc.url("/deleted"), []string{typ}, "deleted_at = now()")
	rc.trust("/deleted", deletedSecret)
	disabled, disabledSecret := r.endpoint(t, rc.url("/disabled"), []string{typ}, "disabled_at = now()")
	rc.trust("/disabled", disabledSecret)
	// The event occurs after those endpoints were made, and before this one.
	ev := event(t, r.keys, typ, map[string]any{"user_id": "0190a8a4-0000-7000-8000-000000000001", "email": address(t, "ann"), "name": "Ann",
		"token": token(), "expires_at": time.Now().Add(time.Hour).UTC(), "password_hash": "$argon2id$x"})
	late, lateSecret := r.endpoint(t, rc.url("/late"), []string{typ}, "")
	rc.trust("/late", lateSecret)

	r.nats.Publish(t, r.js, ev, "")
	rows := r.waitDeliveries(t, idA, 1, "succeeded")
	if rows[0].EventID != ev.ID || rows[0].Attempts != 1 || rows[0].StatusCode == nil || *rows[0].StatusCode != 204 || rows[0].LastError != nil {
		t.Errorf("delivery %+v", rows[0])
	}
	calls := rc.callsTo("/a")
	if len(calls) != 1 {
		t.Fatalf("%d calls to a, want 1", len(calls))
	}
	c := calls[0]
	if c.ID != ev.ID || c.ContentType != "application/json" || c.Timestamp == "" || !strings.HasPrefix(c.Signature, "v1,") ||
		strings.Contains(c.Signature, " ") || !slices.Equal(c.Verified, []bool{true}) {
		t.Errorf("call %+v; want webhook-id %s, one v1 signature the library verifies", c, ev.ID)
	}
	var b body
	if err := json.Unmarshal(c.Body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != typ || b.Timestamp != ev.OccurredAt.UTC().Format(time.RFC3339Nano) || b.Data["name"] != "Ann" || b.Data["user_id"] == nil {
		t.Errorf("body %s", c.Body)
	}
	for _, k := range []string{"token", "token_sealed", "password_hash"} {
		if _, ok := b.Data[k]; ok {
			t.Errorf("the body holds %s: %s", k, c.Body)
		}
	}
	if strings.Contains(rows[0].Body, "sealed") || strings.Contains(string(c.Body), "sealed") {
		t.Error("a sealed field reached the delivery")
	}

	// A registered event is b's and a's, not the others'.
	reg := event(t, r.keys, events.SubjectRegistered, map[string]any{"user_id": "0190a8a4-0000-7000-8000-000000000002", "email": address(t, "bob")})
	r.nats.Publish(t, r.js, reg, "")
	r.waitDeliveries(t, idB, 1, "succeeded")
	r.waitDeliveries(t, idA, 2, "succeeded")
	settled(t, r.nats, r.js, app.WebhooksConsumer, 2)
	for _, id := range []string{late, deleted, disabled} {
		if rows := r.deliveries(t, id); len(rows) != 0 {
			t.Errorf("endpoint %s got %d deliveries, want none", id, len(rows))
		}
	}
	for _, p := range []string{"/late", "/deleted", "/disabled"} {
		if n := len(rc.callsTo(p)); n != 0 {
			t.Errorf("%d calls to %s, want none", n, p)
		}
	}
	if got := rc.callsTo("/b"); len(got) != 1 || got[0].ID != reg.ID {
		t.Errorf("b got %+v, want only the registered event", got)
	}
	if got := metric(t, r.worker.App.Metrics, "token_worker_webhook_deliveries_total", map[string]string{"outcome": "succeeded"}); got != 3 {
		t.Errorf("deliveries_total{succeeded} = %v, want 3", got)
	}
	if got := metric(t, r.worker.App.Metrics, "token_worker_events_consumed_total",
		map[string]string{"consumer": "webhooks", "type": typ, "result": "queued"}); got != 1 {
		t.Errorf("events_consumed_total{webhooks, queued} = %v, want 1", got)
	}
}

// A receiver that answers 503 for a while gets every event in the end, each under one
// webhook-id whatever the attempt; the endpoint is healthy again after its success.
func TestWebhookReceiverOutage(t *testing.T) {
	t.Parallel()
	r := newHookRig(t, nil)
	var down atomic.Int64
	down.Store(3) // the first three calls fail
	rc := newReceiver(t, func(string, int, *http.Request) int {
		if down.Add(-1) >= 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	id, secret := r.endpoint(t, rc.url("/in"), []string{events.SubjectRegistered}, "")
	rc.trust("/in", secret)
	var want []string
	for range 3 {
		ev := event(t, r.keys, events.SubjectRegistered, map[string]any{"user_id": uuid.NewString(), "email": address(t, "o")})
		r.nats.Publish(t, r.js, ev, "")
		want = append(want, ev.ID)
	}
	rows := r.waitDeliveries(t, id, 3, "succeeded")
	attempts := 0
	for _, d := range rows {
		attempts += d.Attempts
		if d.Attempts > 1 && (d.LastError == nil || *d.LastError != "HTTP 503") {
			t.Errorf("delivery %+v: want last_error HTTP 503 from its failed attempts", d)
		}
		if d.LastError != nil && strings.Contains(*d.LastError, "receiver") {
			t.Errorf("last_error keeps the receiver's answer: %q", *d.LastError)
		}
	}
	if attempts != 6 {
		t.Errorf("%d attempts in all, want 6 (3 failed, 3 delivered)", attempts)
	}
	ok := map[string]int{}
	for _, c := range rc.callsTo("/in") {
		if !slices.Contains(want, c.ID) {
			t.Errorf("a call with webhook-id %q, which is no event's", c.ID)
		}
		if !slices.Equal(c.Verified, []bool{true}) {
			t.Errorf("a call the library refused: %+v", c)
		}
		ok[c.ID]++
	}
	if len(ok) != 3 {
		t.Errorf("calls by webhook-id %v, want the 3 events", ok)
	}
	var failing *time.Time
	var lastError *string
	if err := r.db.NewRaw(`SELECT failing_since, last_error FROM webhook_endpoints WHERE id = ?`, id).Scan(context.Background(), &failing, &lastError); err != nil {
		t.Fatal(err)
	}
	if failing != nil || lastError == nil || *lastError != "HTTP 503" {
		t.Errorf("endpoint failing_since %v, last_error %v; want healthy, the last error kept", failing, lastError)
	}
	reg := r.worker.App.Metrics
	for outcome, want := range map[string]float64{"succeeded": 3, "failed": 3, "dead": 0} {
		if got := metric(t, reg, "token_worker_webhook_deliveries_total", map[string]string{"outcome": outcome}); got != want {
			t.Errorf("deliveries_total{%s} = %v, want %v", outcome, got, want)
		}
	}
	if _, ok := series(t, reg, "token_worker_webhook_deliveries_pending", nil); !ok {
		t.Error("no pending deliveries gauge")
	}
}

// A worker stopped while the receiver holds its call records nothing; the next worker
// takes the delivery once the lease has passed and sends it again under the same
// webhook-id: one success, never a second id.
func TestWebhookWorkerRestart(t *testing.T) {
	t.Parallel()
	held := make(chan struct{})
	var once sync.Once
	rc := newReceiver(t, func(_ string, n int, req *http.Request) int {
		if n == 1 {
			once.Do(func() { close(held) })
			<-req.Context().Done() // held until the worker gives up on it
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	// The drain (1 s) ends before the call's timeout (3 s): the call is cut; the lease
	// is 6 s.
	r := newHookRig(t, workertest.Env{"SHUTDOWN_TIMEOUT": "1s", "WORKER_WEBHOOK_TIMEOUT": "3s"})
	id, secret := r.endpoint(t, rc.url("/in"), []string{events.SubjectRegistered}, "")
	rc.trust("/in", secret)
	ev := event(t, r.keys, events.SubjectRegistered, map[string]any{"user_id": uuid.NewString(), "email": address(t, "r")})
	r.nats.Publish(t, r.js, ev, "")
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the first worker never called")
	}
	first := r.worker
	first.Stop()
	if rows := r.deliveries(t, id); len(rows) != 1 || rows[0].Status != "pending" || rows[0].Attempts != 1 || rows[0].LastError != nil {
		t.Fatalf("after the cut call: %+v; want it pending, its attempt counted, nothing recorded", rows)
	}
	second := workertest.StartWorker(t, r.nats, r.relay, r.spec, r.env)
	rows := r.waitDeliveries(t, id, 1, "succeeded")
	if rows[0].Attempts != 2 {
		t.Errorf("delivery %+v; want it done at its second attempt", rows[0])
	}
	calls := rc.callsTo("/in")
	if len(calls) != 2 {
		t.Fatalf("%d calls, want the cut one and its retry", len(calls))
	}
	for _, c := range calls {
		if c.ID != ev.ID || !slices.Equal(c.Verified, []bool{true}) {
			t.Errorf("call %+v; want webhook-id %s, verified", c, ev.ID)
		}
	}
	if got := metric(t, first.App.Metrics, "token_worker_webhook_deliveries_total", map[string]string{"outcome": "succeeded"}) +
		metric(t, second.App.Metrics, "token_worker_webhook_deliveries_total", map[string]string{"outcome": "succeeded"}); got != 1 {
		t.Errorf("%v successes recorded, want 1", got)
	}
}

// deadLetters reads the dead-letter stream's messages under deadletter.<typ>.
func deadLetters(t *testing.T, r *hookRig, typ string, want int) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	var dl jetstream.Consumer
	workertest.Eventually(t, 10*time.Second, "the dead-letter stream", func() bool {
		var err error
		dl, err = r.js.CreateOrUpdateConsumer(ctx, r.nats.Namespace.Stream(consumer.DeadLetterStream),
			jetstreamConsumer(r.nats.Namespace.Subject(consumer.DeadLetterPrefix+typ)))
		return err == nil
	})
	var msgs []jetstream.Msg
	workertest.Eventually(t, 15*time.Second, "the dead letters", func() bool {
		batch, err := dl.Fetch(10, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return false
		}
		for m := range batch.Messages() {
			msgs = append(msgs, m)
			_ = m.Ack()
		}
		return len(msgs) >= want
	})
	// Nothing more comes.
	if batch, err := dl.Fetch(10, jetstream.FetchMaxWait(300*time.Millisecond)); err == nil {
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// A delivery whose every attempt fails (an error, or a redirect, which is never
// followed) is dead after the last one and published once to AUTH_DEADLETTER.
func TestWebhookDeadLettered(t *testing.T) {
	t.Parallel()
	r := newHookRig(t, workertest.Env{"WORKER_WEBHOOK_RETRY_SCHEDULE": "100ms,200ms"})
	rc := newReceiver(t, func(path string, _ int, _ *http.Request) int {
		if path == "/moved" {
			return http.StatusFound
		}
		return http.StatusInternalServerError
	})
	broken, brokenSecret := r.endpoint(t, rc.url("/broken"), []string{events.SubjectRoleCreated}, "")
	rc.trust("/broken", brokenSecret)
	moved, movedSecret := r.endpoint(t, rc.url("/moved"), []string{events.SubjectRoleCreated}, "")
	rc.trust("/moved", movedSecret)
	ev := event(t, r.keys, events.SubjectRoleCreated, map[string]any{"role": "ops", "actor_id": uuid.NewString()})
	r.nats.Publish(t, r.js, ev, "")

	b := r.waitDeliveries(t, broken, 1, "dead")[0]
	m := r.waitDeliveries(t, moved, 1, "dead")[0]
	if b.Attempts != 3 || b.StatusCode == nil || *b.StatusCode != 500 || b.LastError == nil || *b.LastError != "HTTP 500" {
		t.Errorf("broken delivery %+v", b)
	}
	if m.Attempts != 3 || m.StatusCode == nil || *m.StatusCode != 302 || m.LastError == nil || *m.LastError != "HTTP 302 (redirects are not followed)" {
		t.Errorf("redirected delivery %+v", m)
	}
	if n := len(rc.callsTo("/elsewhere")); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
	for _, p := range []string{"/broken", "/moved"} {
		calls := rc.callsTo(p)
		if len(calls) != 3 {
			t.Errorf("%d calls to %s, want 3", len(calls), p)
		}
		for _, c := range calls {
			if c.ID != ev.ID {
				t.Errorf("%s: webhook-id %q, want %s on every attempt", p, c.ID, ev.ID)
			}
		}
	}

	msgs := deadLetters(t, r, events.SubjectRoleCreated, 2)
	if len(msgs) != 2 {
		t.Fatalf("%d dead letters, want 2 (one per delivery, once)", len(msgs))
	}
	byEndpoint := map[string]jetstream.Msg{}
	for _, msg := range msgs {
		byEndpoint[msg.Headers().Get("Webhook-Endpoint-Id")] = msg
	}
	dl := byEndpoint[broken]
	if dl == nil || string(dl.Data()) != b.Body || dl.Headers().Get(consumer.HeaderConsumer) != app.WebhooksConsumer ||
		dl.Headers().Get("Webhook-Id") != ev.ID || dl.Headers().Get(consumer.HeaderDeliveries) != "3" ||
		dl.Headers().Get(consumer.HeaderReason) != "gave up after 3 attempts: HTTP 500" {
		t.Errorf("dead letter of the broken endpoint: %v", dl)
	}
	if got := metric(t, r.worker.App.Metrics, "token_worker_webhook_deliveries_total", map[string]string{"outcome": "dead"}); got != 2 {
		t.Errorf("deliveries_total{dead} = %v, want 2", got)
	}
}

// With WEBHOOK_ALLOW_PRIVATE_NETWORKS off, neither an http:// URL nor an https:// one
// whose host resolves to loopback is ever connected to.
func TestWebhookPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	r := newHookRig(t, workertest.Env{"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false", "WORKER_WEBHOOK_RETRY_SCHEDULE": "50ms"})
	rc := newReceiver(t, nil)
	_, port, _ := net.SplitHostPort(rc.srv.Listener.Addr().String())
	var ids []string
	for _, u := range []string{"https://localhost:" + port + "/in", "https://127.0.0.1:" + port + "/in", "http://127.0.0.1:" + port + "/in"} {
		id, _ := r.endpoint(t, u, []string{events.SubjectRoleDeleted}, "")
		ids = append(ids, id)
	}
	r.nats.Publish(t, r.js, event(t, r.keys, events.SubjectRoleDeleted, map[string]any{"role": "ops"}), "")
	for _, id := range ids {
		d := r.waitDeliveries(t, id, 1, "dead")[0]
		if d.Attempts != 2 || d.StatusCode != nil || d.LastError == nil || *d.LastError != "refused by the address policy" {
			t.Errorf("delivery %+v; want 2 attempts refused by the address policy", d)
		}
	}
	if n := rc.conns.Load(); n != 0 {
		t.Errorf("%d connections reached the loopback receiver", n)
	}
}

// During a rotation both secrets sign: each alone verifies. Once the previous secret's
// overlap is over, only the current one signs.
func TestWebhookRotationOverlap(t *testing.T) {
	t.Parallel()
	r := newHookRig(t, nil)
	rc := newReceiver(t, nil)
	oldSecret, newSecret := webhook.NewSecret(), webhook.NewSecret()
	rotating, _ := r.endpoint(t, rc.url("/rotating"), []string{events.SubjectUserDisabled}, "")
	r.rotate(t, rotating, newSecret, oldSecret, "now() + interval '1 hour'")
	rc.trust("/rotating", oldSecret, newSecret)
	expiredOld, current := webhook.NewSecret(), webhook.NewSecret()
	over, _ := r.endpoint(t, rc.url("/over"), []string{events.SubjectUserDisabled}, "")
	r.rotate(t, over, current, expiredOld, "now() - interval '1 minute'")
	rc.trust("/over", current, expiredOld)

	ev := event(t, r.keys, events.SubjectUserDisabled, map[string]any{"user_id": uuid.NewString(), "actor_id": uuid.NewString()})
	r.nats.Publish(t, r.js, ev, "")
	r.waitDeliveries(t, rotating, 1, "succeeded")
	r.waitDeliveries(t, over, 1, "succeeded")
	c := rc.callsTo("/rotating")[0]
	if n := len(strings.Split(c.Signature, " ")); n != 2 || !slices.Equal(c.Verified, []bool{true, true}) {
		t.Errorf("during the overlap: %d signatures, verified %v; want two, each verifying alone", n, c.Verified)
	}
	c = rc.callsTo("/over")[0]
	if n := len(strings.Split(c.Signature, " ")); n != 1 || !slices.Equal(c.Verified, []bool{true, false}) {
		t.Errorf("after the overlap: %d signatures, verified %v; want the current secret's only", n, c.Verified)
	}
}

func (r *hookRig) rotate(t *testing.T, id, current, previous, expires string) {
	t.Helper()
	if _, err := r.db.ExecContext(context.Background(), `UPDATE webhook_endpoints SET secret_sealed = ?, previous_secret_sealed = ?,
		previous_expires_at = `+expires+` WHERE id = ?`, sealSecret(t, r.keys, current, id), sealSecret(t, r.keys, previous, id), id); err != nil {
		t.Fatal(err)
	}
}

// An endpoint failing for longer than WORKER_WEBHOOK_DISABLE_AFTER is disabled: its
// pending deliveries are dead and dead-lettered, each verified, enabled admin gets an
// auth.webhook.disabled event in the outbox, whose email names the endpoint and how to
// enable it, and the endpoint gets no new event.
func TestWebhookEndpointDisabled(t *testing.T) {
	t.Parallel()
	r := newHookRig(t, workertest.Env{"WORKER_WEBHOOK_DISABLE_AFTER": "1ms", "WORKER_WEBHOOK_RETRY_SCHEDULE": "100ms,100ms,100ms,100ms",
		"WORKER_WEBHOOK_ENDPOINT_CONCURRENCY": "1"})
	// The first call waits until all three events are fanned out: the endpoint is to be
	// disabled with deliveries still pending.
	fannedOut := make(chan struct{})
	rc := newReceiver(t, func(_ string, n int, _ *http.Request) int {
		if n == 1 {
			<-fannedOut
		}
		return http.StatusServiceUnavailable
	})
	ctx := context.Background()
	admins := map[string]string{} // id -> address
	for _, who := range []struct {
		name, set string
		role      string
		notified  bool
	}{
		{"ada", "email_verified_at = now()", "admin", true},
		{"grace", "email_verified_at = now()", "admin", true},
		{"unverified", "", "admin", false},
		{"gone", "email_verified_at = now(), disabled_at = now()", "admin", false},
		{"user", "email_verified_at = now()", "user", false},
	} {
		id, email := uuid.NewString(), address(t, who.name)
		if _, err := r.db.ExecContext(ctx, `INSERT INTO users (id, email, name) VALUES (?, ?, ?)`, id, email, who.name); err != nil {
			t.Fatal(err)
		}
		if who.set != "" {
			if _, err := r.db.ExecContext(ctx, "UPDATE users SET "+who.set+" WHERE id = ?", id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.db.ExecContext(ctx, `INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, id, who.role); err != nil {
			t.Fatal(err)
		}
		if who.notified {
			admins[id] = email
		}
	}
	url := rc.url("/down")
	id, secret := r.endpoint(t, url, []string{events.SubjectLoggedOut}, "")
	rc.trust("/down", secret)
	for range 3 {
		r.nats.Publish(t, r.js, event(t, r.keys, events.SubjectLoggedOut, map[string]any{"user_id": uuid.NewString(), "session_id": "s"}), "")
	}
	workertest.Eventually(t, 15*time.Second, "the 3 deliveries", func() bool { return len(r.deliveries(t, id)) == 3 })
	close(fannedOut)
	rows := r.waitDeliveries(t, id, 3, "dead")
	var disabledAt *time.Time
	if err := r.db.NewRaw(`SELECT disabled_at FROM webhook_endpoints WHERE id = ?`, id).Scan(ctx, &disabledAt); err != nil || disabledAt == nil {
		t.Fatalf("the endpoint is not disabled (%v)", err)
	}
	attempts := 0
	for _, d := range rows {
		attempts += d.Attempts
	}
	if attempts >= 3*5 {
		t.Errorf("%d attempts: the deliveries ran out their schedule instead of dying with their endpoint", attempts)
	}
	if got := len(deadLetters(t, r, events.SubjectLoggedOut, 3)); got != 3 {
		t.Errorf("%d dead letters, want the 3 undelivered events", got)
	}

	var notices []string
	if err := r.db.NewRaw(`SELECT payload::text FROM outbox WHERE subject = ? AND payload->'payload'->>'webhook_id' = ? ORDER BY id`,
		events.SubjectWebhookDisabled, id).Scan(ctx, &notices); err != nil {
		t.Fatal(err)
	}
	if len(notices) != len(admins) {
		t.Fatalf("%d auth.webhook.disabled events, want one per verified, enabled admin (%d)", len(notices), len(admins))
	}
	var notice events.Envelope
	for _, n := range notices {
		var ev events.Envelope
		if err := json.Unmarshal([]byte(n), &ev); err != nil {
			t.Fatal(err)
		}
		var p events.WebhookDisabled
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if admins[p.UserID] != p.Email || p.WebhookID != id || p.URL != url || p.LastError != "HTTP 503" || p.FailingSince.IsZero() {
			t.Errorf("notice %s", n)
		}
		delete(admins, p.UserID)
		notice = ev
	}
	if got := metric(t, r.worker.App.Metrics, "token_worker_webhook_endpoints_disabled_total", nil); got != 1 {
		t.Errorf("endpoints_disabled_total = %v, want 1", got)
	}

	// auth's relay publishes the outbox; here the test does: the admin is mailed.
	var to string
	if err := json.Unmarshal(mustField(t, notice.Payload, "email"), &to); err != nil {
		t.Fatal(err)
	}
	r.nats.Publish(t, r.js, notice, "")
	var msg workertest.Message
	workertest.Eventually(t, 15*time.Second, "the notice to "+to, func() bool {
		for _, m := range r.relay.Messages() {
			if len(m.To) == 1 && m.To[0] == to {
				msg = m
				return true
			}
		}
		return false
	})
	e := msg.Parse(t)
	if e.Subject() != "A TalentForge webhook endpoint was disabled" || !strings.Contains(e.Text, url) || !strings.Contains(e.Text, "Last error: HTTP 503") ||
		!strings.Contains(e.Text, "POST /v1/admin/webhooks/"+id+"/enable") {
		t.Errorf("notice %q:\n%s", e.Subject(), e.Text)
	}

	// A disabled endpoint gets no new event.
	before := len(rc.callsTo("/down"))
	later := event(t, r.keys, events.SubjectLoggedOut, map[string]any{"user_id": uuid.NewString(), "session_id": "s"})
	r.nats.Publish(t, r.js, later, "")
	settled(t, r.nats, r.js, app.WebhooksConsumer, 5)
	if n := len(r.deliveries(t, id)); n != 3 {
		t.Errorf("%d deliveries after the disabling, want still 3", n)
	}
	if n := len(rc.callsTo("/down")); n != before {
		t.Errorf("%d calls after the disabling", n-before)
	}
}

func mustField(t *testing.T, payload json.RawMessage, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m[key] == nil {
		t.Fatalf("payload %s has no %s", payload, key)
	}
	return m[key]
}
