package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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

// rebuildBatch is how many events a rebuild applies per transaction.
const rebuildBatch = 5000

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
//
// An event the projector fails on is passed as the live runner passes it:
// isolated under a savepoint and skipped, and at the swap the projector's
// quarantine becomes exactly the events this replay could not apply (those
// that apply now leave it; first_seen and attempts of the others are kept).
// More than MaxQuarantined failing events fail the rebuild instead.
func (r *Runner) RebuildOnline(ctx context.Context, progress Progress) error {
	owner, ok := r.cfg.Projector.(TableOwner)
	if !ok {
		return r.Rebuild(ctx)
	}
	if err := r.ensureRow(ctx); err != nil {
		return err
	}
	r.setState(func(s *State) { s.RebuildStartedAt = time.Now().UTC() })
	defer r.setState(func(s *State) { s.RebuildStartedAt = time.Time{} })
	var failed []failedEvent
	name := r.Name()
	shadow := pgx.Identifier{"rebuild_" + name}.Sanitize()
	old := pgx.Identifier{"replaced_" + name}.Sanitize()
	tables := owner.Tables()
	pool := r.cfg.Pool

	// 1. Fresh shadow tables shaped like the live ones, with only the
	// indexes writes need (primary keys, unique ones: ON CONFLICT and
	// lookups); the others are built once the bulk of the events is in.
	var deferred []string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+shadow+` CASCADE; CREATE SCHEMA `+shadow); err != nil {
			return err
		}
		for _, t := range tables {
			tbl := pgx.Identifier{t}.Sanitize()
			if _, err := tx.Exec(ctx, `CREATE TABLE `+shadow+`.`+tbl+` (LIKE public.`+tbl+` INCLUDING ALL EXCLUDING INDEXES)`); err != nil {
				return fmt.Errorf("shadow of %s: %w", t, err)
			}
			idx, err := shadowIndexes(ctx, tx, t, shadow)
			if err != nil {
				return fmt.Errorf("indexes of %s: %w", t, err)
			}
			for _, ix := range idx {
				if !ix.now {
					deferred = append(deferred, ix.create)
					continue
				}
				if _, err := tx.Exec(ctx, ix.create); err != nil {
					return fmt.Errorf("index on shadow of %s: %w", t, err)
				}
				if ix.constraint != "" {
					if _, err := tx.Exec(ctx, ix.constraint); err != nil {
						return fmt.Errorf("constraint on shadow of %s: %w", t, err)
					}
				}
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
			batch, err := r.cfg.Store.ReadAll(ctx, pos, rebuildBatch)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				return nil
			}
			// The tail is short: applied isolated at once, so that an event
			// the projector fails on does not end the swap's transaction.
			if err := r.applyShadow(ctx, tx, shadow, decode(batch), &failed, true); err != nil {
				return err
			}
			pos = batch[len(batch)-1].Position
			done += int64(len(batch))
			if progress != nil {
				progress(done, max(total, done))
			}
		}
	}

	// 2. Catch the shadow up, batch by batch, each in its own transaction,
	// while the next batch is read and decoded.
	type fetched struct {
		records []Record
		err     error
	}
	fctx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	ahead := make(chan fetched, 2)
	go func() {
		defer close(ahead)
		from := pos
		for {
			batch, err := r.cfg.Store.ReadAll(fctx, from, rebuildBatch)
			if err == nil && len(batch) == 0 {
				return
			}
			select {
			case ahead <- fetched{decode(batch), err}:
			case <-fctx.Done():
				return
			}
			if err != nil {
				return
			}
			from = batch[len(batch)-1].Position
		}
	}()
	for f := range ahead {
		if f.err != nil {
			return fmt.Errorf("rebuild %s at position %d: %w", name, pos, f.err)
		}
		var handleErr error
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			err := r.applyShadow(ctx, tx, shadow, f.records, &failed, false)
			var herr *HandleError
			if errors.As(err, &herr) {
				handleErr = herr.Err
			}
			return err
		})
		if handleErr != nil && r.ownFailure(ctx, handleErr) {
			// Again, event by event where needed, in a transaction of its own.
			err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				return r.applyShadow(ctx, tx, shadow, f.records, &failed, true)
			})
		}
		if err != nil {
			return fmt.Errorf("rebuild %s at position %d: %w", name, pos, err)
		}
		pos = f.records[len(f.records)-1].Position
		done += int64(len(f.records))
		if progress != nil {
			progress(done, max(total, done))
		}
	}

	// The secondary indexes, now that the bulk of the rows is in.
	for _, create := range deferred {
		if _, err := pool.Exec(ctx, create); err != nil {
			return fmt.Errorf("rebuild %s: index: %w", name, err)
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
		positions := make([]int64, len(failed))
		for i, f := range failed {
			positions[i] = int64(f.rec.Position)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projection_quarantine WHERE projector = $1 AND NOT (position = ANY($2))`, name, positions); err != nil {
			return err
		}
		for _, f := range failed {
			if err := quarantine(ctx, tx, name, f.rec, f.err.Error(), 1); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position = $2, status = 'running', last_error = '', failures = 0, updated_at = now() WHERE name = $1`, name, int64(pos))
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", name, err)
	}
	for _, f := range failed {
		r.log.Error("event quarantined by the rebuild: the projector skips it", "position", f.rec.Position, "stream", f.rec.Stream, "type", f.rec.Type, "error", f.err)
	}
	r.refreshQuarantined(ctx)
	r.poke()
	if as, ok := r.cfg.Projector.(AfterSwapper); ok {
		as.AfterSwap(ctx, pool)
	}
	return nil
}

