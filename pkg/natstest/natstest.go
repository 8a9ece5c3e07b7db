// Package natstest runs an in-process NATS server with JetStream (the real one, from
// nats-server) of one test's own: for tests that take NATS down and bring it back.
package natstest

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server restarts on the same port with the same store, so clients reconnect and the
// stream keeps what it had.
type Server struct {
	t    testing.TB
	mu   sync.Mutex
	port int
	dir  string
	srv  *server.Server
}

// Run starts a server on a free port; it stops when the test ends.
func Run(t testing.TB) *Server {
	t.Helper()
	n := &Server{t: t, port: -1, dir: t.TempDir()}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// URL is the server's client URL, the same across restarts.
func (n *Server) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", n.port)
}

// Start (re)starts a stopped server.
func (n *Server) Start() {
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
func (n *Server) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// Restart stops the server and starts it again on the same port with the same store.
func (n *Server) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}
