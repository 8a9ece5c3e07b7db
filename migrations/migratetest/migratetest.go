// Package migratetest gives tests a fresh, migrated PostgreSQL database of their own on
// the machine's server (TEST_DATABASE_URL, or the local default), and drops it after.
package migratetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talentforge/auth/migrations"
)

// ServerURL is the maintenance database of the server tests create databases on.
func ServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Create makes a database named prefix + random hex and applies every migration.
// The name is returned even on error, so the caller can drop what was made.
func Create(prefix string) (name, dbURL string, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = prefix + hex.EncodeToString(b[:])
	u, err := url.Parse(ServerURL())
	if err != nil {
		return "", "", fmt.Errorf("TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	dbURL = u.String()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := migrations.Apply(ctx, dbURL); err != nil {
		return name, "", fmt.Errorf("PostgreSQL must be running (CI starts it): %w", err)
	}
	return name, dbURL, nil
}

// Drop removes a database made by Create, closing whatever still uses it.
func Drop(name string) {
	if name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// Shared is one database for a whole test binary: made on first use, dropped by Drop
// (from TestMain).
type Shared struct {
	Prefix string

	once      sync.Once
	name, url string
	err       error
}

// URL makes the database on first use and returns its URL; the test fails loudly when
// PostgreSQL is not there.
func (s *Shared) URL(t testing.TB) string {
	t.Helper()
	s.once.Do(func() { s.name, s.url, s.err = Create(s.Prefix) })
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.url
}

// Drop removes the database, if it was made.
func (s *Shared) Drop() { Drop(s.name) }
