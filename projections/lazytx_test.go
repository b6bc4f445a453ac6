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

// txCounter counts the transactions a projector's batches begin on their
// own (pgx's Begin, "begin") and those sent whole in one round trip (a
// batch opening with BEGIN).
type txCounter struct{ begun, whole atomic.Int64 }

func (c *txCounter) saw(sql string) {
	switch sql {
	case "begin":
		c.begun.Add(1)
	case "BEGIN":
		c.whole.Add(1)
	}
}

func (c *txCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.saw(d.SQL)
	return ctx
}
func (c *txCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *txCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *txCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.saw(d.SQL)
}
func (c *txCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// pipelinedLog is a logProjector whose writes the runner may pipeline.
type pipelinedLog struct{ *logProjector }

func (pipelinedLog) Pipelined() bool { return true }

// TestRunnerSendsABatchThatOnlyWritesInOneRoundTrip: a batch whose events
// the projector passes over, and a pipelined projector's batch that only
// writes, each go to PostgreSQL whole, with the checkpoint's move (one
// BEGIN…COMMIT batch, no transaction begun on its own); a projector that
// does not pipeline begins its transaction when it first writes. The
// checkpoint is at the head every time, every wanted event applied once. A
// checkpoint moved under the runner is still noticed, and moves nothing.
func TestRunnerSendsABatchThatOnlyWritesInOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, es := runnerDB(t, postgres.Config{}, "picky", "piped")
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	tracer := &txCounter{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	picky := &logProjector{name: "picky", wanted: "Wanted"}
	piped := &logProjector{name: "piped", wanted: "Wanted"}
	plain := projections.NewRunner(projections.Config{Store: es, Pool: pool, Projector: picky})
	whole := projections.NewRunner(projections.Config{Store: es, Pool: pool, Projector: pipelinedLog{piped}})
	catchUp := func(when string, r *projections.Runner, begun, sentWhole int64) {
		t.Helper()
		b0, w0 := tracer.begun.Load(), tracer.whole.Load()
		if err := r.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		head, err := es.HeadPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pos, _, _ := checkpoint(t, db.Pool, r.Name()); uint64(pos) != head || r.State().Position != head {
			t.Fatalf("%s, %s: checkpoint %d, state %d, head %d", r.Name(), when, pos, r.State().Position, head)
		}
		if b, w := tracer.begun.Load()-b0, tracer.whole.Load()-w0; b != begun || w != sentWhole {
			t.Fatalf("%s, %s: %d transactions begun, %d sent whole; want %d and %d", r.Name(), when, b, w, begun, sentWhole)
		}
	}

	appendN(t, es, 3, 4, "Other")
	catchUp("passed over", plain, 0, 1)
	catchUp("passed over", whole, 0, 1)
	if picky.applied.Load()+piped.applied.Load() != 0 {
		t.Fatal("a batch passed over applied events")
	}

	appendN(t, es, 1, 1, "Wanted")
	appendN(t, es, 1, 2, "Other")
	catchUp("applied", plain, 1, 0)
	catchUp("applied", whole, 0, 1)
	if picky.applied.Load() != 1 || piped.applied.Load() != 1 {
		t.Fatalf("applied %d and %d events, want 1 each", picky.applied.Load(), piped.applied.Load())
	}
	if a, b := snapshot(t, db.Pool, "picky"), snapshot(t, db.Pool, "piped"); a != b || !strings.HasPrefix(a, "1:") {
		t.Fatalf("read models %s and %s", a, b)
	}

	// Sent whole over a checkpoint that moved, the writes do not commit.
	wpos, _, _ := checkpoint(t, db.Pool, "piped")
	writes := &pgx.Batch{}
	writes.Queue(`INSERT INTO rm_piped (position, stream, version) VALUES (1, 'x', 1)`)
	if herr, err := projections.SendWhole(ctx, whole, uint64(wpos)-1, uint64(wpos)+5, writes); !errors.Is(err, projections.ErrCheckpointMoved) || herr != nil {
		t.Fatalf("sent whole from a checkpoint that moved: %v, %v", herr, err)
	}
	if got := snapshot(t, db.Pool, "piped"); !strings.HasPrefix(got, "1:") {
		t.Fatalf("writes sent over a checkpoint that moved committed: %s", got)
	}
	// A write that fails is the projector's failure, and nothing commits.
	writes = &pgx.Batch{}
	writes.Queue(`INSERT INTO rm_piped (position, stream, version) VALUES (2, 'x', 1)`)
	writes.Queue(`INSERT INTO rm_piped (position, stream, version) VALUES (2, 'x', 1)`)
	if herr, err := projections.SendWhole(ctx, whole, uint64(wpos), uint64(wpos)+5, writes); herr == nil || err == nil {
		t.Fatalf("a failing write: %v, %v", herr, err)
	}
	if now, _, _ := checkpoint(t, db.Pool, "piped"); now != wpos || !strings.HasPrefix(snapshot(t, db.Pool, "piped"), "1:") {
		t.Fatalf("a failing write committed: checkpoint %d (was %d), %s", now, wpos, snapshot(t, db.Pool, "piped"))
	}

	pos, _, _ := checkpoint(t, db.Pool, "picky")
	if err := projections.SkipTo(ctx, plain, uint64(pos)-1, uint64(pos)+5); !errors.Is(err, projections.ErrCheckpointMoved) {
		t.Fatalf("skip from a checkpoint that moved: %v", err)
	}
	if now, _, _ := checkpoint(t, db.Pool, "picky"); now != pos {
		t.Fatalf("a skip from a checkpoint that moved moved it to %d", now)
	}
	if err := projections.SkipTo(ctx, plain, uint64(pos), uint64(pos)+5); err != nil {
		t.Fatal(err)
	}
	if now, _, _ := checkpoint(t, db.Pool, "picky"); now != pos+5 {
		t.Fatalf("skip: checkpoint %d, want %d", now, pos+5)
	}
}
