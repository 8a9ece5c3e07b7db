package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/auth/internal/apitest"
	"github.com/talentforge/auth/services/auth/internal/app"
)

func evRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "events-test-" + hex.EncodeToString(b)
}

func evScan(t testing.TB, e *apitest.Env, dst any, query string, args ...any) {
	t.Helper()
	if err := e.App.DB.NewRaw(query, args...).Scan(context.Background(), dst); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// evCheckEnvelope checks the fields every envelope carries.
func evCheckEnvelope(t testing.TB, env events.Envelope, rowID, subject, userID, actorID, requestID string) {
	t.Helper()
	if env.ID != rowID || env.Type != subject || env.UserID != userID || env.ActorID != actorID || env.RequestID != requestID {
		t.Fatalf("envelope id %q type %q user %q actor %q request %q; want %q %q %q %q %q",
			env.ID, env.Type, env.UserID, env.ActorID, env.RequestID, rowID, subject, userID, actorID, requestID)
	}
	if d := time.Since(env.OccurredAt); d < -time.Minute || d > time.Minute {
		t.Fatalf("occurred_at %s is not now", env.OccurredAt)
	}
	if v, err := json.Marshal(env); err != nil || !bytes.Contains(v, []byte(`"payload":{`)) {
		t.Fatalf("the payload is not a JSON object: %s", v)
	}
}

// evStreamMsg finds the message whose Nats-Msg-Id is id on the machine's stream, in
// the test's namespace.
func evStreamMsg(t testing.TB, e *apitest.Env, subject, id string, since time.Time) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(e.App.NATS)
	if err != nil {
		t.Fatal(err)
	}
	ns := e.Cfg.NATSNamespace
	s, err := js.Stream(ctx, ns.Stream(events.StreamName))
	if err != nil {
		t.Fatalf("stream %s: %v", ns.Stream(events.StreamName), err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{ns.Subject(subject)}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("event %s not found on the stream under %s: %v", id, subject, err)
		}
		if m.Headers().Get(jetstream.MsgIDHeader) == id {
			return m
		}
	}
}

// TestRegisterEventIsSealedAndRelayed follows one verification email from the request
// to the stream: the outbox row is the documented envelope with the token sealed, the
// relay publishes it with Nats-Msg-Id = id, and the row keeps no payload afterwards.
func TestRegisterEventIsSealedAndRelayed(t *testing.T) {
	since := time.Now().Add(-time.Second)
	// A database of its own: the relay publishes (and clears) every pending event.
	e := apitest.Start(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t)})
	email := apitest.Email("events")
	h := http.Header{}
	h.Set("X-Request-Id", evRequestID())
	r := e.Request(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": email, "password": apitest.Password, "name": "Ev"}, h)
	apitest.Expect(t, r, http.StatusAccepted, "")
	rid := r.Header.Get("X-Request-Id")
	if rid != h.Get("X-Request-Id") {
		t.Fatalf("X-Request-Id %q, want the one sent", rid)
	}

	subject := events.SubjectVerificationRequested
	tok := e.OutboxToken(email, subject) // opened with the service's EVENT_KEYS
	var all string
	evScan(t, e, &all, "SELECT COALESCE(string_agg(o::text, E'\\n'), '') FROM outbox o")
	if strings.Contains(all, tok) {
		t.Fatal("the raw verification token rests in the outbox")
	}

	var rowID, userID string
	evScan(t, e, &rowID, "SELECT id::text FROM outbox WHERE subject = ? AND payload->'payload'->>'email' = ?", subject, email)
	evScan(t, e, &userID, "SELECT id::text FROM users WHERE email = ?", email)
	env := e.OutboxEnvelope(email, subject)
	evCheckEnvelope(t, env, rowID, subject, userID, "", rid)
	payload := e.OutboxPayload(email, subject)
	if _, ok := payload["token"]; ok || payload["token_sealed"] == nil || payload["email"] != email || payload["user_id"] != userID {
		t.Fatalf("payload %v", payload)
	}
	// The sealed token is bound to its event.
	moved := env
	moved.ID = rowID[:len(rowID)-1] + "0"
	if moved.ID == rowID {
		moved.ID = rowID[:len(rowID)-1] + "1"
	}
	if _, err := moved.Token(e.App.EventKeys); err == nil {
		t.Fatal("the sealed token opens under another event id")
	}
	// Both events of the registration carry the request id.
	var registered []byte
	evScan(t, e, &registered, "SELECT payload FROM outbox WHERE subject = ? AND payload->>'user_id' = ?", events.SubjectRegistered, userID)
	var regEnv events.Envelope
	if err := json.Unmarshal(registered, &regEnv); err != nil || regEnv.RequestID != rid || regEnv.UserID != userID {
		t.Fatalf("registered event %s (%v)", registered, err)
	}

	e.RunRelay()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left int
		evScan(t, e, &left, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending after 20 s of relaying", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var cleared string
	evScan(t, e, &cleared, "SELECT payload::text FROM outbox WHERE id = ?", rowID)
	if cleared != "{}" {
		t.Fatalf("payload after publishing = %s, want {}", cleared)
	}

	m := evStreamMsg(t, e, subject, rowID, since)
	if want := e.Cfg.NATSNamespace.Subject(subject); m.Subject() != want {
		t.Fatalf("subject %q, want %q", m.Subject(), want)
	}
	if bytes.Contains(m.Data(), []byte(tok)) {
		t.Fatal("the published event carries the raw token")
	}
	var got events.Envelope
	if err := json.Unmarshal(m.Data(), &got); err != nil {
		t.Fatalf("published %s: %v", m.Data(), err)
	}
	evCheckEnvelope(t, got, rowID, subject, userID, "", rid)
	if opened, err := got.Token(e.App.EventKeys); err != nil || opened != tok {
		t.Fatalf("token of the published event = %q, %v", opened, err)
	}
	// What the worker opens is the working link token.
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/email/verify", map[string]string{"token": tok}, ""), http.StatusOK, "")
}

// TestAuditEventNamesActorAndUser: an admin action's envelope names the admin as the
// actor and the changed user as the user, with the request id.
func TestAuditEventNamesActorAndUser(t *testing.T) {
	adminEmail := apitest.Email("evadmin")
	e := apitest.Start(t, map[string]string{"ADMIN_EMAILS": adminEmail})
	e.Register(adminEmail)
	adm := e.Login(adminEmail, apitest.Password)
	if !slices.Contains(adm.User.Roles, "admin") {
		t.Fatalf("admin roles %v", adm.User.Roles)
	}
	_, target := e.NewUser(t)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+adm.AccessToken)
	h.Set("X-Request-Id", evRequestID())
	r := e.Request(http.MethodPost, "/v1/admin/users/"+target.User.ID+"/disable", nil, h)
	apitest.Expect(t, r, http.StatusNoContent, "")

	var raw []byte
	var rowID string
	evScan(t, e, &raw, "SELECT payload FROM outbox WHERE subject = ? AND payload->>'user_id' = ?", events.SubjectUserDisabled, target.User.ID)
	evScan(t, e, &rowID, "SELECT id::text FROM outbox WHERE subject = ? AND payload->>'user_id' = ?", events.SubjectUserDisabled, target.User.ID)
	var env events.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	evCheckEnvelope(t, env, rowID, events.SubjectUserDisabled, target.User.ID, adm.User.ID, r.Header.Get("X-Request-Id"))
	if _, err := env.Token(e.App.EventKeys); !errors.Is(err, events.ErrNoToken) {
		t.Fatalf("an audit event carries a token (%v)", err)
	}
}

