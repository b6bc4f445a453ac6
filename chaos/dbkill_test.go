package chaos

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/simulator"
)

// lineWatch is an io.Writer that closes started once the simulator prints
// the header of its step lines (the set-up is over, the class begins).
type lineWatch struct {
	once    sync.Once
	started chan struct{}
	mu      sync.Mutex
	b       strings.Builder
}

func newLineWatch() *lineWatch { return &lineWatch{started: make(chan struct{})} }

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	w.mu.Unlock()
	if strings.Contains(string(p), "delivered to students") {
		w.once.Do(func() { close(w.started) })
	}
	return len(p), nil
}

// TestDatabaseConnectionsKilled kills every connection of the app's
// database three times during a class: every answer is 2xx or a 503 that
// a retry gets through, every student gets every step exactly once, no
// event is lost or doubled and the read models equal a clean rebuild.
func TestDatabaseConnectionsKilled(t *testing.T) {
	for _, bus := range []string{"postgres", "memory"} {
		t.Run("BUS="+bus, func(t *testing.T) {
			students, steps, speed := classSize()
			db := pgtest.New(t)
			admin := adminPool(t, db)
			srv := startServer(t, db.URL, "BUS="+bus, "STUCK_DETECTOR=false")

			w := newLineWatch()
			killed := make(chan []int, 1)
			go func() {
				var ns []int
				select {
				case <-w.started:
				case <-time.After(5 * time.Minute):
					killed <- ns
					return
				}
				per := time.Duration(float64(15*time.Second) / speed)
				for i := range 3 {
					time.Sleep(per/2 + time.Duration(i)*per)
					ns = append(ns, terminate(t, admin, db.Name))
				}
				killed <- ns
			}()
			r, err := simulator.Run(context.Background(), simulator.Config{
				Server: srv.URL(), Students: students, Steps: steps, HelpRate: 0.3, LogRate: 0.5, Speed: speed,
				Timeout: 10 * time.Minute, StepTimeout: 60 * time.Second, Seed: 7,
				Retries: 30, ReconnectFor: 60 * time.Second, Out: w, Accounts: fastAccounts(admin),
			})
			ns := <-killed
			t.Logf("connections terminated: %v", ns)
			classOK(t, r, err, false)
			if len(ns) != 3 || ns[0] == 0 || ns[1] == 0 || ns[2] == 0 {
				t.Fatalf("the kills did not all happen during the class: %v", ns)
			}
			eventsOK(t, admin, r)
			caughtUp(t, srv)
			srv.stop()
			projectionsOK(t, admin, db.URL)
		})
	}
}
