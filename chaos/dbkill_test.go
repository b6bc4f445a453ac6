package chaos

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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

// waitStarted waits up to 5 minutes for the class to deliver its first
// step; false when it did not.
func (w *lineWatch) waitStarted() bool {
	select {
	case <-w.started:
		return true
	case <-time.After(5 * time.Minute):
		return false
	}
}

// runDisruptedClass runs a class of students through server while a test
// disrupts it: clients retry (30 times) and reconnect (for a minute) through
// the disruption, accounts come from fastAccounts, the output goes to w.
func runDisruptedClass(server string, students, steps int, speed float64, seed int64, w *lineWatch, admin *pgxpool.Pool) (*simulator.Report, error) {
	return simulator.Run(context.Background(), simulator.Config{
		Server: server, Students: students, Steps: steps, HelpRate: 0.3, LogRate: 0.5, Speed: speed,
		Timeout: 10 * time.Minute, StepTimeout: 60 * time.Second, Seed: seed,
		Retries: 30, ReconnectFor: 60 * time.Second, Out: w, Accounts: fastAccounts(admin),
	})
}

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
				if !w.waitStarted() {
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
			r, err := runDisruptedClass(srv.URL(), students, steps, speed, 7, w, admin)
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
