// Package pgtest gives each test its own PostgreSQL database: a fresh one with
// a random name on TEST_DATABASE_URL's server, migrated, and dropped when the
// test ends. Tests never share a database and never drop one they did not make.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/migrations"
)

// DefaultServerURL is used when TEST_DATABASE_URL is not set.
const DefaultServerURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL is the server tests create their databases on.
func ServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultServerURL
}

// DB is a test database.
type DB struct {
	Pool *pgxpool.Pool
	// URL connects to this database (for code that opens its own pool).
	URL  string
	Name string
}

// New creates a migrated database for t and drops it when t ends. Without a
// reachable server the test is skipped with the reason, except under CI
// (CI set), where a missing PostgreSQL is a failure.
func New(t testing.TB) *DB {
	t.Helper()
	db := NewEmpty(t)
	if _, err := migrations.Up(context.Background(), db.Pool, nil); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return db
}

// NewEmpty is New without migrations.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(ServerURL())
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required under CI and is not reachable at %s: %v", cfg.Host, err)
		}
		t.Skipf("PostgreSQL not reachable at %s:%d (%v); set TEST_DATABASE_URL", cfg.Host, cfg.Port, err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "lockstep_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	pcfg, err := pgxpool.ParseConfig(ServerURL())
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	pcfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatalf("connect test database: %v", err)
	}
	url := withDatabase(ServerURL(), name)
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return &DB{Pool: pool, URL: url, Name: name}
}
