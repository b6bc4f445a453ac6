package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Pipelined is implemented by projectors whose Handle never looks at what an
// Exec returned (its command tag; a pipelined Exec returns an empty one: ask
// with changed instead): the runner may then send their writes to
// PostgreSQL in one pipelined round trip per batch instead of one per
// statement. Reads (Query, QueryRow, CopyFrom…) still see every earlier
// write: queued statements are sent first.
type Pipelined interface {
	Pipelined() bool
}

// pipelineTx queues Exec calls and sends them as one batch when something
// needs their effects (a read, a copy, the end of the batch).
type pipelineTx struct {
	pgx.Tx
	batch  *pgx.Batch
	queued int
}

func newPipelineTx(tx pgx.Tx) *pipelineTx { return &pipelineTx{Tx: tx, batch: &pgx.Batch{}} }

const maxQueued = 2000

// Exec queues the statement; its error, if any, comes from the next flush.
// The returned command tag is empty.
func (p *pipelineTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.batch.Queue(sql, args...)
	p.queued++
	if p.queued >= maxQueued {
		return pgconn.CommandTag{}, p.flush(ctx)
	}
	return pgconn.CommandTag{}, nil
}

func (p *pipelineTx) flush(ctx context.Context) error {
	if p.queued == 0 {
		return nil
	}
	n := p.queued
	br := p.Tx.SendBatch(ctx, p.batch)
	p.batch, p.queued = &pgx.Batch{}, 0
	for i := range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("pipelined statement %d of %d: %w", i+1, n, err)
		}
	}
	return br.Close()
}

func (p *pipelineTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Query(ctx, sql, args...)
}

func (p *pipelineTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.Tx.QueryRow(ctx, sql, args...)
}

func (p *pipelineTx) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := p.flush(ctx); err != nil {
		return 0, err
	}
	return p.Tx.CopyFrom(ctx, t, cols, src)
}

func (p *pipelineTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := p.flush(ctx); err != nil {
		return errBatch{err}
	}
	return p.Tx.SendBatch(ctx, b)
}

func (p *pipelineTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.Tx.Begin(ctx)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow(b) }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }

// BatchHandler is implemented by projectors that apply a whole batch at
// once, to merge work its events share (e.g. one update per student rather
// than one per event). The effect must equal Handle on each record in order.
type BatchHandler interface {
	HandleBatch(ctx context.Context, tx pgx.Tx, records []Record) error
}

// handleAll applies records to tx, pipelined when the projector allows it.
func handleAll(ctx context.Context, p Projector, tx pgx.Tx, records []Record) error {
	return handleRecords(ctx, p, tx, records, true)
}

// handleRecords applies records to tx, pipelined when pipeline is set and
// the projector allows it. Isolating a failing batch does not pipeline: pgx
// closes the connection when an argument of a pipelined batch cannot be
// encoded after it sent the batch's first messages, which would end the
// transaction the isolation works in.
func handleRecords(ctx context.Context, p Projector, tx pgx.Tx, records []Record, pipeline bool) error {
	ptx, pipe := pipelineFor(p, tx, pipeline)
	if err := dispatch(ctx, p, ptx, records); err != nil {
		return err
	}
	if pipe != nil {
		if err := pipe.flush(ctx); err != nil {
			return fmt.Errorf("batch of %d events ending at position %d: %w", len(records), records[len(records)-1].Position, err)
		}
	}
	return nil
}

// pipelineFor is tx, pipelined (pipe) when pipeline is set and the
// projector allows it.
func pipelineFor(p Projector, tx pgx.Tx, pipeline bool) (pgx.Tx, *pipelineTx) {
	if pl, ok := p.(Pipelined); ok && pl.Pipelined() && pipeline {
		pipe := newPipelineTx(tx)
		return pipe, pipe
	}
	return tx, nil
}

// dispatch hands records to the projector: to HandleBatch when it has one,
// else to Handle one by one.
func dispatch(ctx context.Context, p Projector, tx pgx.Tx, records []Record) error {
	if bh, ok := p.(BatchHandler); ok {
		if err := bh.HandleBatch(ctx, tx, records); err != nil {
			return fmt.Errorf("batch of %d events ending at position %d: %w", len(records), records[len(records)-1].Position, err)
		}
		return nil
	}
	for _, rec := range records {
		if err := p.Handle(ctx, tx, rec); err != nil {
			return fmt.Errorf("%s at position %d (%s): %w", rec.Type, rec.Position, rec.Stream, err)
		}
	}
	return nil
}

// changed runs a write (INSERT … ON CONFLICT DO NOTHING, UPDATE … WHERE)
// with RETURNING and reports whether it changed a row: what a command tag's
// RowsAffected tells, for pipelined projectors (a read, so the writes queued
// before it are sent first).
func changed(ctx context.Context, tx pgx.Tx, sql string, args ...any) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, sql+` RETURNING true`, args...).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
