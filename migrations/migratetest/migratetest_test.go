package migratetest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/talentforge/auth/migrations"
)

func TestCreateAndDrop(t *testing.T) {
	name, dbURL, err := Create("migratetest_")
	t.Cleanup(func() { Drop(name) })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var version uint
	if err := conn.QueryRow(ctx, "SELECT version FROM schema_migrations").Scan(&version); err != nil || version != migrations.Latest() {
		t.Fatalf("version %d, %v; want %d", version, err, migrations.Latest())
	}
	conn.Close(ctx)

	Drop(name)
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		t.Fatalf("database %s still exists after Drop (%v)", name, err)
	}
}
