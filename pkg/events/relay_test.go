package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/talentforge/auth/pkg/keyring"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/talentforge/auth/pkg/postgres"
)

// fastRelay is a relay with test-sized waits.
func (ns *natsServer) fastRelay(t *testing.T, db *postgres.DB, js jetstream.JetStream, opts ...RelayOption) *Relay {
	opts = append([]RelayOption{WithBackoff(20*time.Millisecond, 200*time.Millisecond),
		WithPublishTimeout(500 * time.Millisecond), WithPollInterval(20 * time.Millisecond)}, opts...)
	return NewRelay(db, js, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), append(opts, WithNamespace(ns.ns))...)
}

// enqueue writes events to the outbox as a producer does and returns them.
func enqueue(t *testing.T, db *postgres.DB, keys *keyring.Keyring, n int, subject string, payload func(i int) map[string]any) []Envelope {
	t.Helper()
	out := make([]Envelope, n)
	for i := range out {
		id := uuid.Must(uuid.NewV7()).String()
		env, err := NewEnvelope(keys, id, subject, time.Now(), "req-"+fmt.Sprint(i), payload(i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		if _, err := db.ExecContext(context.Background(),
			"INSERT INTO outbox (id, subject, payload) VALUES (?, ?, ?::jsonb)", id, subject, string(b)); err != nil {
			t.Fatal(err)
		}
		out[i] = env
	}
	return out
}

func userPayload(i int) map[string]any {
	return map[string]any{"user_id": fmt.Sprintf("user-%d", i), "email": fmt.Sprintf("u%d@example.com", i)}
}

type rowState struct {
	Payload     string
	PublishedAt *time.Time
	Attempts    int
	NextAttempt time.Time
}

func row(t *testing.T, db *postgres.DB, id string) rowState {
	t.Helper()
	var r rowState
	if err := db.QueryRowContext(context.Background(),
		"SELECT payload::text, published_at, attempts, next_attempt_at FROM outbox WHERE id = ?", id).
		Scan(&r.Payload, &r.PublishedAt, &r.Attempts, &r.NextAttempt); err != nil {
		t.Fatalf("outbox row %s: %v", id, err)
	}
	return r
}

func pending(t *testing.T, db *postgres.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM outbox WHERE published_at IS NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// streamMsg is one message stored on the stream.
type streamMsg struct {
	Subject string
	ID      string
	Data    []byte
}

// streamMsgs reads every message the stream holds.
func (ns *natsServer) streamMsgs(t *testing.T, js jetstream.JetStream) []streamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, ns.ns.Stream(StreamName))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []streamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, streamMsg{Subject: m.Subject, ID: m.Header.Get(jetstream.MsgIDHeader), Data: m.Data})
	}
	return out
}

// countByID counts the stream's messages per Nats-Msg-Id.
func countByID(msgs []streamMsg) map[string]int {
	n := map[string]int{}
	for _, m := range msgs {
		n[m.ID]++
	}
	return n
}

