package migrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// baseURL is the real server (DATABASE_URL overrides the default); only its host and
// credentials are used, every test works in a database of its own.
func baseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func withDatabase(t *testing.T, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("DATABASE_URL %q: %v", raw, err)
	}
	u.Path = "/" + name
	return u.String()
}

func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("PostgreSQL not reachable at %s: %v", dbURL, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	admin := connect(t, withDatabase(t, baseURL(), "postgres"))
	var ok bool
	if err := admin.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// freshDatabase returns the URL of a database that does not exist yet and drops it at the
// end of the test.
func freshDatabase(t *testing.T) (string, string) {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "migtest_" + hex.EncodeToString(b)
	admin := withDatabase(t, baseURL(), "postgres")
	connect(t, admin) // fail loudly now if the server is away
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	if databaseExists(t, name) {
		t.Fatalf("database %s already exists", name)
	}
	return withDatabase(t, baseURL(), name), name
}

func mustApply(t *testing.T, dbURL string) uint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := Apply(ctx, dbURL)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return v
}

func roles(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name FROM roles ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertMigrated(t *testing.T, dbURL string) {
	t.Helper()
	conn := connect(t, dbURL)
	ctx := context.Background()
	for _, table := range []string{"users", "roles", "user_roles", "role_permissions", "one_time_tokens", "outbox", "email_requests"} {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('public.' || $1) IS NOT NULL", table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("table %s missing", table)
		}
	}
	if got := roles(t, conn); !slices.Equal(got, []string{"admin", "user"}) {
		t.Errorf("roles = %v, want [admin user]", got)
	}
	var version int64
	var dirty bool
	if err := conn.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty); err != nil {
		t.Fatalf("schema_migrations: %v", err)
	}
	if version != int64(Latest()) || dirty {
		t.Errorf("schema_migrations = version %d dirty %v, want %d clean", version, dirty, Latest())
	}
}

func TestApplyCreatesDatabaseAndSchema(t *testing.T) {
	dbURL, name := freshDatabase(t)
	if v := mustApply(t, dbURL); v != Latest() {
		t.Fatalf("version = %d, want %d", v, Latest())
	}
	if !databaseExists(t, name) {
		t.Fatalf("Apply did not create database %s", name)
	}
	assertMigrated(t, dbURL)
}

func TestApplyIsIdempotent(t *testing.T) {
	dbURL, _ := freshDatabase(t)
	for i := 1; i <= 3; i++ {
		if v := mustApply(t, dbURL); v != Latest() {
			t.Fatalf("run %d: version = %d, want %d", i, v, Latest())
		}
	}
	assertMigrated(t, dbURL)
}

func TestApplyConcurrentlyOnNewDatabase(t *testing.T) {
	for _, n := range []int{2, 2, 4} {
		dbURL, _ := freshDatabase(t)
		var wg sync.WaitGroup
		errs := make([]error, n)
		versions := make([]uint, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				versions[i], errs[i] = Apply(ctx, dbURL)
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil || versions[i] != Latest() {
				t.Errorf("%d parallel runs, run %d: version %d, err %v", n, i, versions[i], errs[i])
			}
		}
		assertMigrated(t, dbURL)
	}
}

// Same as above with the database already there (created empty by the test), so only the
// migration lock is exercised.
func TestApplyConcurrentlyOnExistingEmptyDatabase(t *testing.T) {
	dbURL, name := freshDatabase(t)
	admin := connect(t, withDatabase(t, baseURL(), "postgres"))
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	versions := make([]uint, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			versions[i], errs[i] = Apply(ctx, dbURL)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || versions[i] != Latest() {
			t.Errorf("run %d: version %d, err %v", i, versions[i], errs[i])
		}
	}
	assertMigrated(t, dbURL)
}

