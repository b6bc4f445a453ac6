package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

// logProjector records every applied position in its own table, whose primary
// key makes a double application fail loudly.
type logProjector struct {
	name    string
	delay   time.Duration
	failOn  atomic.Value // string: event type that fails
	applied atomic.Int64
}

func (p *logProjector) Name() string { return p.name }

func (p *logProjector) table() string { return pgx.Identifier{"rm_" + p.name}.Sanitize() }

func (p *logProjector) Handle(ctx context.Context, tx pgx.Tx, r projections.Record) error {
	if f, _ := p.failOn.Load().(string); f != "" && r.Type == f {
		return fmt.Errorf("cannot project %s", r.Type)
	}
	if p.delay > 0 {
		time.Sleep(p.delay)
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+p.table()+` (position, stream, version) VALUES ($1, $2, $3)`, int64(r.Position), r.Stream, r.Version)
	if err == nil {
		p.applied.Add(1)
	}
	return err
}

func (p *logProjector) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE `+p.table())
	return err
}

func createTable(t *testing.T, pool *pgxpool.Pool, name string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `CREATE TABLE IF NOT EXISTS `+pgx.Identifier{"rm_" + name}.Sanitize()+` (position bigint PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL)`)
	if err != nil {
		t.Fatal(err)
	}
}

func appendN(t *testing.T, es eventstore.Store, streams, perStream int, typ string) {
	t.Helper()
	ctx := context.Background()
	for s := range streams {
		for range perStream {
			_, err := es.Append(ctx, fmt.Sprintf("thing-%d", s), eventstore.Any, eventstore.EventData{
				ID: uuid.New(), Type: typ, Data: json.RawMessage(`{"n":1}`),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// snapshot is the read model's content, for comparing two builds.
func snapshot(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT position, stream, version FROM `+pgx.Identifier{"rm_" + name}.Sanitize()+` ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	n := 0
	for rows.Next() {
		var pos, ver int64
		var stream string
		if err := rows.Scan(&pos, &stream, &ver); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s/%d;", stream, ver)
		n++
	}
	return fmt.Sprintf("%d:%s", n, b.String())
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkpoint(t *testing.T, pool *pgxpool.Pool, name string) (int64, string, string) {
	t.Helper()
	var pos int64
	var status, lastErr string
	err := pool.QueryRow(context.Background(), `SELECT position, status, last_error FROM projection_checkpoints WHERE name = $1`, name).Scan(&pos, &status, &lastErr)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return pos, status, lastErr
}

func TestRunnerAppliesEveryEventOnceAndGoesLive(t *testing.T) {
	db := pgtest.New(t)
	es := postgres.New(db.Pool, postgres.Config{})
	defer es.Close()
	createTable(t, db.Pool, "live")
	appendN(t, es, 3, 10, "ThingHappened")

	p := &logProjector{name: "live"}
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	eventually(t, "stored events applied", func() bool { return p.applied.Load() == 30 })
	appendN(t, es, 2, 5, "ThingHappened")
	eventually(t, "live events applied", func() bool { return p.applied.Load() == 40 })

	head, err := es.HeadPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "checkpoint at head", func() bool { pos, _, _ := checkpoint(t, db.Pool, "live"); return uint64(pos) == head })
	if got := r.State(); got.Status != projections.StatusRunning || got.Position != head {
		t.Fatalf("state = %+v, want running at %d", got, head)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
	if got := snapshot(t, db.Pool, "live"); !strings.HasPrefix(got, "40:") {
		t.Fatalf("read model has %s", got[:8])
	}
}

func TestRunnerParksAfterRepeatedFailuresAndResumesWhenUnparked(t *testing.T) {
	db := pgtest.New(t)
	es := postgres.New(db.Pool, postgres.Config{})
	defer es.Close()
	createTable(t, db.Pool, "parking")
	appendN(t, es, 1, 3, "Good")
	appendN(t, es, 1, 1, "Poison")
	appendN(t, es, 1, 2, "Good")

	p := &logProjector{name: "parking"}
	p.failOn.Store("Poison")
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p, MaxFailures: 3, Backoff: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	eventually(t, "parked", func() bool { _, st, _ := checkpoint(t, db.Pool, "parking"); return st == projections.StatusParked })
	_, _, lastErr := checkpoint(t, db.Pool, "parking")
	if !strings.Contains(lastErr, "cannot project Poison") {
		t.Fatalf("last_error = %q, want the projector's error", lastErr)
	}
	// The batch holding the poison event was rolled back whole: nothing after
	// the failure was applied, and nothing was skipped.
	if got := snapshot(t, db.Pool, "parking"); !strings.HasPrefix(got, "0:") && !strings.HasPrefix(got, "3:") {
		t.Fatalf("parked read model = %s, want only events before the poison one", got)
	}
	if s := r.State(); s.Status != projections.StatusParked || !strings.Contains(s.LastError, "Poison") {
		t.Fatalf("state = %+v", s)
	}

	p.failOn.Store("")
	if err := r.Unpark(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all applied after unpark", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "parking"), "6:") })
}

func TestRebuildReplaysFromZeroWhileRunning(t *testing.T) {
	db := pgtest.New(t)
	es := postgres.New(db.Pool, postgres.Config{})
	defer es.Close()
	createTable(t, db.Pool, "rebuilt")
	appendN(t, es, 4, 5, "ThingHappened")

	p := &logProjector{name: "rebuilt"}
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	head, err := es.HeadPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "caught up", func() bool { return p.applied.Load() == 20 && r.State().Position == head })
	before := snapshot(t, db.Pool, "rebuilt")

	if err := r.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Replayed and committed: applied counts inside the transaction, the
	// runner's position only after its commit.
	eventually(t, "replayed", func() bool { return p.applied.Load() >= 40 && r.State().Position == head })
	if after := snapshot(t, db.Pool, "rebuilt"); after != before {
		t.Fatalf("rebuilt read model differs:\nbefore %s\nafter  %s", before, after)
	}
}

// TestKillMidBatchThenRestartEqualsCleanRebuild runs a runner in a child
// process, SIGKILLs it while a batch is in flight, restarts a runner on the
// same database, and checks the read model equals a clean rebuild.
func TestKillMidBatchThenRestartEqualsCleanRebuild(t *testing.T) {
	if os.Getenv("LOCKSTEP_RUNNER_CHILD_DB") != "" {
		t.Skip("runs only in the parent process")
	}
	db := pgtest.New(t)
	es := postgres.New(db.Pool, postgres.Config{BatchSize: 50})
	defer es.Close()
	createTable(t, db.Pool, "killed")
	createTable(t, db.Pool, "clean")
	appendN(t, es, 10, 40, "ThingHappened") // 400 events, 8 batches

	child := exec.Command(os.Args[0], "-test.run=^TestRunnerChildProcess$", "-test.v")
	child.Env = append(os.Environ(), "LOCKSTEP_RUNNER_CHILD_DB="+db.URL)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once at least one batch committed and the next is under way.
	eventually(t, "child committed a batch", func() bool { pos, _, _ := checkpoint(t, db.Pool, "killed"); return pos > 0 })
	time.Sleep(30 * time.Millisecond)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killedAt, _, _ := checkpoint(t, db.Pool, "killed")
	if got := snapshot(t, db.Pool, "killed"); strings.HasPrefix(got, "400:") {
		t.Fatal("child finished before it was killed; the test proved nothing")
	}
	t.Logf("child killed with checkpoint at %d (%s events applied)", killedAt, strings.SplitN(snapshot(t, db.Pool, "killed"), ":", 2)[0])

	restarted := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: &logProjector{name: "killed"}})
	if err := restarted.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	clean := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: &logProjector{name: "clean"}})
	if err := clean.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, want := snapshot(t, db.Pool, "killed"), snapshot(t, db.Pool, "clean")
	if !strings.HasPrefix(want, "400:") {
		t.Fatalf("clean rebuild has %s events", strings.SplitN(want, ":", 2)[0])
	}
	if got != want {
		t.Fatalf("read model after kill and restart differs from a clean rebuild")
	}
}

// TestRunnerChildProcess is the child of the kill test: a slow projector that
// is killed mid-batch by its parent.
func TestRunnerChildProcess(t *testing.T) {
	url := os.Getenv("LOCKSTEP_RUNNER_CHILD_DB")
	if url == "" {
		t.Skip("helper process for TestKillMidBatchThenRestartEqualsCleanRebuild")
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	es := postgres.New(pool, postgres.Config{BatchSize: 50})
	r := projections.NewRunner(projections.Config{Store: es, Pool: pool, Projector: &logProjector{name: "killed", delay: 2 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = r.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) && err != nil {
		t.Fatal(err)
	}
}
