package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// QuarantinedEvent is an event a projector could not apply and skipped
// (table projection_quarantine).
type QuarantinedEvent struct {
	Projector string    `json:"projector"`
	Position  uint64    `json:"position"`
	Stream    string    `json:"stream"`
	Type      string    `json:"type"`
	Error     string    `json:"error"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Attempts is how many times the event failed on its own.
	Attempts int `json:"attempts"`
}

// ErrNotQuarantined: no event is quarantined at that position for the projector.
var ErrNotQuarantined = errors.New("projections: no event quarantined at that position")

// StillFailingError is returned by RetryQuarantined when the event still
// fails; it stays quarantined.
type StillFailingError struct {
	Position uint64
	Err      error
}

func (e *StillFailingError) Error() string {
	return fmt.Sprintf("event at position %d still fails: %v", e.Position, e.Err)
}
func (e *StillFailingError) Unwrap() error { return e.Err }

var errTooManyFailing = errors.New("too many failing events")

type failedEvent struct {
	rec Record
	err error
}

// bisect applies records within tx, unpipelined, each run under a savepoint: a run that
// fails is rolled back to its savepoint and applied again in halves, down to
// single events; an event that fails on its own is appended to failed and
// skipped. Records are applied in order, so the outcome is what applying
// every event but the failing ones would give. It returns errTooManyFailing
// as soon as more than limit events failed, and any failure that is not the
// projector's own (the connection, the server) as is.
func (r *Runner) bisect(ctx context.Context, tx pgx.Tx, records []Record, failed *[]failedEvent, limit int) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	herr := handleRecords(ctx, r.cfg.Projector, sp, records, false)
	if herr == nil {
		return sp.Commit(ctx)
	}
	if infrastructure(herr) || ctx.Err() != nil {
		return herr
	}
	if err := sp.Rollback(ctx); err != nil {
		return err
	}
	if len(records) == 1 {
		*failed = append(*failed, failedEvent{records[0], herr})
		if len(*failed) > limit {
			return errTooManyFailing
		}
		return nil
	}
	mid := len(records) / 2
	if err := r.bisect(ctx, tx, records[:mid], failed, limit); err != nil {
		return err
	}
	return r.bisect(ctx, tx, records[mid:], failed, limit)
}

// quarantine records (or records again) that rec failed for projector.
func quarantine(ctx context.Context, tx pgx.Tx, projector string, rec Record, reason string, attempts int) error {
	_, err := tx.Exec(ctx, `INSERT INTO public.projection_quarantine (projector, position, stream, type, error, attempts)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (projector, position) DO UPDATE SET error = EXCLUDED.error, last_seen = now(),
			attempts = projection_quarantine.attempts + EXCLUDED.attempts`,
		projector, int64(rec.Position), rec.Stream, rec.Type, reason, attempts)
	if err != nil {
		return fmt.Errorf("quarantine event %d: %w", rec.Position, err)
	}
	return nil
}

// Quarantined lists the events quarantined for this projector, oldest
// position first, at most limit (all when limit <= 0).
func (r *Runner) Quarantined(ctx context.Context, limit int) ([]QuarantinedEvent, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := r.cfg.Pool.Query(ctx, `SELECT projector, position, stream, type, error, first_seen, last_seen, attempts
		FROM projection_quarantine WHERE projector = $1 ORDER BY position LIMIT NULLIF($2, -1)`, r.Name(), limit)
	if err != nil {
		return nil, fmt.Errorf("quarantine of %s: %w", r.Name(), err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (QuarantinedEvent, error) {
		var q QuarantinedEvent
		var pos int64
		err := row.Scan(&q.Projector, &pos, &q.Stream, &q.Type, &q.Error, &q.FirstSeen, &q.LastSeen, &q.Attempts)
		q.Position = uint64(pos)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("quarantine of %s: %w", r.Name(), err)
	}
	return out, nil
}

// RetryQuarantined applies the quarantined event at position now, out of
// order (after every event the projector applied since), and on success
// removes it from the quarantine, in one transaction. A projector whose read
// models depend on the order of events may then differ from a replay: rebuild
// it to get the in-order result. When the event still fails it stays
// quarantined (attempts counted) and a *StillFailingError is returned.
// WebSocket clients that already passed its position are not sent what it
// records (they see it in their next snapshot).
func (r *Runner) RetryQuarantined(ctx context.Context, position uint64) error {
	if position == 0 {
		return ErrNotQuarantined
	}
	batch, err := r.cfg.Store.ReadAll(ctx, position-1, 1)
	if err != nil {
		return fmt.Errorf("read event %d: %w", position, err)
	}
	if len(batch) == 0 || batch[0].Position != position {
		// The log has no such event (any more): nothing to apply.
		return r.SkipQuarantined(ctx, position)
	}
	records := decode(batch)
	name := r.Name()
	var failure error
	err = pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		// The checkpoint lock orders this with the live batches.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, name); err != nil {
			return err
		}
		var held int
		err := tx.QueryRow(ctx, `SELECT 1 FROM projection_quarantine WHERE projector = $1 AND position = $2 FOR UPDATE`, name, int64(position)).Scan(&held)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotQuarantined
		}
		if err != nil {
			return err
		}
		var failed []failedEvent
		if err := r.bisect(ctx, tx, records, &failed, 1); err != nil {
			return err
		}
		if len(failed) > 0 {
			failure = failed[0].err
			return quarantine(ctx, tx, name, records[0], failure.Error(), 1)
		}
		_, err = tx.Exec(ctx, `DELETE FROM projection_quarantine WHERE projector = $1 AND position = $2`, name, int64(position))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotQuarantined) {
			return err
		}
		return fmt.Errorf("retry event %d for %s: %w", position, name, err)
	}
	r.refreshQuarantined(ctx)
	// Also after a failure: what Handle announced it would change (e.g. the
	// lecture cache's held documents) is released.
	if ac, ok := r.cfg.Projector.(AfterCommitter); ok {
		ac.AfterCommit(ctx, records)
	}
	if failure != nil {
		return &StillFailingError{Position: position, Err: failure}
	}
	r.log.Info("quarantined event applied on retry", "position", position)
	return nil
}

// SkipQuarantined removes the event at position from the quarantine: the
// operator accepts that this projector never applies it. A rebuild meets it
// again and quarantines it again if it still fails.
func (r *Runner) SkipQuarantined(ctx context.Context, position uint64) error {
	tag, err := r.cfg.Pool.Exec(ctx, `DELETE FROM projection_quarantine WHERE projector = $1 AND position = $2`, r.Name(), int64(position))
	if err != nil {
		return fmt.Errorf("skip event %d for %s: %w", position, r.Name(), err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotQuarantined
	}
	r.log.Info("quarantined event skipped by an operator", "position", position)
	r.refreshQuarantined(ctx)
	return nil
}

func (r *Runner) refreshQuarantined(ctx context.Context) {
	var held int64
	if err := r.cfg.Pool.QueryRow(ctx, `SELECT count(*) FROM projection_quarantine WHERE projector = $1`, r.Name()).Scan(&held); err == nil {
		r.setState(func(s *State) { s.Quarantined = held })
	}
}