func TestSchemaConstraints(t *testing.T) {
	dbURL, _ := freshDatabase(t)
	mustApply(t, dbURL)
	conn := connect(t, dbURL)
	ctx := context.Background()
	const u1 = "00000000-0000-4000-8000-000000000001"
	if _, err := conn.Exec(ctx, "INSERT INTO users (id, email) VALUES ($1, 'ann@example.com')", u1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		sql        string
		args       []any
		code       string
		constraint string
	}{
		{"duplicate email", "INSERT INTO users (id, email) VALUES ($1, 'ann@example.com')",
			[]any{"00000000-0000-4000-8000-000000000002"}, "23505", "users_email_key"},
		{"duplicate id", "INSERT INTO users (id, email) VALUES ($1, 'bob@example.com')",
			[]any{u1}, "23505", "users_pkey"},
		{"duplicate role", "INSERT INTO roles (name) VALUES ('admin')", nil, "23505", "roles_pkey"},
		{"unknown role granted", "INSERT INTO user_roles (user_id, role) VALUES ($1, 'nope')", []any{u1}, "23503", ""},
		{"bad role name", "INSERT INTO roles (name) VALUES ('Bad Role')", nil, "23514", ""},
		{"token hash not sha-256", "INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at) VALUES ('\\x00', $1, 'password_reset', now())",
			[]any{u1}, "23514", ""},
		{"unknown token purpose", "INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at) VALUES (sha256('x'), $1, 'login', now())",
			[]any{u1}, "23514", ""},
		{"identity on a reset token", `INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at, identity_provider, identity_subject)
			VALUES (sha256('r'), $1, 'password_reset', now(), 'acme', 's')`, []any{u1}, "23514", ""},
		{"identity provider without subject", `INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at, identity_provider)
			VALUES (sha256('s'), $1, 'email_verification', now(), 'acme')`, []any{u1}, "23514", ""},
		{"unknown email request kind", `INSERT INTO email_requests (id, kind, email_sealed) VALUES (gen_random_uuid(), 'login', '{}')`,
			nil, "23514", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := conn.Exec(ctx, tt.sql, tt.args...)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("err = %v, want SQLSTATE %s", err, tt.code)
			}
			if tt.constraint != "" && pe.ConstraintName != tt.constraint {
				t.Fatalf("constraint = %q, want %q", pe.ConstraintName, tt.constraint)
			}
		})
	}
	t.Run("valid rows are accepted", func(t *testing.T) {
		for _, q := range []string{
			"INSERT INTO user_roles (user_id, role) VALUES ('" + u1 + "', 'user')",
			"INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at) VALUES (sha256('x'), '" + u1 + "', 'email_verification', now())",
			`INSERT INTO outbox (id, subject, payload) VALUES (gen_random_uuid(), 'auth.user.registered', '{"a":1}')`,
			`INSERT INTO email_requests (id, kind, email_sealed) VALUES (gen_random_uuid(), 'forgot', '{"kid":"k"}')`,
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
}

func TestDownMigrationReversesUp(t *testing.T) {
	dbURL, _ := freshDatabase(t)
	mustApply(t, dbURL)
	downs, err := fs.Glob(files, "*.down.sql")
	if err != nil || len(downs) != int(Latest()) {
		t.Fatalf("down migrations %v, %v; want one per version", downs, err)
	}
	conn := connect(t, dbURL)
	ctx := context.Background()
	slices.Reverse(downs) // newest first
	for _, name := range downs {
		down, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(down)); err != nil {
			t.Fatalf("down migration %s: %v", name, err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d tables left after the down migration", n)
	}
}

func TestApplyInvalidURLDoesNotLeakPassword(t *testing.T) {
	const secret = "Sup3rS3cretPw"
	tests := []struct {
		name string
		url  string
	}{
		{"bad port", "postgres://postgres:" + secret + "@127.0.0.1:port/x"},
		{"bad escape", "postgres://postgres:" + secret + "%zz@127.0.0.1/x"},
		{"bad sslmode", "postgres://postgres:" + secret + "@127.0.0.1/x?sslmode=bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply(context.Background(), tt.url)
			if err == nil {
				t.Fatal("Apply succeeded on an invalid URL")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "DATABASE_URL:") {
				t.Fatalf("error %q does not name DATABASE_URL", err)
			}
		})
	}
}
