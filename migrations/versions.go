package migrations

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// Versions reports the schema version the database is at (0 when never
// migrated) and the newest version this binary knows, changing nothing.
func Versions(ctx context.Context, pool *pgxpool.Pool) (current, target int64, err error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, 0, fmt.Errorf("migration provider: %w", err)
	}
	sources := p.ListSources()
	if len(sources) > 0 {
		target = sources[len(sources)-1].Version
	}
	// goose would create its version table to answer: look first.
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, target, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, target, nil
	}
	current, target, err = p.GetVersions(ctx)
	if err != nil {
		return 0, target, fmt.Errorf("schema version: %w", err)
	}
	return current, target, nil
}
