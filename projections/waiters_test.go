package projections_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Many commands wait for one projector at once (a class completing a
// subtask together): every one of them returns once the projector applied
// its event, none before, on an instance running the projectors (local) and
// on an API-only instance that reads their checkpoints (remote).
func TestWaitForWakesEveryWaiter(t *testing.T) {
	for _, local := range []bool{true, false} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			g, p, head, stop := stalledGroup(t, false, local)
			defer stop()

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
