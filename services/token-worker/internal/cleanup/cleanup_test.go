package cleanup_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talentforge/auth/pkg/postgres"
	"github.com/talentforge/auth/services/token-worker/internal/cleanup"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	workertest.DropDatabase()
	os.Exit(code)
}

func TestRunOnce(t *testing.T) {
	db, err := postgres.Open(workertest.Database(t), nil, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	user := uuid.New()
	exec("INSERT INTO users (id, email) VALUES (?, ?)", user, "cleanup-"+workertest.RandomHex(4)+"@example.com")
	tokens := map[string]string{ // name -> extra columns
		"expired":      "expires_at = now() - interval '1 minute'",
		"used":         "expires_at = now() + interval '1 hour', used_at = now()",
		"live":         "expires_at = now() + interval '1 hour'",
		"live-long":    "expires_at = now() + interval '24 hours'",
		"expired-used": "expires_at = now() - interval '2 days', used_at = now() - interval '2 days'",
	}
	run := workertest.RandomHex(4) // token hashes of this run's own
	for name, set := range tokens {
		exec("INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at) VALUES (sha256(?::bytea), ?, 'password_reset', now())", run+name, user)
		exec("UPDATE one_time_tokens SET "+set+" WHERE token_hash = sha256(?::bytea)", run+name)
	}
	outbox := map[string]string{
		"old-published":    "created_at = now() - interval '9 days', published_at = now() - interval '8 days'",
		"recent-published": "created_at = now() - interval '1 day', published_at = now() - interval '1 day'",
		"old-pending":      "created_at = now() - interval '30 days', published_at = NULL",
		"new-pending":      "published_at = NULL",
	}
	ids := map[string]uuid.UUID{}
	for name, set := range outbox {
		ids[name] = uuid.New()
		exec("INSERT INTO outbox (id, subject, payload) VALUES (?, 'auth.user.registered', '{}')", ids[name])
		exec("UPDATE outbox SET "+set+" WHERE id = ?", ids[name])
	}
	oldEmail, newEmail := uuid.New(), uuid.New()
	exec(`INSERT INTO sent_emails (event_id, kind, recipient, state, created_at) VALUES
		(?, 'verification', 'a@example.com', 'sent', now() - interval '31 days'), (?, 'verification', 'a@example.com', 'sent', now() - interval '6 days')`,
		oldEmail, newEmail)

	endpoint := uuid.New()
	exec(`INSERT INTO webhook_endpoints (id, url, events, secret_sealed) VALUES (?, 'https://hooks.example.com/', '{auth.user.registered}', '{}')`, endpoint)
	deliveries := map[string]string{ // name -> extra columns
		"old-succeeded":        "status = 'succeeded', finished_at = now() - interval '31 days'",
		"old-cancelled":        "status = 'cancelled', finished_at = now() - interval '31 days'",
		"old-dead-published":   "status = 'dead', finished_at = now() - interval '31 days', dead_lettered_at = now() - interval '31 days'",
		"old-dead-unpublished": "status = 'dead', finished_at = now() - interval '31 days'",
		"recent-succeeded":     "status = 'succeeded', finished_at = now() - interval '29 days'",
		"old-pending":          "created_at = now() - interval '40 days'",
	}
	deliveryIDs := map[string]uuid.UUID{}
	for name, set := range deliveries {
		deliveryIDs[name] = uuid.New()
		exec(`INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body) VALUES (?, ?, ?, 'auth.user.registered', '{}')`,
			deliveryIDs[name], endpoint, uuid.New())
		exec("UPDATE webhook_deliveries SET "+set+" WHERE id = ?", deliveryIDs[name])
	}

	reg := prometheus.NewRegistry()
	c := cleanup.New(db, cleanup.WithBatch(1), cleanup.WithMetrics(reg), // batches of one: the loop must go on
		cleanup.WithWebhookRetention(30*24*time.Hour))
	res, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res["one_time_tokens"] < 3 || res["outbox"] < 1 || res["sent_emails"] < 1 {
		t.Errorf("deleted %v, want at least 3 tokens, 1 outbox row, 1 sent email", res)
	}
	exists := func(q string, arg any) bool {
		var ok bool
		if err := db.QueryRowContext(ctx, "SELECT EXISTS ("+q+")", arg).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for name := range tokens {
		want := name == "live" || name == "live-long"
		if got := exists("SELECT 1 FROM one_time_tokens WHERE token_hash = sha256(?::bytea)", run+name); got != want {
			t.Errorf("token %s kept = %v, want %v", name, got, want)
		}
	}
	for name, id := range ids {
		want := name != "old-published"
		if got := exists("SELECT 1 FROM outbox WHERE id = ?", id); got != want {
			t.Errorf("outbox row %s kept = %v, want %v", name, got, want)
		}
	}
	if exists("SELECT 1 FROM sent_emails WHERE event_id = ?", oldEmail) || !exists("SELECT 1 FROM sent_emails WHERE event_id = ?", newEmail) {
		t.Error("sent_emails: want the 31-day-old row gone and the 6-day-old one kept")
	}
	for name, id := range deliveryIDs {
		want := name == "old-dead-unpublished" || name == "recent-succeeded" || name == "old-pending"
		if got := exists("SELECT 1 FROM webhook_deliveries WHERE id = ?", id); got != want {
			t.Errorf("webhook delivery %s kept = %v, want %v", name, got, want)
		}
	}
	again, err := c.RunOnce(ctx)
	if err != nil || again["one_time_tokens"]+again["outbox"]+again["sent_emails"]+again["webhook_deliveries"] != 0 {
		t.Errorf("second pass deleted %v, %v; want nothing", again, err)
	}
}
