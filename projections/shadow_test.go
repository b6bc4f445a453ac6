package projections_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

// serialProjector owns a table with a bigserial column (a sequence the
// swap must keep) besides the applied positions.
type serialProjector struct{ logProjector }

func (p *serialProjector) Tables() []string { return []string{"rm_" + p.name} }

func TestRebuildOnlineUnderLiveTrafficEqualsCleanRebuild(t *testing.T) {
	db := pgtest.New(t)
	es := postgres.New(db.Pool, postgres.Config{})
	defer es.Close()
	ctx := context.Background()
	for _, name := range []string{"online", "reference"} {
		_, err := db.Pool.Exec(ctx, `CREATE TABLE `+pgx.Identifier{"rm_" + name}.Sanitize()+` (
			position bigint PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL, seq bigserial)`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `CREATE INDEX ON `+pgx.Identifier{"rm_" + name}.Sanitize()+` (stream)`); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, es, 20, 50, "ThingHappened") // 1,000 events before the rebuild

	live := &serialProjector{logProjector{name: "online"}}
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: live, CheckInterval: 50 * time.Millisecond})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.Run(rctx)
	eventually(t, "live projector caught up", func() bool { return live.applied.Load() == 1000 })

	// Live traffic and readers during the rebuild.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var reads, emptyReads, readErrs atomic.Int64
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			appendN(t, es, 1, 1, fmt.Sprintf("Live%d", i%3))
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int64
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_online`).Scan(&n); err != nil {
				readErrs.Add(1)
			} else if n == 0 {
				emptyReads.Add(1)
			}
			reads.Add(1)
		}
	})

	var progressCalls atomic.Int64
	var lastDone, lastTotal atomic.Int64
	err := r.RebuildOnline(ctx, func(done, total int64) {
		progressCalls.Add(1)
		lastDone.Store(done)
		lastTotal.Store(total)
	})
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if readErrs.Load() > 0 || emptyReads.Load() > 0 {
		t.Fatalf("readers saw %d errors and %d empty read models out of %d reads during the rebuild", readErrs.Load(), emptyReads.Load(), reads.Load())
	}
	if progressCalls.Load() == 0 || lastDone.Load() < 1000 || lastTotal.Load() < lastDone.Load() {
		t.Fatalf("progress: %d calls, last %d/%d", progressCalls.Load(), lastDone.Load(), lastTotal.Load())
	}

	// After the swap the live projector goes on from the rebuilt position.
	head, err := es.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "live projector at head after the swap", func() bool { return r.State().Position == head })

	ref := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: &serialProjector{logProjector{name: "reference"}}})
	if err := ref.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got, want := snapshot(t, db.Pool, "online"), snapshot(t, db.Pool, "reference")
	if got != want {
		t.Fatalf("online rebuild differs from a clean build: %s vs %s events", got[:8], want[:8])
	}
	// The swapped-in table still takes inserts that rely on its sequence.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rm_online (position, stream, version) VALUES (-1, 'x', 1)`); err != nil {
		t.Fatalf("sequence default lost in the swap: %v", err)
	}
	var schemas int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%' OR nspname LIKE 'replaced_%'`).Scan(&schemas); err != nil || schemas != 0 {
		t.Fatalf("%d leftover rebuild schemas (%v)", schemas, err)
	}
}
