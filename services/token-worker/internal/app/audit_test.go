package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/token-worker/internal/app"
	"github.com/talentforge/auth/services/token-worker/internal/audit"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

func TestAuditRecordsEverySecurityEvent(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	user := uuid.Must(uuid.NewV7()).String()
	admin := uuid.Must(uuid.NewV7()).String()
	to := address(t, "ivy")
	types := []struct {
		typ     string
		payload map[string]any
	}{
		{"auth.user.registered", map[string]any{"user_id": user, "ip": "203.0.113.7", "user_agent": "test"}},
		{"auth.email.verification_requested", map[string]any{"user_id": user, "email": to, "name": "Ivy", "token": token(), "expires_at": time.Now().Add(time.Hour)}},
		{"auth.user.email_verified", map[string]any{"user_id": user, "email": to, "name": "Ivy"}},
		{"auth.user.login_succeeded", map[string]any{"user_id": user, "ip": "203.0.113.7", "amr": []string{"pwd"}}},
		{"auth.user.login_failed", map[string]any{"user_id": user, "ip": "203.0.113.7", "reason": "invalid_credentials"}},
		{"auth.session.refresh_reused", map[string]any{"user_id": user, "session_id": "s1"}},
		{"auth.user.logged_out", map[string]any{"user_id": user, "session_id": "s1"}},
		{"auth.email.password_reset_requested", map[string]any{"user_id": user, "email": to, "name": "Ivy", "token": token(), "expires_at": time.Now().Add(time.Hour)}},
		{"auth.user.password_changed", map[string]any{"user_id": user, "email": to, "name": "Ivy", "how": "reset"}},
		{"auth.admin.roles_changed", map[string]any{"user_id": user, "actor_id": admin, "roles": []string{"user", "recruiter"}}},
		{"auth.admin.user_disabled", map[string]any{"user_id": user, "actor_id": admin}},
	}
	var sent []events.Envelope
	for i, tt := range types {
		ev := event(t, r.keys, tt.typ, tt.payload)
		ev.OccurredAt = time.Now().Add(time.Duration(i-len(types)) * time.Minute).UTC().Truncate(time.Microsecond)
		r.nats.Publish(t, r.js, ev, "")
		r.nats.Publish(t, r.js, ev, ev.ID+"-redelivered") // the same event again
		sent = append(sent, ev)
	}
	settled(t, r.nats, r.js, app.AuditConsumer, uint64(2*len(types)))

	entries, err := audit.NewStore(r.worker.App.DB).ForUser(context.Background(), user, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(types) {
		t.Fatalf("%d audit entries for the user, want %d (one per event, redeliveries dropped)", len(entries), len(types))
	}
	for i, e := range entries { // newest first
		want := sent[len(sent)-1-i]
		if e.ID.String() != want.ID || e.Type != want.Type || !e.OccurredAt.Equal(want.OccurredAt) || e.RequestID != want.RequestID {
			t.Errorf("entry %d = %s %s %s %q, want %s %s %s %q", i, e.ID, e.Type, e.OccurredAt, e.RequestID,
				want.ID, want.Type, want.OccurredAt, want.RequestID)
		}
		if e.UserID.UUID.String() != user {
			t.Errorf("%s: user_id = %v", e.Type, e.UserID)
		}
		if strings.HasPrefix(e.Type, "auth.admin.") != (e.ActorID.Valid && e.ActorID.UUID.String() == admin) {
			t.Errorf("%s: actor_id = %v", e.Type, e.ActorID)
		}
		if strings.Contains(string(e.Payload), "token") {
			t.Errorf("%s: the audit payload holds a token: %s", e.Type, e.Payload)
		}
		var p map[string]any
		if err := json.Unmarshal(e.Payload, &p); err != nil || p["user_id"] != user {
			t.Errorf("%s: payload %s", e.Type, e.Payload)
		}
	}
	var rows int
	if err := workertest.Conn(t).QueryRow(context.Background(), "SELECT count(*) FROM audit_log WHERE user_id = $1", user).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(types) {
		t.Errorf("%d rows in audit_log, want %d", rows, len(types))
	}
}

func TestPartitionsAheadAndHealth(t *testing.T) {
	t.Parallel()
	r := newRigOn(t, workertest.StartNATS(t), nil) // NATS goes down below
	conn := workertest.Conn(t)
	now := time.Now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	want := []string{audit.PartitionName(first), audit.PartitionName(first.AddDate(0, 1, 0)), audit.PartitionName(first.AddDate(0, 2, 0)), "audit_log_default"}
	workertest.Eventually(t, 10*time.Second, "the partitions of this month and the next two", func() bool {
		for _, p := range want {
			var ok bool
			if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_inherits
				WHERE inhrelid = to_regclass($1) AND inhparent = 'audit_log'::regclass)`, p).Scan(&ok); err != nil || !ok {
				return false
			}
		}
		return true
	})

	if code, body := r.worker.Get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, body)
	}
	// Ready once both consumers are set up, which may take a moment after start.
	workertest.Eventually(t, 15*time.Second, "/readyz to answer 200", func() bool {
		code, body := r.worker.Get(t, "/readyz")
		return code == 200 && strings.Contains(body, `"postgres":"ok"`) && strings.Contains(body, `"nats":"ok"`)
	})
	// The description lists exactly the routes the server has.
	code, body := r.worker.Get(t, "/openapi.json")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("/openapi.json = %d %.200s", code, body)
	}
	described := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			described[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, rt := range r.worker.App.Server.Echo.Routes() {
		if !described[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is not in openapi.yaml", rt.Method, rt.Path)
		}
		delete(described, rt.Method+" "+rt.Path)
	}
	for extra := range described {
		t.Errorf("openapi.yaml describes %s, which the server does not serve", extra)
	}
	to := address(t, "jo")
	r.nats.Publish(t, r.js, event(t, r.keys, "auth.user.email_verified", map[string]any{"email": to, "name": "Jo"}), "")
	r.relay.WaitFor(t, 1, 10*time.Second)
	workertest.Eventually(t, 5*time.Second, "every named metric on /metrics", func() bool {
		_, body := r.worker.Get(t, "/metrics")
		for _, name := range []string{
			`token_worker_events_consumed_total{consumer="email",result="sent",type="auth.user.email_verified"} 1`,
			`token_worker_events_consumed_total{consumer="audit",result="recorded",type="auth.user.email_verified"} 1`,
			`token_worker_emails_sent_total{kind="email_verified"} 1`,
			`token_worker_consumer_pending{consumer="email"} 0`,
			`token_worker_consumer_ack_pending{consumer="audit"} 0`,
			`token_worker_smtp_breaker_state 0`,
		} {
			if !strings.Contains(body, name) {
				return false
			}
		}
		return true
	})

	// NATS goes away: not ready; it comes back: ready, and events flow again.
	r.nats.Stop()
	workertest.Eventually(t, 10*time.Second, "/readyz to report NATS down", func() bool {
		code, body := r.worker.Get(t, "/readyz")
		return code == 503 && strings.Contains(body, `"nats":"unavailable"`)
	})
	r.nats.Restart()
	workertest.Eventually(t, 15*time.Second, "/readyz to recover", func() bool {
		code, _ := r.worker.Get(t, "/readyz")
		return code == 200
	})
	again := address(t, "kim")
	r.nats.Publish(t, r.js, event(t, r.keys, "auth.user.email_verified", map[string]any{"email": again, "name": "Kim"}), "")
	msgs := r.relay.WaitFor(t, 2, 20*time.Second)
	if msgs[1].To[0] != again {
		t.Errorf("after the NATS outage the email went to %v, want %s", msgs[1].To, again)
	}
}
