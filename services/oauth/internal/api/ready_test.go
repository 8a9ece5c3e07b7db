package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talentforge/auth/migrations/migratetest"
	"github.com/talentforge/auth/pkg/natstest"
)

// /readyz names nats while the outbox relay cannot publish, though the NATS connection
// is up (a NATS without JetStream), and answers 200 once JetStream is there.
func TestReadyzNamesNATSWhileTheRelayCannotPublish(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.WithoutJetStream())
	// A database of the test's own: the relay clears what it publishes, and the other
	// tests read their events in the outbox.
	name, dbURL, err := migratetest.Create("oauth_test_")
	t.Cleanup(func() { migratetest.Drop(name) })
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, map[string]string{"NATS_URL": ns.URL(), "DATABASE_URL": dbURL})
	stop := e.app.Relay.Start(context.Background())
	t.Cleanup(func() { _ = stop() })
	readyz := func() (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		res, err := c.Get(e.url + "/readyz")
		if err != nil {
			t.Fatalf("GET /readyz: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	waitFor(t, 30*time.Second, "/readyz to name nats without JetStream", func() bool {
		// The connection is up: only the relay can tell.
		if e.app.NATS.Status() != nats.CONNECTED {
			return false
		}
		code, body := readyz()
		return code == 503 && strings.Contains(body, `"nats":"unavailable"`) &&
			strings.Contains(body, `"postgres":"ok"`) && strings.Contains(body, `"redis":"ok"`)
	})
	if err := e.app.Relay.Healthy(context.Background()); err == nil {
		t.Error("Relay.Healthy() = nil without JetStream")
	}

	ns.RestartWithJetStream(true)
	waitFor(t, 40*time.Second, "/readyz to answer 200 with JetStream", func() bool {
		code, _ := readyz()
		return code == 200
	})
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
