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
	current, target, err = p.GetVersions(ctx)
	if err != nil {
		return 0, target, fmt.Errorf("schema version: %w", err)
	}
	return current, target, nil
}
