package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

// stalled blocks every batch until released.
type stalled struct {
	name     string
	eventual bool
	release  chan struct{}
}

func (p *stalled) Name() string { return p.name }
func (p *stalled) Handle(ctx context.Context, _ pgx.Tx, _ projections.Record) error {
	<-p.release
	return nil
}
func (p *stalled) Reset(context.Context, pgx.Tx) error { return nil }
func (p *stalled) Eventual() bool                      { return p.eventual }

func TestWaitForSkipsEventualProjectors(t *testing.T) {
	for _, eventual := range []bool{false, true} {
		g, p, head, stop := stalledGroup(t, eventual, true)
		wctx, wcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := g.WaitFor(wctx, head)
		wcancel()
		if eventual && err != nil {
			t.Errorf("WaitFor waited for an Eventual projector: %v", err)
		}
		if !eventual && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor did not wait for a stalled projector (err %v)", err)
		}
		close(p.release)
		stop()
	}
}

// stalledGroup runs a stalled projector (eventual or not) in a group that
// reads its state locally or from its checkpoint, and appends one event: a
// command that appended it would wait for head. stop ends the runner.
func stalledGroup(t *testing.T, eventual, local bool) (g *projections.Group, p *stalled, head uint64, stop func()) {
	t.Helper()
	db := pgtest.New(t)
	es := postgres.New(db.Pool, postgres.Config{})
	p = &stalled{name: "stalled", eventual: eventual, release: make(chan struct{})}
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p})
	g = projections.NewGroup(db.Pool, local, r)
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	eventually(t, "runner running", func() bool { return r.State().Status == projections.StatusRunning })
	appendN(t, es, 1, 1, "ThingHappened")
	head, err := es.HeadPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return g, p, head, func() {
		cancel()
		es.Close()
	}
}
