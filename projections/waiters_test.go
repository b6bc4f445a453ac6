package projections_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

// Many commands wait for one projector at once (a class completing a
// subtask together): every one of them returns once the projector applied
// its event, none before, on an instance running the projectors (local) and
// on an API-only instance that reads their checkpoints (remote).
func TestWaitForWakesEveryWaiter(t *testing.T) {
	for _, local := range []bool{true, false} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			db := pgtest.New(t)
			es := postgres.New(db.Pool, postgres.Config{})
			defer es.Close()
			p := &stalled{name: "stalled", release: make(chan struct{})}
			r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p})
			g := projections.NewGroup(db.Pool, local, r)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go r.Run(ctx)
			eventually(t, "runner running", func() bool { return r.State().Status == projections.StatusRunning })
			appendN(t, es, 1, 1, "ThingHappened")
			head, err := es.HeadPosition(context.Background())
			if err != nil {
				t.Fatal(err)
			}

			const waiters = 200
			var wg sync.WaitGroup
			errs := make(chan error, waiters)
			var returned sync.Map
			for i := range waiters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer wcancel()
					err := g.WaitFor(wctx, head)
					returned.Store(i, true)
					errs <- err
				}()
			}
			time.Sleep(300 * time.Millisecond)
			early := 0
			returned.Range(func(any, any) bool { early++; return true })
			if early != 0 {
				t.Fatalf("%d of %d waiters returned before the projector applied the event", early, waiters)
			}
			close(p.release)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("a waiter returned %v after the projector caught up", err)
				}
			}
		})
	}
}
