// Package natstest gives tests the NATS servers we deploy on, never an in-process
// stand-in: the machine's server (NATS_URL, default nats://127.0.0.1:4222) with a
// namespace of the test's own, or, for a test that takes NATS down and brings it back,
// a nats-server process of its own (NATS_SERVER_BIN, default nats-server on the PATH)
// on a free port with its own store. CI runs the same tests a second time with both
// variables pointing at a current release, so every NATS test runs on 2.9 and on it.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// URL is the shared NATS server's client URL: NATS_URL, else the machine's.
func URL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// Namespace returns a NATS_NAMESPACE of the test's own on the shared server and
// deletes its streams (and so their consumers) when the test ends. It fails the test
// when the shared server does not answer with JetStream: CI starts it.
func Namespace(t testing.TB) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	ns := "t" + hex.EncodeToString(b)
	nc, err := nats.Connect(URL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("NATS must be running at %s (CI starts it): %v", URL(), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		t.Fatalf("NATS at %s has no JetStream (start it with -js): %v", URL(), err)
	}
	t.Cleanup(func() {
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := DeleteNamespace(ctx, js, ns); err != nil {
			t.Logf("delete the streams of namespace %s: %v", ns, err)
		}
	})
	return ns
}

// DeleteNamespace deletes every stream of namespace ns (named BASE_ns, as
// events.Namespace names them), and so their consumers; it returns how many it deleted.
func DeleteNamespace(ctx context.Context, js jetstream.JetStream, ns string) (int, error) {
	if ns == "" {
		return 0, errors.New("no namespace: the default layout is never deleted")
	}
	names := js.StreamNames(ctx)
	var mine []string
	for name := range names.Name() {
		if strings.HasSuffix(name, "_"+ns) {
			mine = append(mine, name)
		}
	}
	if err := names.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, name := range mine {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return n, fmt.Errorf("delete stream %s: %w", name, err)
		}
		n++
	}
	return n, nil
}

// Bin is the nats-server binary the tests start: NATS_SERVER_BIN, else nats-server.
func Bin() string {
	if b := os.Getenv("NATS_SERVER_BIN"); b != "" {
		return b
	}
	return "nats-server"
}

// Server is a nats-server process of one test's own. It restarts on the same port
// with the same store, so clients reconnect and the streams keep what they had.
type Server struct {
	t    testing.TB
	noJS bool
	mu   sync.Mutex
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Option configures a Server.
type Option func(*Server)

// WithoutJetStream starts a server with JetStream off: connections work, every
// JetStream request fails, as on a server someone started without -js.
func WithoutJetStream() Option { return func(s *Server) { s.noJS = true } }

// Run starts a server with JetStream on a free port; it stops when the test ends.
func Run(t testing.TB, opts ...Option) *Server {
	t.Helper()
	n := &Server{t: t, port: freePort(t), dir: t.TempDir()}
	for _, opt := range opts {
		opt(n)
	}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// URL is the server's client URL, the same across restarts.
func (n *Server) URL() string {
	return "nats://127.0.0.1:" + strconv.Itoa(n.port)
}

// Start (re)starts a stopped server.
func (n *Server) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return
	}
	bin, err := exec.LookPath(Bin())
	if err != nil {
		n.t.Fatalf("nats-server is needed for this test (apt-get install nats-server, or set NATS_SERVER_BIN): %v", err)
	}
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-l", filepath.Join(n.dir, "nats-server.log")}
	if !n.noJS {
		args = append(args, "-js", "-sd", filepath.Join(n.dir, "store"))
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test binary
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, err := nats.Connect(n.URL(), nats.Timeout(time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			break
		}
		select {
		case <-done:
			n.t.Fatalf("%s exited at start: %s", bin, n.logTail())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			n.t.Fatalf("%s did not answer on %s within 15 s: %v; %s", bin, n.URL(), err, n.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.cmd, n.done = cmd, done
}

// Stop shuts the server down, as an outage would.
func (n *Server) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd, n.done = nil, nil
}

// Restart stops the server and starts it again on the same port with the same store.
func (n *Server) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}

// RestartWithJetStream restarts the server on the same port and store with JetStream
// on or off: a NATS whose connections are fine while its JetStream does not answer.
func (n *Server) RestartWithJetStream(on bool) {
	n.t.Helper()
	n.Stop()
	n.mu.Lock()
	n.noJS = !on
	n.mu.Unlock()
	n.Start()
}

// Version asks the running server its version (e.g. "2.9.10").
func (n *Server) Version() string {
	n.t.Helper()
	return Version(n.t, n.URL())
}

// Version asks the server at url its version.
func Version(t testing.TB, url string) string {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer nc.Close()
	return nc.ConnectedServerVersion()
}

func (n *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "nats-server.log"))
	if err != nil {
		return "no log"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Sprintf("log tail:\n%s", b)
}

// freePort asks the kernel for a port no one listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
