package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/services/auth/internal/apitest"
)

// /readyz names nats while the outbox relay cannot publish, though the NATS connection
// is up: a NATS without JetStream (the stream cannot be ensured), then JetStream gone
// after the stream was ensured (an event gets no PubAck). With JetStream it is 200 and
// the event leaves the outbox.
func TestReadyzNamesNATSWhileTheRelayCannotPublish(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.WithoutJetStream())
	e := apitest.Start(t, map[string]string{"NATS_URL": ns.URL(), "DATABASE_URL": apitest.NewDatabase(t)})
	register := func() {
		t.Helper()
		r := e.Do(http.MethodPost, "/v1/auth/register", map[string]string{"email": apitest.Email("ready"), "password": apitest.Password}, "")
		apitest.Expect(t, r, http.StatusAccepted, "")
	}
	readyz := func() (int, string) {
		t.Helper()
		res, err := e.Client.Get(e.URL + "/readyz")
		if err != nil {
			t.Fatalf("GET /readyz: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	notReady := func(what string) {
		t.Helper()
		waitFor(t, 30*time.Second, "/readyz to name nats "+what, func() bool {
			// The connection is up: only the relay can tell.
			if e.App.NATS.Status() != nats.CONNECTED {
				return false
			}
			code, body := readyz()
			return code == 503 && strings.Contains(body, `"nats":"unavailable"`) &&
				strings.Contains(body, `"postgres":"ok"`) && strings.Contains(body, `"redis":"ok"`)
		})
		if err := e.App.Relay.Healthy(context.Background()); err == nil {
			t.Errorf("%s: Relay.Healthy() = nil", what)
		}
	}
	ready := func(what string) {
		t.Helper()
		waitFor(t, 40*time.Second, "/readyz to answer 200 "+what, func() bool {
			code, _ := readyz()
			return code == 200
		})
	}
	published := func(what string) {
		t.Helper()
		waitFor(t, 30*time.Second, "the outbox to empty "+what, func() bool {
			n, err := e.App.Relay.Pending(context.Background())
			return err == nil && n == 0
		})
	}

	register()
	e.RunRelay()
	notReady("without JetStream")

	ns.RestartWithJetStream(true)
	ready("with JetStream")
	published("with JetStream")

	// JetStream goes away after the stream was ensured: the next event gets no PubAck.
	ns.RestartWithJetStream(false)
	register()
	notReady("when an event gets no PubAck")
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
