package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

// /readyz tells whether the consumers consume, not only whether the NATS connection is
// up: 503 naming each consumer while it is not set up on the stream (a NATS without
// JetStream) or while its fetches keep failing (JetStream gone under a live
// connection), 200 once all consume; token_worker_consumer_ready follows.
func TestReadyzNamesConsumersThatDoNotConsume(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t, natstest.WithoutJetStream())
	// NATS_URL names the test's own server (no namespace: it is the test's alone).
	w := workertest.StartWorker(t, &workertest.NATS{}, workertest.StartSMTP(t), func() string {
		spec, _ := workertest.Keys(t, "k1")
		return spec
	}(), workertest.Env{"NATS_URL": ns.URL()})
	reg := w.App.Metrics.Registry
	readyGauge := func(label string) float64 {
		v, ok := series(t, reg, "token_worker_consumer_ready", map[string]string{"consumer": label})
		if !ok {
			t.Fatalf("no token_worker_consumer_ready{consumer=%q} series", label)
		}
		return v
	}
	notReady := func(what string) string {
		t.Helper()
		var body string
		workertest.Eventually(t, 30*time.Second, "/readyz to name every consumer "+what, func() bool {
			var code int
			code, body = w.Get(t, "/readyz")
			// The connection is up: only the consumer checks can tell.
			return code == 503 && strings.Contains(body, `"nats":"ok"`) && strings.Contains(body, `"postgres":"ok"`) &&
				strings.Contains(body, `"consumer token-worker-email":"unavailable"`) &&
				strings.Contains(body, `"consumer token-worker-audit":"unavailable"`) &&
				strings.Contains(body, `"consumer token-worker-sms":"unavailable"`)
		})
		return body
	}
	ready := func(what string) {
		t.Helper()
		workertest.Eventually(t, 40*time.Second, "/readyz to answer 200 "+what, func() bool {
			code, body := w.Get(t, "/readyz")
			return code == 200 && strings.Contains(body, `"consumer token-worker-email":"ok"`) &&
				strings.Contains(body, `"consumer token-worker-audit":"ok"`) && strings.Contains(body, `"consumer token-worker-sms":"ok"`)
		})
		for _, label := range []string{"email", "audit", "sms"} {
			if v := readyGauge(label); v != 1 {
				t.Errorf("%s: token_worker_consumer_ready{consumer=%q} = %v, want 1", what, label, v)
			}
		}
	}
	ctx := context.Background()

	// A NATS without JetStream: the consumers cannot be set up.
	notReady("before they are set up")
	if err := w.App.Email.Ready(ctx); err == nil || !strings.Contains(err.Error(), "not set up") {
		t.Errorf("Email.Ready before set-up = %v, want not set up", err)
	}
	for _, label := range []string{"email", "audit", "sms"} {
		if v := readyGauge(label); v != 0 {
			t.Errorf("before set-up: token_worker_consumer_ready{consumer=%q} = %v, want 0", label, v)
		}
	}

	// JetStream comes: the consumers are set up and consume.
	ns.RestartWithJetStream(true)
	ready("once consuming")

	// JetStream goes away under a connection that comes back at once: every fetch fails.
	ns.RestartWithJetStream(false)
	notReady("while their fetches fail")
	for name, c := range map[string]interface{ Ready(context.Context) error }{"email": w.App.Email, "audit": w.App.Audit, "sms": w.App.SMS} {
		if err := c.Ready(ctx); err == nil || !strings.Contains(err.Error(), "fetch failing") {
			t.Errorf("%s Ready while fetches fail = %v, want fetch failing", name, err)
		}
	}
	for _, label := range []string{"email", "audit", "sms"} {
		if v := readyGauge(label); v != 0 {
			t.Errorf("fetches failing: token_worker_consumer_ready{consumer=%q} = %v, want 0", label, v)
		}
	}

	// JetStream is back with its store: consuming again.
	ns.RestartWithJetStream(true)
	ready("once JetStream is back")
}