type shadowIndex struct {
	create     string // CREATE INDEX on the shadow table, with the live index's name
	constraint string // ALTER TABLE … ADD CONSTRAINT … USING INDEX, for primary keys and unique constraints
	now        bool   // needed while the events are applied (unique: ON CONFLICT, lookups)
}

// shadowIndexes returns the live table's indexes re-targeted at its shadow.
func shadowIndexes(ctx context.Context, tx pgx.Tx, table, shadow string) ([]shadowIndex, error) {
	rows, err := tx.Query(ctx, `
		SELECT i.relname, pg_get_indexdef(x.indexrelid), x.indisunique, coalesce(c.conname, ''), coalesce(c.contype::text, '')
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('p', 'u')
		WHERE x.indrelid = ('public.' || quote_ident($1))::regclass`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []shadowIndex
	for rows.Next() {
		var idxName, def, conName, conType string
		var unique bool
		if err := rows.Scan(&idxName, &def, &unique, &conName, &conType); err != nil {
			return nil, err
		}
		qualified := " ON public." + pgx.Identifier{table}.Sanitize() + " "
		if !strings.Contains(def, qualified) {
			qualified = " ON public." + table + " "
		}
		if !strings.Contains(def, qualified) {
			return nil, fmt.Errorf("unexpected index definition %q", def)
		}
		ix := shadowIndex{create: strings.Replace(def, qualified, " ON "+shadow+"."+pgx.Identifier{table}.Sanitize()+" ", 1), now: unique}
		switch conType {
		case "p":
			ix.constraint = `ALTER TABLE ` + shadow + `.` + pgx.Identifier{table}.Sanitize() + ` ADD CONSTRAINT ` + pgx.Identifier{conName}.Sanitize() + ` PRIMARY KEY USING INDEX ` + pgx.Identifier{idxName}.Sanitize()
		case "u":
			ix.constraint = `ALTER TABLE ` + shadow + `.` + pgx.Identifier{table}.Sanitize() + ` ADD CONSTRAINT ` + pgx.Identifier{conName}.Sanitize() + ` UNIQUE USING INDEX ` + pgx.Identifier{idxName}.Sanitize()
		}
		out = append(out, ix)
	}
	return out, rows.Err()
}

// applyShadow applies records to the shadow tables within tx. Pipelined,
// a failure of the projector's Handle is returned as *HandleError (the
// transaction is lost). Isolated, the events it fails on are skipped and
// added to failed (see bisect); more than MaxQuarantined of them fail the
// rebuild.
func (r *Runner) applyShadow(ctx context.Context, tx pgx.Tx, shadow string, records []Record, failed *[]failedEvent, isolate bool) error {
	if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+shadow+`, public`); err != nil {
		return err
	}
	hctx := context.WithValue(ctx, rebuildingKey{}, true)
	if !isolate {
		if err := handleAll(hctx, r.cfg.Projector, tx, records); err != nil {
			return &HandleError{Err: err}
		}
	} else if err := r.bisect(hctx, tx, records, failed, r.cfg.MaxQuarantined); err != nil {
		if errors.Is(err, errTooManyFailing) {
			f := (*failed)[0]
			return fmt.Errorf("more than %d events fail, the projector itself looks broken (first: %s at position %d: %v)", r.cfg.MaxQuarantined, f.rec.Type, f.rec.Position, f.err)
		}
		return err
	}
	_, err := tx.Exec(ctx, `SET LOCAL search_path TO public`)
	return err
}
