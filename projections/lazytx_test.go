package projections_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/projections"
)

// lockCounter counts the statements that lock a projector's checkpoint row
// (the start of a batch's transaction).
type lockCounter struct{ locks atomic.Int64 }

func (c *lockCounter) saw(sql string) {
	if strings.Contains(sql, "projection_checkpoints") && strings.Contains(sql, "FOR UPDATE") {
		c.locks.Add(1)
	}
}

func (c *lockCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.saw(d.SQL)
	return ctx
}
func (c *lockCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *lockCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *lockCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.saw(d.SQL)
}
func (c *lockCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TestRunnerBeginsNoTransactionForABatchItPassesOver: a batch whose events
// the projector passes over moves the checkpoint without a transaction (no
// checkpoint lock, nothing applied); the first event it applies begins one,
// and the checkpoint is at the head both times. A checkpoint moved under
// the runner is still noticed.
func TestRunnerBeginsNoTransactionForABatchItPassesOver(t *testing.T) {
	ctx := context.Background()
	db, es := runnerDB(t, postgres.Config{}, "picky")
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	tracer := &lockCounter{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	p := &logProjector{name: "picky", wanted: "Wanted"}
	r := projections.NewRunner(projections.Config{Store: es, Pool: pool, Projector: p})
	atHead := func(when string) {
		t.Helper()
		head, err := es.HeadPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pos, _, _ := checkpoint(t, db.Pool, "picky"); uint64(pos) != head || r.State().Position != head {
			t.Fatalf("%s: checkpoint %d, state %d, head %d", when, pos, r.State().Position, head)
		}
	}

	appendN(t, es, 3, 4, "Other")
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	atHead("passed over")
	if n := tracer.locks.Load(); n != 0 || p.applied.Load() != 0 {
		t.Fatalf("a batch passed over locked the checkpoint %d times and applied %d events", n, p.applied.Load())
	}

	appendN(t, es, 1, 1, "Wanted")
	appendN(t, es, 1, 2, "Other")
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	atHead("applied")
	if n := tracer.locks.Load(); n != 1 || p.applied.Load() != 1 {
		t.Fatalf("a batch with one wanted event locked the checkpoint %d times and applied %d events", n, p.applied.Load())
	}

	pos, _, _ := checkpoint(t, db.Pool, "picky")
	if err := projections.SkipTo(ctx, r, uint64(pos)-1, uint64(pos)+5); !errors.Is(err, projections.ErrCheckpointMoved) {
		t.Fatalf("skip from a checkpoint that moved: %v", err)
	}
	if now, _, _ := checkpoint(t, db.Pool, "picky"); now != pos {
		t.Fatalf("a skip from a checkpoint that moved moved it to %d", now)
	}
	if err := projections.SkipTo(ctx, r, uint64(pos), uint64(pos)+5); err != nil {
		t.Fatal(err)
	}
	if now, _, _ := checkpoint(t, db.Pool, "picky"); now != pos+5 {
		t.Fatalf("skip: checkpoint %d, want %d", now, pos+5)
	}
}
