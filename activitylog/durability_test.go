package activitylog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/pgtest"
)

const (
	childDBEnv   = "LOCKSTEP_LOGS_CHILD_DB"
	childAddrEnv = "LOCKSTEP_LOGS_CHILD_ADDR"
)

// TestSIGKILLAfter201LosesNothing runs the ingest endpoints and a slow log
// writer in a child process over BUS=postgres, sends logs from four
// clients, SIGKILLs the child right after a 201 while requests are in
// flight, restarts a writer, and checks that every acknowledged log is
// stored exactly once.
func TestSIGKILLAfter201LosesNothing(t *testing.T) {
	if os.Getenv(childDBEnv) != "" {
		t.Skip("runs only in the parent process")
	}
	t.Parallel()
	db := pgtest.New(t)
	addrFile := filepath.Join(t.TempDir(), "addr")
	child := exec.Command(os.Args[0], "-test.run=^TestIngestChildProcess$")
	child.Env = append(os.Environ(), childDBEnv+"="+db.URL, childAddrEnv+"="+addrFile)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	})
	var addr string
	apptest.Eventually(t, "the child to listen", 30*time.Second, func() bool {
		b, err := os.ReadFile(addrFile)
		addr = string(b)
		return err == nil && addr != ""
	})
	base := "http://" + addr

	tok := newTokens(t)
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		requests atomic.Int32
		kill     = make(chan struct{})
		killOnce sync.Once
		wg       sync.WaitGroup
	)
	const killAfter = 60 // acknowledged requests
	for c := range 4 {
		user := int64(11 + c)
		bearer := token(t, tok, user, domain.RoleStudent)
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				var marks []string
				var path string
				var body []byte
				if i%2 == 0 {
					path = activitylog.BatchPath
					var entries []map[string]any
					for j := range 25 {
						m := fmt.Sprintf("%d-%d-%d", user, i, j)
						marks = append(marks, m)
						entries = append(entries, map[string]any{"event_type": "CLICK", "event_data": map[string]any{"mark": m}})
					}
					body, _ = json.Marshal(map[string]any{"logs": entries})
				} else {
					path = activitylog.ActivityPath
					m := fmt.Sprintf("%d-%d-0", user, i)
					marks = append(marks, m)
					body, _ = json.Marshal(map[string]any{"event_type": "SCROLL", "event_data": map[string]any{"mark": m}})
				}
				req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+bearer)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the child is gone
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Errorf("%s answered %d", path, resp.StatusCode)
					return
				}
				mu.Lock()
				for _, m := range marks {
					acked[m] = true
				}
				mu.Unlock()
				if requests.Add(1) == killAfter {
					killOnce.Do(func() {
						// Right after this 201, with the other clients' requests in flight.
						_ = child.Process.Signal(syscall.SIGKILL)
						close(kill)
					})
				}
			}
		})
	}
	select {
	case <-kill:
	case <-time.After(60 * time.Second):
		t.Fatal("the clients never got enough 201s")
	}
	wg.Wait()
	_ = child.Wait()
	killed = true
	if t.Failed() {
		return
	}

	storedAtKill := countRows(t, db.Pool, "true")
	mu.Lock()
	want := len(acked)
	mu.Unlock()
	t.Logf("killed after %d acknowledged requests (%d logs); %d rows stored by then", requests.Load(), want, storedAtKill)
	if storedAtKill >= want {
		t.Fatal("the child's writer had stored everything before the kill; the test proved nothing")
	}

	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: db.Pool, PollInterval: 10 * time.Millisecond})
	startWriter(t, b, activitylog.NewPGStore(db.Pool))
	marks := func() map[string]int {
		rows, err := db.Pool.Query(context.Background(), `SELECT event_data->>'mark', count(*) FROM activity_logs GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var m string
			var n int
			if err := rows.Scan(&m, &n); err != nil {
				t.Fatal(err)
			}
			out[m] = n
		}
		return out
	}
	var missing int
	apptest.Eventually(t, "every acknowledged log stored", 30*time.Second, func() bool {
		got := marks()
		missing = 0
		for m := range acked {
			if got[m] == 0 {
				missing++
			}
		}
		return missing == 0
	})
	for m, n := range marks() {
		if n != 1 {
			t.Errorf("log %s stored %d times", m, n)
		}
	}
}

// slowStore delays every write so that the child is killed with logs
// accepted but not yet stored.
type slowStore struct{ inner activitylog.Store }

func (s slowStore) Write(ctx context.Context, logs []activitylog.Log) error {
	time.Sleep(40 * time.Millisecond)
	return s.inner.Write(ctx, logs)
}

// TestIngestChildProcess is the child of TestSIGKILLAfter201LosesNothing:
// the ingest endpoints over BUS=postgres and a slow log writer, until killed.
func TestIngestChildProcess(t *testing.T) {
	url := os.Getenv(childDBEnv)
	if url == "" {
		t.Skip("helper process for TestSIGKILLAfter201LosesNothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: pool, PollInterval: 10 * time.Millisecond})
	h := activitylog.NewHandler(activitylog.HandlerConfig{
		Bus: b, IDs: activitylog.NewIDs(pool), Sessions: activitylog.NewReadModelSessions(pool, time.Second), Logger: apptest.QuietLogger(),
	})
	startWriter(t, b, slowStore{activitylog.NewPGStore(pool)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: newRouter(newTokens(t), h), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	file := os.Getenv(childAddrEnv)
	if err := os.WriteFile(file+".tmp", []byte(ln.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done() // the parent kills us long before
}
