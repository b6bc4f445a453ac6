package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/eventstore"
)

// TableOwner is implemented by projectors that name the read-model tables
// they own (in the public schema). Such a projector can be rebuilt online:
// into shadow copies of its tables, swapped in atomically at the end.
type TableOwner interface {
	Tables() []string
}

// AfterSwapper is implemented by projectors that must react once rebuilt
// read models were swapped in (e.g. to drop cached documents). db reads the
// new read models.
type AfterSwapper interface {
	AfterSwap(ctx context.Context, db Querier)
}

// Querier is what AfterSwap may read with.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type rebuildingKey struct{}

// Rebuilding reports whether Handle runs for a shadow rebuild: the batch's
// effects are not live yet (do not touch caches, do not announce).
func Rebuilding(ctx context.Context) bool {
	v, _ := ctx.Value(rebuildingKey{}).(bool)
	return v
}

// Counter is implemented by event stores that can count events after a
// position (for rebuild progress).
type Counter interface {
	CountAfter(ctx context.Context, after uint64) (int64, error)
}

// Progress reports a rebuild's advance: events applied so far and the total
// expected (0 when the store cannot count).
type Progress func(done, total int64)

// RebuildOnline rebuilds the projector's read models from event zero while
// the API keeps answering from the current ones: it creates shadow copies of
// the projector's tables in a schema of their own, replays every event into
// them (the projector's SQL is unchanged: the batch transactions put the
// shadow schema first on the search_path), then, holding the live
// checkpoint so the running projector cannot commit meanwhile, applies the
// last events and swaps the shadow tables in, all in one transaction. The
// running projector notices its checkpoint moved and continues from there.
// Messages for WebSocket clients are re-recorded as they were and not
// announced again. Projectors that are not TableOwners are rebuilt in place
// (Rebuild).
func (r *Runner) RebuildOnline(ctx context.Context, progress Progress) error {
	owner, ok := r.cfg.Projector.(TableOwner)
	if !ok {
		return r.Rebuild(ctx)
	}
	if err := r.ensureRow(ctx); err != nil {
		return err
	}
	name := r.Name()
	shadow := pgx.Identifier{"rebuild_" + name}.Sanitize()
	old := pgx.Identifier{"replaced_" + name}.Sanitize()
	tables := owner.Tables()
	pool := r.cfg.Pool

	// 1. Fresh shadow tables shaped like the live ones.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+shadow+` CASCADE; CREATE SCHEMA `+shadow); err != nil {
			return err
		}
		for _, t := range tables {
			tbl := pgx.Identifier{t}.Sanitize()
			if _, err := tx.Exec(ctx, `CREATE TABLE `+shadow+`.`+tbl+` (LIKE public.`+tbl+` INCLUDING ALL)`); err != nil {
				return fmt.Errorf("shadow of %s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: prepare shadow tables: %w", name, err)
	}

	var total int64
	if c, ok := r.cfg.Store.(Counter); ok {
		total, _ = c.CountAfter(ctx, 0)
	}
	var done int64
	var pos uint64

	// apply replays into the shadow tables every event after pos up to the head.
	apply := func(ctx context.Context, tx pgx.Tx) error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch, err := r.cfg.Store.ReadAll(ctx, pos, 1000)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				return nil
			}
			if err := r.applyShadow(ctx, tx, shadow, batch); err != nil {
				return err
			}
			pos = batch[len(batch)-1].Position
			done += int64(len(batch))
			if progress != nil {
				progress(done, max(total, done))
			}
		}
	}

	// 2. Catch the shadow up, batch by batch, each in its own transaction.
	for {
		before := pos
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			batch, err := r.cfg.Store.ReadAll(ctx, pos, 1000)
			if err != nil || len(batch) == 0 {
				return err
			}
			if err := r.applyShadow(ctx, tx, shadow, batch); err != nil {
				return err
			}
			pos = batch[len(batch)-1].Position
			done += int64(len(batch))
			return nil
		})
		if err != nil {
			return fmt.Errorf("rebuild %s at position %d: %w", name, pos, err)
		}
		if progress != nil && pos != before {
			progress(done, max(total, done))
		}
		if pos == before {
			break
		}
	}

	// 3. Swap: block the live projector, apply what came meanwhile, swap tables.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, name); err != nil {
			return err
		}
		if err := apply(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+old+` CASCADE; CREATE SCHEMA `+old); err != nil {
			return err
		}
		for _, t := range tables {
			tbl := pgx.Identifier{t}.Sanitize()
			// Sequences owned by the live table's columns stay (the shadow's
			// defaults use them too): release them before the old table goes.
			if _, err := tx.Exec(ctx, `
				DO $$ DECLARE s record; BEGIN
				  FOR s IN SELECT seq.oid::regclass AS seq FROM pg_class seq
				    JOIN pg_depend d ON d.objid = seq.oid AND d.deptype IN ('a', 'i')
				    WHERE seq.relkind = 'S' AND d.refobjid = 'public.`+t+`'::regclass
				  LOOP EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', s.seq); END LOOP;
				END $$`); err != nil {
				return fmt.Errorf("release sequences of %s: %w", t, err)
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE public.`+tbl+` SET SCHEMA `+old+`; ALTER TABLE `+shadow+`.`+tbl+` SET SCHEMA public`); err != nil {
				return fmt.Errorf("swap %s: %w", t, err)
			}
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA `+old+` CASCADE; DROP SCHEMA `+shadow+` CASCADE`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position = $2, status = 'running', last_error = '', failures = 0, updated_at = now() WHERE name = $1`, name, int64(pos))
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", name, err)
	}
	r.poke()
	if as, ok := r.cfg.Projector.(AfterSwapper); ok {
		as.AfterSwap(ctx, pool)
	}
	return nil
}

// applyShadow applies a batch to the shadow tables within tx.
func (r *Runner) applyShadow(ctx context.Context, tx pgx.Tx, shadow string, batch []eventstore.Event) error {
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+shadow+`, public`); err != nil {
		return err
	}
	ctx = context.WithValue(ctx, rebuildingKey{}, true)
	for _, rec := range decode(batch) {
		if err := r.cfg.Projector.Handle(ctx, tx, rec); err != nil {
			return fmt.Errorf("%s at position %d (%s): %w", rec.Type, rec.Position, rec.Stream, err)
		}
	}
	_, err := tx.Exec(ctx, `SET LOCAL search_path TO public`)
	return err
}

// RebuildAll rebuilds each runner online, one after the other.
func (g *Group) RebuildAll(ctx context.Context, progress func(name string) Progress) error {
	var errs []error
	for _, r := range g.runners {
		var p Progress
		if progress != nil {
			p = progress(r.Name())
		}
		start := time.Now()
		if err := r.RebuildOnline(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		_ = start
	}
	return errors.Join(errs...)
}