// publishCounter counts every message published under auth.>, by Nats-Msg-Id, as core
// NATS sees it: before the stream drops duplicates, so it sees a double publish.
type publishCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (ns *natsServer) countPublishes(t *testing.T, nc *nats.Conn) *publishCounter {
	t.Helper()
	c := &publishCounter{n: map[string]int{}}
	sub, err := nc.Subscribe(ns.ns.Subject(SubjectAll), func(m *nats.Msg) {
		c.mu.Lock()
		c.n[m.Header.Get(jetstream.MsgIDHeader)]++
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

func (c *publishCounter) snapshot(t *testing.T, nc *nats.Conn) map[string]int {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the subscription's handler drain
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func (ns *natsServer) ensureStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ns.ns.EnsureStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestEnsureStreamIsIdempotentAndExplicit(t *testing.T) {
	ns := sharedNATS(t)
	_, js := ns.connect(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		ns.ensureStream(t, js)
	}
	// A stream drifted by hand is brought back to StreamConfig.
	drifted := ns.ns.StreamConfig()
	drifted.MaxAge = time.Hour
	drifted.Duplicates = time.Minute
	if _, err := js.UpdateStream(ctx, drifted); err != nil {
		t.Fatal(err)
	}
	s := ns.ensureStream(t, js)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, want := info.Config, ns.ns.StreamConfig()
	if got.Name != want.Name || strings.Join(got.Subjects, ",") != ns.ns.Subject(SubjectAll) || got.Retention != jetstream.LimitsPolicy ||
		got.Storage != jetstream.FileStorage || got.MaxAge != MaxAge || got.MaxBytes != want.MaxBytes ||
		got.Discard != jetstream.DiscardNew || got.Duplicates != DuplicateWindow {
		t.Fatalf("stream config = %+v, want %+v", got, want)
	}
	if MaxAge != 7*24*time.Hour || DuplicateWindow != 10*time.Minute || StreamName != "AUTH_EVENTS" {
		t.Fatal("the stream constants differ from docs/events.md")
	}
	names := js.StreamNames(ctx)
	var mine []string
	for name := range names.Name() {
		if strings.HasSuffix(name, "_"+string(ns.ns)) {
			mine = append(mine, name)
		}
	}
	if len(mine) != 1 || mine[0] != "AUTH_EVENTS_"+string(ns.ns) {
		t.Fatalf("streams of namespace %s: %v, want [AUTH_EVENTS_%[1]s]", ns.ns, mine)
	}
}

func TestRelayPublishesPendingRows(t *testing.T) {
	db, _ := testDB(t)
	ns := sharedNATS(t)
	nc, js := ns.connect(t)
	ns.ensureStream(t, js)
	keys, _ := testKeyring(t, "k1")
	published := ns.countPublishes(t, nc)
	reg := prometheus.NewRegistry()
	relay := ns.fastRelay(t, db, js, WithMetrics(reg))
	ctx := context.Background()

	const raw = "raw-verification-token-0123456789"
	evs := enqueue(t, db, keys, 3, "auth.email.verification_requested", func(i int) map[string]any {
		p := userPayload(i)
		p["token"] = fmt.Sprintf("%s-%d", raw, i)
		return p
	})
	evs = append(evs, enqueue(t, db, keys, 2, "auth.admin.user_disabled", func(i int) map[string]any {
		return map[string]any{"user_id": "target", "actor_id": "admin"}
	})...)
	if n, err := relay.Pending(ctx); err != nil || n != 5 {
		t.Fatalf("Pending = %d, %v", n, err)
	}
	if v := metricValue(t, reg, "outbox_pending"); v != 5 {
		t.Fatalf("outbox_pending = %v", v)
	}
	if v := metricValue(t, reg, "outbox_oldest_pending_age_seconds"); v < 0 || v > 60 {
		t.Fatalf("outbox_oldest_pending_age_seconds = %v", v)
	}

	if n, err := relay.PublishPending(ctx); err != nil || n != 5 {
		t.Fatalf("PublishPending = %d, %v; want 5", n, err)
	}
	msgs := ns.streamMsgs(t, js)
	if len(msgs) != 5 {
		t.Fatalf("%d messages on the stream, want 5", len(msgs))
	}
	for i, m := range msgs {
		want := evs[i] // ORDER BY id: UUIDv7 ids publish in the order they were written
		if m.ID != want.ID || m.Subject != ns.ns.Subject(want.Type) {
			t.Fatalf("message %d: id %s subject %s, want %s %s", i, m.ID, m.Subject, want.ID, want.Type)
		}
		var got Envelope
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatalf("message %d is not an envelope: %s", i, m.Data)
		}
		if got.ID != want.ID || got.Type != want.Type || got.UserID != want.UserID || got.ActorID != want.ActorID ||
			got.RequestID != want.RequestID || !got.OccurredAt.Equal(want.OccurredAt) || !jsonEqual(got.Payload, want.Payload) {
			t.Fatalf("message %d = %s, want %+v", i, m.Data, want)
		}
		if strings.Contains(string(m.Data), raw) {
			t.Fatalf("message %d carries the raw token: %s", i, m.Data)
		}
		if got.Type == "auth.email.verification_requested" {
			if tok, err := got.Token(keys); err != nil || tok != fmt.Sprintf("%s-%d", raw, i) {
				t.Fatalf("message %d token = %q, %v", i, tok, err)
			}
		}
		r := row(t, db, want.ID)
		if r.PublishedAt == nil || r.Payload != "{}" || r.Attempts != 0 {
			t.Fatalf("row %s after publishing = %+v, want sent with payload {}", want.ID, r)
		}
	}
	// Nothing is published twice, by this relay or by the next batch.
	if n, err := relay.PublishPending(ctx); err != nil || n != 0 {
		t.Fatalf("second PublishPending = %d, %v; want 0", n, err)
	}
	for id, n := range published.snapshot(t, nc) {
		if n != 1 {
			t.Fatalf("event %s was published %d times", id, n)
		}
	}
	if v := metricValue(t, reg, "outbox_published_total"); v != 5 {
		t.Fatalf("outbox_published_total = %v", v)
	}
	if v := metricValue(t, reg, "outbox_publish_failures_total"); v != 0 {
		t.Fatalf("outbox_publish_failures_total = %v", v)
	}
	if n, _ := relay.Pending(ctx); n != 0 || metricValue(t, reg, "outbox_pending") != 0 ||
		metricValue(t, reg, "outbox_oldest_pending_age_seconds") != 0 {
		t.Fatalf("Pending = %d after publishing everything", n)
	}
	// A second relay in the same process shares the collectors.
	_ = ns.fastRelay(t, db, js, WithMetrics(reg))
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestRelayKeepsRowsWhileNATSIsDown(t *testing.T) {
	db, _ := testDB(t)
	ns := startNATS(t)
	_, js := ns.connect(t)
	ns.ensureStream(t, js)
	keys, _ := testKeyring(t, "k1")
	reg := prometheus.NewRegistry()
	// Waits long enough to see that a row is not retried before its time, with room for
	// a slow batch under -race on a loaded machine (300 ms was not: CI saw a row already
	// due when it was read back).
	relay := ns.fastRelay(t, db, js, WithMetrics(reg), WithBackoff(time.Second, 4*time.Second))
	ctx := context.Background()

	ns.Stop()
	evs := enqueue(t, db, keys, 3, "auth.email.password_reset_requested", func(i int) map[string]any {
		p := userPayload(i)
		p["token"] = "reset-token"
		return p
	})
	var last []rowState
	for attempt := 1; attempt <= 3; attempt++ {
		start := time.Now()
		n, err := relay.PublishPending(ctx)
		if err == nil || n != 0 {
			t.Fatalf("attempt %d with NATS down: PublishPending = %d, %v; want 0 and an error", attempt, n, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a batch with NATS down took %s: it must stop at the first failure", d)
		}
		var states []rowState
		for i, ev := range evs {
			r := row(t, db, ev.ID)
			if r.PublishedAt != nil || r.Payload == "{}" || r.Attempts != attempt || !r.NextAttempt.After(time.Now()) {
				t.Fatalf("attempt %d: row %d = %+v, want pending with %d attempts", attempt, i, r, attempt)
			}
			if last != nil && !r.NextAttempt.After(last[i].NextAttempt) {
				t.Fatalf("attempt %d: next_attempt_at did not move on: %v then %v", attempt, last[i].NextAttempt, r.NextAttempt)
			}
			states = append(states, r)
		}
		last = states
		// Not due yet: the next batch is empty.
		if n, err := relay.PublishPending(ctx); n != 0 || err != nil || row(t, db, evs[0].ID).Attempts != attempt {
			t.Fatalf("a row was retried before its next_attempt_at (%d, %v)", n, err)
		}
		waitFor(t, 15*time.Second, "the rows to be due", func() bool {
			var due int
			_ = db.QueryRowContext(ctx, "SELECT count(*) FROM outbox WHERE next_attempt_at <= now()").Scan(&due)
			return due == len(evs)
		})
	}
	if v := metricValue(t, reg, "outbox_publish_failures_total"); v < 3 {
		t.Fatalf("outbox_publish_failures_total = %v, want one per failed batch at least", v)
	}

	// NATS comes back on the same port with the same store: each event is on the
	// stream exactly once, even if a publish buffered during the outage went out too.
	ns.Start()
	waitFor(t, 15*time.Second, "the relay to publish after the outage", func() bool {
		_, _ = relay.PublishPending(ctx)
		return pending(t, db) == 0
	})
	counts := countByID(ns.streamMsgs(t, js))
	for _, ev := range evs {
		if counts[ev.ID] != 1 {
			t.Fatalf("event %s is on the stream %d times, want 1 (%v)", ev.ID, counts[ev.ID], counts)
		}
		if r := row(t, db, ev.ID); r.Payload != "{}" || r.PublishedAt == nil {
			t.Fatalf("row %s = %+v", ev.ID, r)
		}
	}
	if len(counts) != len(evs) {
		t.Fatalf("stream holds %v, want exactly the %d events", counts, len(evs))
	}
}

func TestRelayRunStartsWhileNATSIsDown(t *testing.T) {
	db, _ := testDB(t)
	ns := startNATS(t)
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ns.Stop() // down before the stream was ever created
	keys, _ := testKeyring(t, "k1")
	evs := enqueue(t, db, keys, 5, "auth.user.registered", userPayload)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ns.fastRelay(t, db, js).Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	time.Sleep(500 * time.Millisecond)
	if n := pending(t, db); n != len(evs) {
		t.Fatalf("%d pending with NATS down, want %d", n, len(evs))
	}
	ns.Start()
	waitFor(t, 20*time.Second, "Run to create the stream and publish", func() bool { return pending(t, db) == 0 })
	counts := countByID(ns.streamMsgs(t, js))
	for _, ev := range evs {
		if counts[ev.ID] != 1 {
			t.Fatalf("event %s on the stream %d times", ev.ID, counts[ev.ID])
		}
	}

	// Run keeps going: an event written later is published within a poll or two.
	later := enqueue(t, db, keys, 1, "auth.user.registered", userPayload)[0]
	waitFor(t, 5*time.Second, "Run to publish a later event", func() bool { return row(t, db, later.ID).PublishedAt != nil })

	// The stream deleted under a running relay is created again.
	if err := js.DeleteStream(context.Background(), ns.ns.Stream(StreamName)); err != nil {
		t.Fatal(err)
	}
	again := enqueue(t, db, keys, 1, "auth.user.registered", userPayload)[0]
	waitFor(t, 20*time.Second, "Run to recreate the stream", func() bool { return row(t, db, again.ID).PublishedAt != nil })
	if counts := countByID(ns.streamMsgs(t, js)); counts[again.ID] != 1 {
		t.Fatalf("after recreating the stream: %v", counts)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}

func TestRelaysRacingPublishEachRowOnce(t *testing.T) {
	db, url := testDB(t)
	ns := sharedNATS(t)
	nc, js := ns.connect(t)
	ns.ensureStream(t, js)
	published := ns.countPublishes(t, nc)
	keys, _ := testKeyring(t, "k1")
	const rows = 200
	evs := enqueue(t, db, keys, rows, "auth.email.verification_requested", func(i int) map[string]any {
		p := userPayload(i)
		p["token"] = fmt.Sprint("tok-", i)
		return p
	})

	// Two relays as two replicas: their own database pools and NATS connections.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	start := make(chan struct{})
	for r := 0; r < 2; r++ {
		_, rjs := ns.connect(t)
		relay := ns.fastRelay(t, openDB(t, url), rjs, WithBatchSize(7))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for empty := 0; empty < 3; {
				n, err := relay.PublishPending(context.Background())
				if err != nil {
					t.Errorf("PublishPending: %v", err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
				if n == 0 {
					empty++
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := pending(t, db); n != 0 || total != rows {
		t.Fatalf("%d pending, %d published in total; want 0 and %d", n, total, rows)
	}
	seen := published.snapshot(t, nc)
	onStream := countByID(ns.streamMsgs(t, js))
	for _, ev := range evs {
		if seen[ev.ID] != 1 || onStream[ev.ID] != 1 {
			t.Fatalf("event %s: published %d times, on the stream %d times; want 1 and 1", ev.ID, seen[ev.ID], onStream[ev.ID])
		}
	}
	if len(seen) != rows || len(onStream) != rows {
		t.Fatalf("%d published, %d on the stream; want %d", len(seen), len(onStream), rows)
	}
}

func TestRelayMarksDuplicateAckAsSent(t *testing.T) {
	db, _ := testDB(t)
	ns := sharedNATS(t)
	_, js := ns.connect(t)
	ns.ensureStream(t, js)
	keys, _ := testKeyring(t, "k1")
	ctx := context.Background()
	ev := enqueue(t, db, keys, 1, "auth.user.email_verified", userPayload)[0]

	// A relay that published the row and died before its commit: the stream has it.
	data, _ := json.Marshal(ev)
	msg := &nats.Msg{Subject: ns.ns.Subject(ev.Type), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if n, err := ns.fastRelay(t, db, js).PublishPending(ctx); n != 1 || err != nil {
		t.Fatalf("PublishPending = %d, %v; want the duplicate counted as published", n, err)
	}
	if r := row(t, db, ev.ID); r.PublishedAt == nil || r.Payload != "{}" || r.Attempts != 0 {
		t.Fatalf("row = %+v, want sent", r)
	}
	if counts := countByID(ns.streamMsgs(t, js)); len(counts) != 1 || counts[ev.ID] != 1 {
		t.Fatalf("stream holds %v, want the event once", counts)
	}
}

func TestRelayRetriesWhatTheStreamRejects(t *testing.T) {
	db, _ := testDB(t)
	ns := sharedNATS(t)
	_, js := ns.connect(t)
	ns.ensureStream(t, js)
	keys, _ := testKeyring(t, "k1")
	ctx := context.Background()
	relay := ns.fastRelay(t, db, js)

	// One event the stream refuses (too large) fails alone; the others go out.
	cfg := ns.ns.StreamConfig()
	cfg.MaxMsgSize = 2048
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	small := enqueue(t, db, keys, 1, "auth.user.registered", userPayload)[0]
	big := enqueue(t, db, keys, 1, "auth.user.registered", func(int) map[string]any {
		return map[string]any{"user_id": "u", "blob": strings.Repeat("x", 4096)}
	})[0]
	small2 := enqueue(t, db, keys, 1, "auth.user.registered", userPayload)[0]
	if n, err := relay.PublishPending(ctx); n != 2 || err != nil {
		t.Fatalf("PublishPending = %d, %v; want 2 published and no error", n, err)
	}
	for _, id := range []string{small.ID, small2.ID} {
		if row(t, db, id).PublishedAt == nil {
			t.Fatalf("row %s is not sent", id)
		}
	}
	if r := row(t, db, big.ID); r.PublishedAt != nil || r.Attempts != 1 || !r.NextAttempt.After(time.Now().Add(-time.Second)) {
		t.Fatalf("rejected row = %+v, want pending, 1 attempt, rescheduled", r)
	}

	// A full stream that refuses every new message: every row is retried with backoff
	// and PublishPending says so; once there is room again they go out.
	cfg = ns.ns.StreamConfig()
	cfg.MaxMsgs = 2
	cfg.Discard = jetstream.DiscardNew
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	full := enqueue(t, db, keys, 3, "auth.user.registered", userPayload)
	if _, err := db.ExecContext(ctx, "DELETE FROM outbox WHERE id = ?", big.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := relay.PublishPending(ctx); n != 0 || err == nil {
		t.Fatalf("PublishPending on a full stream = %d, %v; want 0 and an error", n, err)
	}
	for _, ev := range full {
		if r := row(t, db, ev.ID); r.PublishedAt != nil || r.Attempts != 1 {
			t.Fatalf("row on a full stream = %+v", r)
		}
	}
	ns.ensureStream(t, js) // back to the explicit limits
	waitFor(t, 10*time.Second, "the rows refused by a full stream", func() bool {
		_, _ = relay.PublishPending(ctx)
		return pending(t, db) == 0
	})
	counts := countByID(ns.streamMsgs(t, js))
	for _, ev := range full {
		if counts[ev.ID] != 1 {
			t.Fatalf("event %s on the stream %d times", ev.ID, counts[ev.ID])
		}
	}
}
