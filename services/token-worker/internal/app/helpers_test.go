package app_test

import (
	"context"
	"github.com/talentforge/auth/pkg/keyring"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/services/token-worker/internal/workertest"
)

// rig is one test's own NATS (or namespace on it), relay, keys and worker.
type rig struct {
	nats   *workertest.NATS
	relay  *workertest.SMTP
	js     jetstream.JetStream
	spec   string
	keys   *keyring.Keyring
	worker *workertest.Worker
}

// newRig runs on the machine's NATS, in a namespace of the test's own.
func newRig(t *testing.T, env workertest.Env) *rig {
	t.Helper()
	return newRigOn(t, workertest.SharedNATS(t), env)
}

// newRigOn runs on n: StartNATS for a test that stops NATS.
func newRigOn(t *testing.T, n *workertest.NATS, env workertest.Env) *rig {
	t.Helper()
	r := &rig{nats: n, relay: workertest.StartSMTP(t)}
	r.js = r.nats.JetStream(t)
	r.spec, r.keys = workertest.Keys(t, "k1")
	r.worker = workertest.StartWorker(t, r.nats, r.relay, r.spec, env)
	return r
}

func address(t *testing.T, who string) string {
	return who + "-" + workertest.RandomHex(4) + "@example.com"
}

// event builds an envelope exactly as the auth service does, the token sealed.
func event(t *testing.T, keys *keyring.Keyring, typ string, payload map[string]any) events.Envelope {
	t.Helper()
	ev, err := events.NewEnvelope(keys, uuid.Must(uuid.NewV7()).String(), typ, time.Now(), "req-"+workertest.RandomHex(4), payload)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func token() string { return "tok_" + workertest.RandomHex(32) }

// settled waits until the consumer has nothing pending or unacknowledged.
func settled(t *testing.T, n *workertest.NATS, js jetstream.JetStream, durable string, delivered uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	workertest.Eventually(t, 20*time.Second, durable+" to settle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, n.Namespace.Stream(events.StreamName), durable)
		if err != nil {
			return false
		}
		info, err = c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= delivered
	})
	return info
}

// metric returns the value of the series name{labels}, 0 when it does not exist.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := series(t, reg, name, labels)
	return v
}

// series returns the value of the counter or gauge name{labels} and whether it exists.
func series(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

func jetstreamConsumer(filter string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: "test-" + workertest.RandomHex(3), FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy}
}
