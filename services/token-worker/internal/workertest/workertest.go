// Package workertest starts the real things the worker's tests run against: a migrated
// PostgreSQL database per test binary, the machine's NATS with a namespace per test (or
// a nats-server process of the test's own), a real SMTP server (go-smtp) on a socket,
// and the worker itself.
package workertest

import (
	"context"
	"encoding/json"
	"github.com/talentforge/auth/pkg/keyring"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/talentforge/auth/pkg/events"
	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/pkg/platformtest"
)

var databases = platformtest.NewDatabases("worker_test_")

// Database creates one migrated database for the test binary; DropDatabase drops it.
func Database(t testing.TB) string {
	t.Helper()
	return databases.Shared(t)
}

// DropDatabase removes the test binary's database; call it from TestMain.
func DropDatabase() { databases.Drop() }

// Conn opens a connection of the test's own to the test database.
func Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, Database(t))
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string { return platformtest.RandomHex(n) }

// NATS is where a test's events go: the machine's server with a namespace of the
// test's own (SharedNATS), or a nats-server process of the test's own in the default
// layout (StartNATS), which the test can stop and restart.
type NATS struct {
	*natstest.Server // nil on the shared server
	Namespace        events.Namespace
}

// SharedNATS is the machine's NATS (NATS_URL) with a namespace of the test's own.
func SharedNATS(t testing.TB) *NATS {
	return &NATS{Namespace: events.Namespace(natstest.Namespace(t))}
}

// StartNATS starts a nats-server process on a free port; it stops with the test.
func StartNATS(t testing.TB) *NATS { return &NATS{Server: natstest.Run(t)} }

// URL is the server's client URL.
func (n *NATS) URL() string {
	if n.Server == nil {
		return natstest.URL()
	}
	return n.Server.URL()
}

// JetStream connects a client of the test's own and makes sure the events stream exists.
func (n *NATS) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.Namespace.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	return js
}

// Publish publishes ev as the auth service does: subject = type (in the namespace),
// Nats-Msg-Id = msgID (the event id when empty).
func (n *NATS) Publish(t testing.TB, js jetstream.JetStream, ev events.Envelope, msgID string) {
	t.Helper()
	if msgID == "" {
		msgID = ev.ID
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, n.Namespace.Subject(ev.Type), data, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatalf("publish %s: %v", ev.Type, err)
	}
}

// Keys returns a fresh EVENT_KEYS value with one key and its keyring.
func Keys(t testing.TB, kid string) (string, *keyring.Keyring) {
	t.Helper()
	spec := platformtest.KeySpec(kid)
	k, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec, k
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
