// Package pgdb opens Lockstep's PostgreSQL database, creating it first when it
// does not exist and the role may create databases.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns is the pool size when the URL does not set pool_max_conns.
const DefaultMaxConns = 20

// Open connects a pool to url, creating the database if it is missing.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) { return open(ctx, url, true) }

// OpenExisting connects a pool to url and never creates anything: a database
// that does not exist is an error (for read-only tools such as replay).
func OpenExisting(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, false)
}

func open(ctx context.Context, url string, create bool) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	// pgxpool's default (4 on two cores) makes bus subscribers, projectors,
	// the log writer and requests queue behind each other; pool_max_conns in
	// the URL still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if create {
		if err := EnsureDatabase(ctx, cfg.ConnConfig); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database %q: %w", cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// EnsureDatabase creates cfg's database when it does not exist, connecting to
// the server's "postgres" database to do so. A concurrent creator is fine.
func EnsureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect database %q: %w", cfg.Database, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	aconn, err := pgx.ConnectConfig(cctx, admin)
	if err != nil {
		return fmt.Errorf("connect to create database %q: %w", cfg.Database, err)
	}
	defer aconn.Close(ctx)
	_, err = aconn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505")) {
		return fmt.Errorf("create database %q: %w", cfg.Database, err)
	}
	return nil
}
