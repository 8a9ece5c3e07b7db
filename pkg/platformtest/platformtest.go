// Package platformtest is what the services' test harnesses share to start a service
// against the machine's PostgreSQL, Redis and NATS: migrated databases of the test
// binary's or the test's own (migratetest), the settings a test starts a service with
// (random keys, REDIS_URL and NATS_URL from the environment, a NATS namespace of the
// test's own), the configuration loaded from them, the checks that fail a test loudly
// when a dependency is down (CI starts them: a missing one is a broken machine, not a
// reason to skip), and serving until the test ends.
package platformtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/talentforge/auth/migrations/migratetest"
	"github.com/talentforge/auth/pkg/config"
	"github.com/talentforge/auth/pkg/natstest"
)

// Databases are a test binary's migrated databases on the machine's PostgreSQL, named
// prefix + random hex.
type Databases struct {
	prefix string
	shared migratetest.Shared
}

// NewDatabases returns the databases of a test binary, named prefix + random hex.
func NewDatabases(prefix string) *Databases {
	return &Databases{prefix: prefix, shared: migratetest.Shared{Prefix: prefix}}
}

// Shared makes one database for the whole test binary on first use and returns its
// URL; Drop (from TestMain) drops it.
func (d *Databases) Shared(t testing.TB) string {
	t.Helper()
	return d.shared.URL(t)
}

// Own makes a database for one test and drops it when the test ends: for a test whose
// outbox relay must not publish (and clear) other tests' events, or that touches every
// row.
func (d *Databases) Own(t testing.TB) string {
	t.Helper()
	name, url, err := migratetest.Create(d.prefix)
	t.Cleanup(func() { migratetest.Drop(name) })
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Drop removes the shared database, if it was made; call it from TestMain.
func (d *Databases) Drop() { d.shared.Drop() }

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// KeySpec returns a keyring setting (EVENT_KEYS, MFA_ENCRYPTION_KEYS) of one random
// 32-byte key named kid.
func KeySpec(kid string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return kid + ":" + base64.StdEncoding.EncodeToString(b[:])
}

// Env is a service's settings by variable name (names as in API.md).
type Env map[string]string

// Option adds to the settings of Settings.
type Option func(testing.TB, Env, map[string]string)

// WithNamespace gives a test on the machine's NATS a NATS_NAMESPACE of its own
// (natstest.Namespace), so the relays and consumers of parallel tests (and a `make run`
// stack) never see each other's events. A test that names its own NATS_URL gets none.
func WithNamespace() Option {
	return func(t testing.TB, vars Env, env map[string]string) {
		if !OwnNATS(env) {
			vars["NATS_NAMESPACE"] = natstest.Namespace(t)
		}
	}
}

// OwnNATS reports whether env, a test's settings, names a NATS of the test's own (which
// may be down on purpose).
func OwnNATS(env map[string]string) bool {
	_, own := env["NATS_URL"]
	return own
}

// Settings returns the settings a test starts a service with: REDIS_URL and NATS_URL
// from the environment when set (CI may point them elsewhere), then defaults, then what
// opts add, then env, the test's own, which wins.
func Settings(t testing.TB, defaults, env map[string]string, opts ...Option) Env {
	t.Helper()
	vars := Env{}
	for _, k := range []string{"REDIS_URL", "NATS_URL"} {
		if v := os.Getenv(k); v != "" {
			vars[k] = v
		}
	}
	for k, v := range defaults {
		vars[k] = v
	}
	for _, opt := range opts {
		opt(t, vars, env)
	}
	for k, v := range env {
		vars[k] = v
	}
	return vars
}

// Lookup reads one setting, as os.LookupEnv would.
func (e Env) Lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// Config loads the shared configuration from e (HTTP_ADDR 127.0.0.1:0 unless e names
// one), failing the test on an error.
func (e Env) Config(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Load("127.0.0.1:0", e.Lookup)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// PingRedis fails the test unless rdb answers a PING within 5 s.
func PingRedis(t testing.TB, rdb redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis must be running (CI starts it): %v", err)
	}
}

// PingNATS fails the test unless nc's server answers within 5 s.
func PingNATS(t testing.TB, nc *nats.Conn) {
	t.Helper()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("NATS must be running (CI starts it): %v", err)
	}
}

// Listen opens a listener on a free port of 127.0.0.1.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Serve runs serve (a server on its listener, until its context ends) in the
// background. stop, which the test's cleanup calls and a test may call earlier, cancels
// that context, waits for serve to return, fails the test unless it returned nil or
// context.Canceled, then runs closers in order. name names the service in the failure.
func Serve(t testing.TB, name string, cancel context.CancelFunc, serve func() error, closers ...func() error) (stop func()) {
	done := make(chan error, 1)
	go func() { done <- serve() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s stopped with: %v", name, err)
			}
			for _, c := range closers {
				_ = c()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
