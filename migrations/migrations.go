// Package migrations embeds the SQL migrations and applies them with golang-migrate.
// Services never migrate on their own; `auth migrate` (and `make migrate`) call Apply.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed *.sql
var files embed.FS

// Latest is the version of the newest embedded migration.
func Latest() uint {
	entries, _ := files.ReadDir(".")
	var latest uint
	for _, e := range entries {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

// Apply creates the database named in databaseURL when it is missing, then applies every
// pending migration. It is safe to run from several replicas at once: golang-migrate
// holds an advisory lock, and a concurrent CREATE DATABASE is tolerated.
func Apply(ctx context.Context, databaseURL string) (version uint, err error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return 0, errors.New("DATABASE_URL: invalid connection string")
	}
	if err := ensureDatabase(ctx, cfg); err != nil {
		return 0, err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return apply(ctx, db)
}

func apply(ctx context.Context, db *sql.DB) (uint, error) {
	if err := db.PingContext(ctx); err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	driver, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		return 0, fmt.Errorf("migration driver: %w", err)
	}
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, fmt.Errorf("migration files: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	v, dirty, err := m.Version()
	if err != nil {
		return 0, fmt.Errorf("read version: %w", err)
	}
	if dirty {
		return v, fmt.Errorf("database is dirty at version %d: fix it by hand, then force the version", v)
	}
	return v, nil
}

// ensureDatabase connects to the server's maintenance database and creates ours.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	name := cfg.Database
	if name == "" {
		return errors.New("DATABASE_URL: no database name")
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to the server: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	// A concurrent creator wins either as duplicate_database or, on the catalog's
	// unique index, as unique_violation.
	var pe *pgconn.PgError
	if err != nil && !(errors.As(err, &pe) && (pe.Code == "42P04" || pe.Code == "23505")) {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
