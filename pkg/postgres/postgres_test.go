package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// testURL is the real server (DATABASE_URL overrides the default maintenance database).
func testURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// openDB opens the real server and fails the test loudly when it is not reachable.
func openDB(t *testing.T, replicas []string, o Options) *DB {
	t.Helper()
	db, err := Open(testURL(), replicas, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", testURL(), err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("PostgreSQL not reachable at %s: %v", testURL(), err)
	}
	return db
}

func TestOpenAndPing(t *testing.T) {
	db := openDB(t, nil, Options{})
	var one int
	if err := db.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		timeout string
		maxOpen int
	}{
		{"defaults", Options{}, "0", 0},
		{"statement timeout", Options{StatementTimeout: 1500 * time.Millisecond}, "1500ms", 0},
		{"max open conns", Options{MaxOpenConns: 3}, "0", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, nil, tt.o)
			var got string
			if err := db.QueryRowContext(context.Background(), "SHOW statement_timeout").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.timeout {
				t.Fatalf("statement_timeout = %q, want %q", got, tt.timeout)
			}
			if m := db.Stats().MaxOpenConnections; m != tt.maxOpen {
				t.Fatalf("MaxOpenConnections = %d, want %d", m, tt.maxOpen)
			}
		})
	}
}

func TestPingFailsOnUnreachableServer(t *testing.T) {
	db, err := Open("postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", nil, Options{})
	if err != nil {
		t.Fatalf("Open must not dial: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping on a closed port succeeded")
	}
}

func TestIsUniqueViolation(t *testing.T) {
	db := openDB(t, nil, Options{})
	ctx := context.Background()
	// Temp tables live on one connection.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE uv_test (
		id int PRIMARY KEY,
		email text NOT NULL CONSTRAINT uv_test_email_key UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO uv_test VALUES (1, 'a@x.io')"); err != nil {
		t.Fatal(err)
	}
	_, dupEmail := conn.ExecContext(ctx, "INSERT INTO uv_test VALUES (2, 'a@x.io')")
	if dupEmail == nil {
		t.Fatal("duplicate email accepted")
	}
	_, dupID := conn.ExecContext(ctx, "INSERT INTO uv_test VALUES (1, 'b@x.io')")
	if dupID == nil {
		t.Fatal("duplicate id accepted")
	}
	_, notNull := conn.ExecContext(ctx, "INSERT INTO uv_test VALUES (3, NULL)")
	if notNull == nil {
		t.Fatal("NULL email accepted")
	}
	tests := []struct {
		name       string
		err        error
		constraint string
		want       bool
	}{
		{"any constraint", dupEmail, "", true},
		{"named constraint", dupEmail, "uv_test_email_key", true},
		{"other constraint", dupEmail, "uv_test_pkey", false},
		{"primary key by name", dupID, "uv_test_pkey", true},
		{"wrapped", fmt.Errorf("create user: %w", dupEmail), "uv_test_email_key", true},
		{"not-null violation", notNull, "", false},
		{"nil", nil, "", false},
		{"plain error", errors.New("23505 duplicate key"), "", false},
		{"no rows", sql.ErrNoRows, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUniqueViolation(tt.err, tt.constraint); got != tt.want {
				t.Fatalf("IsUniqueViolation(%v, %q) = %v, want %v", tt.err, tt.constraint, got, tt.want)
			}
		})
	}
}

func TestIsNoRows(t *testing.T) {
	db := openDB(t, nil, Options{})
	var n int
	noRows := db.QueryRowContext(context.Background(), "SELECT 1 WHERE false").Scan(&n)
	var x int
	someErr := db.QueryRowContext(context.Background(), "SELECT 1/0").Scan(&x)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"real no rows", noRows, true},
		{"wrapped", fmt.Errorf("find user: %w", noRows), true},
		{"division by zero", someErr, false},
		{"nil", nil, false},
		{"plain error", errors.New("sql: no rows in result set"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsNoRows(tt.err); got != tt.want {
				t.Fatalf("IsNoRows(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestReader(t *testing.T) {
	t.Run("without replicas is the primary", func(t *testing.T) {
		db := openDB(t, nil, Options{})
		for i := 0; i < 3; i++ {
			if db.Reader() != db.DB {
				t.Fatal("Reader() without replicas is not the primary")
			}
		}
	})
	t.Run("with replicas round-robins", func(t *testing.T) {
		db := openDB(t, []string{testURL(), testURL()}, Options{})
		if len(db.replicas) != 2 {
			t.Fatalf("%d replicas opened, want 2", len(db.replicas))
		}
		seen := map[any]int{}
		prev := db.Reader()
		seen[prev]++
		for i := 0; i < 9; i++ {
			r := db.Reader()
			if r == db.DB {
				t.Fatal("Reader() returned the primary although replicas exist")
			}
			if r == prev {
				t.Fatal("Reader() returned the same replica twice in a row")
			}
			var one int
			if err := r.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil {
				t.Fatalf("query on replica: %v", err)
			}
			seen[r]++
			prev = r
		}
		if len(seen) != 2 || seen[db.replicas[0]] != 5 || seen[db.replicas[1]] != 5 {
			t.Fatalf("distribution over replicas = %v, want 5/5", seen)
		}
	})
}

func TestInvalidURLDoesNotLeakPassword(t *testing.T) {
	const secret = "Sup3rS3cretPw"
	tests := []struct {
		name     string
		url      string
		replicas []string
		prefix   string
	}{
		{"bad port", "postgres://app:" + secret + "@db:port/auth", nil, "DATABASE_URL"},
		{"bad escape", "postgres://app:" + secret + "%zz@db/auth", nil, "DATABASE_URL"},
		{"bad keyword dsn", "host=db password=" + secret + " port=notaport", nil, "DATABASE_URL"},
		{"bad sslmode", "postgres://app:" + secret + "@db/auth?sslmode=bogus", nil, "DATABASE_URL"},
		{"bad replica", testURL(), []string{"postgres://app:" + secret + "@db:port/auth"}, "DATABASE_REPLICA_URLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.url, tt.replicas, Options{})
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tt.url)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !strings.HasPrefix(err.Error(), tt.prefix+":") {
				t.Fatalf("error %q does not name %s", err, tt.prefix)
			}
		})
	}
}
