package events

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"github.com/talentforge/auth/pkg/keyring"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/talentforge/auth/pkg/natstest"
	"github.com/talentforge/auth/pkg/natsx"
	"github.com/talentforge/auth/pkg/postgres"
)

// serverURL is the PostgreSQL server the test databases are created on.
func serverURL() string {
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if u := os.Getenv(k); u != "" {
			return u
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// outboxDDL is the outbox table of migrations/000001_core.up.sql.
const outboxDDL = `
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    subject         text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE published_at IS NULL;`

// testDB creates a database of the test's own with the outbox table, and drops it
// when the test ends. It fails loudly when PostgreSQL is down: CI starts it.
func testDB(t *testing.T) (*postgres.DB, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		t.Fatalf("PostgreSQL must be running (CI starts it): %v", err)
	}
	defer admin.Close(ctx)
	name := "events_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL())
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := url.Parse(serverURL())
	if err != nil || u.Host == "" {
		t.Fatalf("the test database server must be given as a URL")
	}
	u.Path = "/" + name
	db := openDB(t, u.String())
	if _, err := db.ExecContext(ctx, outboxDDL); err != nil {
		t.Fatalf("create outbox: %v", err)
	}
	return db, u.String()
}

func openDB(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(url, nil, postgres.Options{MaxOpenConns: 8, StatementTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testKeyring is a keyring with one random key named kid.
func testKeyring(t testing.TB, kids ...string) (*keyring.Keyring, string) {
	t.Helper()
	spec := ""
	for i, kid := range kids {
		if i > 0 {
			spec += ","
		}
		spec += kid + ":" + randomKey()
	}
	k, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return k, spec
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// natsServer is where a test's events go: the shared server with a namespace of the
// test's own (sharedNATS), or a nats-server process of the test's own in the default
// layout (startNATS), for tests that take NATS down and bring it back.
type natsServer struct {
	*natstest.Server // nil on the shared server
	ns               Namespace
}

func sharedNATS(t *testing.T) *natsServer { return &natsServer{ns: Namespace(natstest.Namespace(t))} }

func startNATS(t *testing.T) *natsServer { return &natsServer{Server: natstest.Run(t)} }

// URL is the server's client URL.
func (ns *natsServer) URL() string {
	if ns.Server == nil {
		return natstest.URL()
	}
	return ns.Server.URL()
}

// connect opens a client the way the services do (reconnecting forever).
func (ns *natsServer) connect(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := natsx.Connect(ns.URL(), "events-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	waitFor(t, 5*time.Second, "the NATS connection", func() bool { return natsx.Check(nc) == nil })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// waitFor polls cond until it holds or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
