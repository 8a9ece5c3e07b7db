// Package postgres opens PostgreSQL through bun on the pgx driver, which brings TLS and
// multi-host failover connection strings (host=a,b target_session_attrs=read-write).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// DB is the primary and its optional read replicas.
type DB struct {
	*bun.DB
	replicas []*bun.DB
	next     atomic.Uint64
}

// Options tune the pool.
type Options struct {
	MaxOpenConns int
	// StatementTimeout bounds every query on the server side, so a slow primary answers
	// with an error instead of piling requests up.
	StatementTimeout time.Duration
}

// Open connects to the primary url and each replica; it does not ping.
func Open(url string, replicas []string, o Options) (*DB, error) {
	primary, err := open(url, o)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	db := &DB{DB: primary}
	for _, r := range replicas {
		rdb, err := open(r, o)
		if err != nil {
			_ = primary.Close()
			return nil, fmt.Errorf("DATABASE_REPLICA_URLS: %w", err)
		}
		db.replicas = append(db.replicas, rdb)
	}
	return db, nil
}

func open(url string, o Options) (*bun.DB, error) {
	cfg, err := pgconnConfig(url)
	if err != nil {
		return nil, err
	}
	if o.StatementTimeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(o.StatementTimeout.Milliseconds())
	}
	sqldb := stdlib.OpenDB(*cfg)
	if o.MaxOpenConns > 0 {
		sqldb.SetMaxOpenConns(o.MaxOpenConns)
		sqldb.SetMaxIdleConns(o.MaxOpenConns)
	}
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	return bun.NewDB(sqldb, pgdialect.New()).WithQueryHook(newTracingHook(cfg.Database, cfg.Host, cfg.Port)), nil
}

// Reader returns a replica for reads that tolerate lag, or the primary without replicas.
func (db *DB) Reader() *bun.DB {
	if len(db.replicas) == 0 {
		return db.DB
	}
	return db.replicas[db.next.Add(1)%uint64(len(db.replicas))]
}

// Ping checks the primary (readiness).
func (db *DB) Ping(ctx context.Context) error { return db.DB.PingContext(ctx) }

// Close closes every pool.
func (db *DB) Close() error {
	errs := []error{db.DB.Close()}
	for _, r := range db.replicas {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// IsUniqueViolation reports a unique-constraint error, optionally on one constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return false
	}
	return constraint == "" || pe.ConstraintName == constraint
}

// IsNoRows reports sql.ErrNoRows.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Unreachable reports an error that says the database cannot be used now: it could not
// be reached or timed out, or the pool is closed. The caller should retry (503).
func Unreachable(err error) bool {
	var connect *pgconn.ConnectError
	return errors.As(err, &connect) || pgconn.Timeout(err) || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "sql: database is closed")
}