// TestStartNeedsEventKeys: without a valid EVENT_KEYS the service does not start, and
// says so in one line naming the variable (never quoting a key).
func TestStartNeedsEventKeys(t *testing.T) {
	for _, keys := range []string{"", "dev:" + strings.Repeat("A", 20)} {
		cfg, err := config.Load("127.0.0.1:0", func(k string) (string, bool) {
			if k == "EVENT_KEYS" {
				return keys, true
			}
			return "", false
		})
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(context.Background(), cfg, zap.NewNop())
		if err == nil {
			_ = a.Close()
			t.Fatalf("EVENT_KEYS=%q: the service started", keys)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "EVENT_KEYS: ") || strings.Contains(msg, "\n") ||
			(keys != "" && strings.Contains(msg, strings.Repeat("A", 20))) {
			t.Fatalf("EVENT_KEYS=%q: error %q", keys, msg)
		}
	}
}

// TestNATSOutageLosesNoEmail (SECURITY-TESTS #72): with NATS down from the start,
// register and forgot-password answer as usual and their emails wait in the outbox;
// once NATS is back, exactly the expected email events reach the stream, once each.
func TestNATSOutageLosesNoEmail(t *testing.T) {
	ns := apitest.StartNATS(t)
	ns.Stop()
	e := apitest.Start(t, map[string]string{"DATABASE_URL": apitest.NewDatabase(t), "NATS_URL": ns.URL()})
	e.RunRelay()

	pending := apitest.Email("outage-pending")
	apitest.Expect(t, e.Do(http.MethodPost, "/v1/auth/register",
		map[string]string{"email": pending, "password": apitest.Password, "name": "P"}, ""), http.StatusAccepted, "")
	known := apitest.Email("outage-known")
	e.Register(known) // verifies through the outbox, NATS or not
	forgot := func(email string) *apitest.Response {
		return e.Do(http.MethodPost, "/v1/auth/password/forgot", map[string]string{"email": email}, "")
	}
	k, u := forgot(known), forgot(apitest.Email("outage-unknown"))
	if k.Status/100 != 2 || k.Status != u.Status || !bytes.Equal(k.Body, u.Body) {
		t.Fatalf("forgot-password with NATS down: known %d %s, unknown %d %s", k.Status, k.Body, u.Status, u.Body)
	}

	// The relay keeps trying; nothing is published, nothing is dropped.
	var want []string
	evScan(t, e, &want, "SELECT id::text FROM outbox WHERE subject LIKE 'auth.email.%' ORDER BY id")
	if len(want) != 3 { // pending's and known's verification, known's reset
		t.Fatalf("%d email events in the outbox, want 3", len(want))
	}
	time.Sleep(1500 * time.Millisecond)
	var left int
	evScan(t, e, &left, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
	if left < 3 {
		t.Fatalf("%d events pending with NATS down", left)
	}

	ns.Start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		evScan(t, e, &left, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending a minute after NATS came back", left)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The stream of this NATS holds exactly the three email events, once each.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m.Subject, "auth.email.") {
			got = append(got, m.Header.Get(jetstream.MsgIDHeader))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("email events on the stream %v, want %v", got, want)
	}
}
