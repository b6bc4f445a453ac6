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
	b := &shadowRebuild{
		r: r, progress: progress, name: r.Name(), tables: owner.Tables(),
		shadow: pgx.Identifier{"rebuild_" + r.Name()}.Sanitize(),
		old:    pgx.Identifier{"replaced_" + r.Name()}.Sanitize(),
	}
	if err := b.prepare(ctx); err != nil {
		return fmt.Errorf("rebuild %s: prepare shadow tables: %w", b.name, err)
	}
	if err := b.catchUp(ctx); err != nil {
		return fmt.Errorf("rebuild %s at position %d: %w", b.name, b.pos, err)
	}
	if err := b.indexes(ctx); err != nil {
		return fmt.Errorf("rebuild %s: index: %w", b.name, err)
	}
	if err := pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error { return b.swap(ctx, tx) }); err != nil {
		return fmt.Errorf("rebuild %s: swap: %w", b.name, err)
	}
	b.finish(ctx)
	return nil
}

// shadowRebuild is one online rebuild, phase by phase: prepare the shadow
// tables, catch them up with the log, build their other indexes, swap them
// in (after the last events, holding the live checkpoint), finish.
type shadowRebuild struct {
	r                 *Runner
	progress          Progress
	name, shadow, old string
	tables            []string
	deferred          []string // secondary indexes, built after the bulk
	failed            []failedEvent
	pos               uint64 // the last event applied
	done, total       int64
}

// prepare makes fresh shadow tables shaped like the live ones, with only the
// indexes writes need (primary keys, unique ones: ON CONFLICT and lookups);
// the others are built once the bulk of the events is in.
func (b *shadowRebuild) prepare(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, b.r.cfg.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+b.shadow+` CASCADE; CREATE SCHEMA `+b.shadow); err != nil {
			return err
		}
		for _, t := range b.tables {
			if err := b.shadowTable(ctx, tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c, ok := b.r.cfg.Store.(Counter); ok {
		b.total, _ = c.CountAfter(ctx, 0)
	}
	return nil
}

func (b *shadowRebuild) shadowTable(ctx context.Context, tx pgx.Tx, t string) error {
	tbl := pgx.Identifier{t}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE TABLE `+b.shadow+`.`+tbl+` (LIKE public.`+tbl+` INCLUDING ALL EXCLUDING INDEXES)`); err != nil {
		return fmt.Errorf("shadow of %s: %w", t, err)
	}
	idx, err := shadowIndexes(ctx, tx, t, b.shadow)
	if err != nil {
		return fmt.Errorf("indexes of %s: %w", t, err)
	}
	for _, ix := range idx {
		if !ix.now {
			b.deferred = append(b.deferred, ix.create)
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
	return nil
}

// replay is the one replay loop of both passes: it applies the batches next
// returns, in order, until it returns none, and counts them.
func (b *shadowRebuild) replay(ctx context.Context, next func(context.Context) ([]Record, error), apply func([]Record) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		records, err := next(ctx)
		if err != nil || len(records) == 0 {
			return err
		}
		if err := apply(records); err != nil {
			return err
		}
		b.pos = records[len(records)-1].Position
		b.done += int64(len(records))
		if b.progress != nil {
			b.progress(b.done, max(b.total, b.done))
		}
	}
}

// catchUp replays the log into the shadow tables, batch by batch, each in
// its own transaction, while the next batch is read and decoded.
func (b *shadowRebuild) catchUp(ctx context.Context) error {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	ahead := b.prefetch(fctx)
	next := func(context.Context) ([]Record, error) {
		f, ok := <-ahead
		if !ok {
			return nil, nil
		}
		return f.records, f.err
	}
	return b.replay(ctx, next, func(records []Record) error { return b.applyBatch(ctx, records) })
}

type fetched struct {
	records []Record
	err     error
}

// prefetch reads and decodes the log from b.pos ahead of the replay.
func (b *shadowRebuild) prefetch(ctx context.Context) <-chan fetched {
	ahead := make(chan fetched, 2)
	go func() {
		defer close(ahead)
		from := b.pos
		for {
			batch, err := b.r.cfg.Store.ReadAll(ctx, from, rebuildBatch)
			if err == nil && len(batch) == 0 {
				return
			}
			select {
			case ahead <- fetched{decode(batch), err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			from = batch[len(batch)-1].Position
		}
	}()
	return ahead
}

// applyBatch applies one catch-up batch in a transaction of its own; when
// the projector fails on it, again event by event where needed.
func (b *shadowRebuild) applyBatch(ctx context.Context, records []Record) error {
	r := b.r
	var handleErr error
	err := pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		err := r.applyShadow(ctx, tx, b.shadow, records, &b.failed, false)
		var herr *HandleError
		if errors.As(err, &herr) {
			handleErr = herr.Err
		}
		return err
	})
	if handleErr != nil && r.ownFailure(ctx, handleErr) {
		err = pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
			return r.applyShadow(ctx, tx, b.shadow, records, &b.failed, true)
		})
	}
	return err
}

// indexes builds the secondary indexes, now that the bulk of the rows is in.
func (b *shadowRebuild) indexes(ctx context.Context) error {
	for _, create := range b.deferred {
		if _, err := b.r.cfg.Pool.Exec(ctx, create); err != nil {
			return err
		}
	}
	return nil
}

// swap, in one transaction holding the live checkpoint (the running
// projector cannot commit meanwhile), applies what came since the catch-up
// and swaps the shadow tables in.
func (b *shadowRebuild) swap(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, b.name); err != nil {
		return err
	}
	// The tail is short: applied isolated at once, so that an event the
	// projector fails on does not end the swap's transaction.
	next := func(ctx context.Context) ([]Record, error) {
		batch, err := b.r.cfg.Store.ReadAll(ctx, b.pos, rebuildBatch)
		return decode(batch), err
	}
	apply := func(records []Record) error { return b.r.applyShadow(ctx, tx, b.shadow, records, &b.failed, true) }
	if err := b.replay(ctx, next, apply); err != nil {
		return err
	}
	if err := b.swapTables(ctx, tx); err != nil {
		return err
	}
	if err := b.keepQuarantine(ctx, tx); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position = $2, status = 'running', last_error = '', failures = 0, updated_at = now() WHERE name = $1`, b.name, int64(b.pos))
	return err
}

