package apitest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an in-process NATS server with JetStream, of one test's own: for tests that
// take NATS down and bring it back. It restarts on the same port with the same store,
// so clients reconnect and the stream keeps what it had. Pass URL() as NATS_URL to
// Start, which then does not insist that NATS answers.
type NATS struct {
	t    testing.TB
	mu   sync.Mutex
	port int
	dir  string
	srv  *server.Server
}

// StartNATS starts the server; it stops when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, port: -1, dir: t.TempDir()}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// URL is the server's client URL, the same across restarts.
func (n *NATS) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", n.port)
}

// Start (re)starts a stopped server.
func (n *NATS) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: n.port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: n.dir, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 4 << 30,
	})
	if err != nil {
		n.t.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats server did not start")
	}
	n.srv, n.port = srv, srv.Addr().(*net.TCPAddr).Port
}

// Stop shuts the server down, as an outage would.
func (n *NATS) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}