func (b *shadowRebuild) swapTables(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+b.old+` CASCADE; CREATE SCHEMA `+b.old); err != nil {
		return err
	}
	for _, t := range b.tables {
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
		if _, err := tx.Exec(ctx, `ALTER TABLE public.`+tbl+` SET SCHEMA `+b.old+`; ALTER TABLE `+b.shadow+`.`+tbl+` SET SCHEMA public`); err != nil {
			return fmt.Errorf("swap %s: %w", t, err)
		}
	}
	_, err := tx.Exec(ctx, `DROP SCHEMA `+b.old+` CASCADE; DROP SCHEMA `+b.shadow+` CASCADE`)
	return err
}

// keepQuarantine makes the projector's quarantine exactly the events this
// replay could not apply.
func (b *shadowRebuild) keepQuarantine(ctx context.Context, tx pgx.Tx) error {
	positions := make([]int64, len(b.failed))
	for i, f := range b.failed {
		positions[i] = int64(f.rec.Position)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM projection_quarantine WHERE projector = $1 AND NOT (position = ANY($2))`, b.name, positions); err != nil {
		return err
	}
	for _, f := range b.failed {
		if err := quarantine(ctx, tx, b.name, f.rec, f.err.Error(), 1); err != nil {
			return err
		}
	}
	return nil
}

// finish reports what was quarantined and lets the live projector go on.
func (b *shadowRebuild) finish(ctx context.Context) {
	r := b.r
	for _, f := range b.failed {
		r.log.Error("event quarantined by the rebuild: the projector skips it", "position", f.rec.Position, "stream", f.rec.Stream, "type", f.rec.Type, "error", f.err)
	}
	r.refreshQuarantined(ctx)
	r.poke()
	if as, ok := r.cfg.Projector.(AfterSwapper); ok {
		as.AfterSwap(ctx, r.cfg.Pool)
	}
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
