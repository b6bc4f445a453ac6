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
	name       string
	delay      time.Duration
	failOn     atomic.Value // string: event type that fails
	failOnInit string       // failOn until set
	// wanted, when set, is the only event type applied: the others are
	// passed over without touching the transaction.
	wanted  string
	applied atomic.Int64
}

func (p *logProjector) Name() string { return p.name }

func (p *logProjector) table() string { return pgx.Identifier{"rm_" + p.name}.Sanitize() }

func (p *logProjector) Handle(ctx context.Context, tx pgx.Tx, r projections.Record) error {
	f, ok := p.failOn.Load().(string)
	if !ok {
		f = p.failOnInit
	}
	if f != "" && r.Type == f {
		return fmt.Errorf("cannot project %s", r.Type)
	}
	if p.wanted != "" && r.Type != p.wanted {
		return nil
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

// runnerDB is a test database with a PostgreSQL event store (closed when the
// test ends) and the read-model tables of names.
func runnerDB(t *testing.T, cfg postgres.Config, names ...string) (*pgtest.DB, *postgres.Store) {
	t.Helper()
	db := pgtest.New(t)
	es := postgres.New(db.Pool, cfg)
	t.Cleanup(es.Close)
	for _, name := range names {
		createTable(t, db.Pool, name)
	}
	return db, es
}

// runInBackground runs r until the test ends.
func runInBackground(t *testing.T, r *projections.Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go r.Run(ctx)
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
	db, es := runnerDB(t, postgres.Config{}, "live")
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

// quarantine is the projector's quarantine table, as "position:type:attempts;".
func quarantine(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT position, type, attempts, error FROM projection_quarantine WHERE projector = $1 ORDER BY position`, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var pos int64
		var typ, reason string
		var attempts int
		if err := rows.Scan(&pos, &typ, &attempts, &reason); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d:%s:%d;", pos, typ, attempts)
	}
	return b.String()
}

// positionsOf returns the positions of the stored events of type typ.
func positionsOf(t *testing.T, es eventstore.Store, typ string) []uint64 {
	t.Helper()
	all, err := es.ReadAll(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, ev := range all {
		if ev.Type == typ {
			out = append(out, ev.Position)
		}
	}
	return out
}

func TestRunnerQuarantinesAPoisonEventAndKeepsApplyingTheRest(t *testing.T) {
	db, es := runnerDB(t, postgres.Config{}, "poisoned")
	appendN(t, es, 1, 3, "Good")
	appendN(t, es, 1, 1, "Poison")
	appendN(t, es, 1, 2, "Good")
	poison := positionsOf(t, es, "Poison")[0]

	p := &logProjector{name: "poisoned"}
	p.failOn.Store("Poison")
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p, MaxFailures: 3, Backoff: time.Millisecond, CheckInterval: 20 * time.Millisecond})
	runInBackground(t, r)

	// Every event but the poison one is applied, the poison one is set aside,
	// and the projector keeps running.
	eventually(t, "the events around the poison one applied", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "poisoned"), "5:") })
	if got, want := quarantine(t, db.Pool, "poisoned"), fmt.Sprintf("%d:Poison:1;", poison); got != want {
		t.Fatalf("quarantine = %q, want %q", got, want)
	}
	q, err := r.Quarantined(context.Background(), 0)
	if err != nil || len(q) != 1 || q[0].Stream != "thing-0" || !strings.Contains(q[0].Error, "cannot project Poison") {
		t.Fatalf("Quarantined = %+v, %v", q, err)
	}
	if _, st, _ := checkpoint(t, db.Pool, "poisoned"); st != projections.StatusRunning {
		t.Fatalf("checkpoint status = %q", st)
	}
	eventually(t, "state counts the quarantined event", func() bool { return r.State().Quarantined == 1 })
	if s := r.State(); s.Status != projections.StatusRunning || s.Reported() != "running" {
		t.Fatalf("state = %+v", s)
	}
	// Later events still flow.
	appendN(t, es, 2, 2, "Good")
	eventually(t, "later events applied", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "poisoned"), "9:") })

	// A retry while the projector still fails keeps it quarantined.
	var still *projections.StillFailingError
	if err := r.RetryQuarantined(context.Background(), poison); !errors.As(err, &still) {
		t.Fatalf("retry of a still failing event = %v", err)
	}
	if got := quarantine(t, db.Pool, "poisoned"); got != fmt.Sprintf("%d:Poison:2;", poison) {
		t.Fatalf("quarantine after a failed retry = %q", got)
	}
	if err := r.RetryQuarantined(context.Background(), poison+1); !errors.Is(err, projections.ErrNotQuarantined) {
		t.Fatalf("retry of a position not quarantined = %v", err)
	}
	// Fixed: the retry applies it and empties the quarantine.
	p.failOn.Store("")
	if err := r.RetryQuarantined(context.Background(), poison); err != nil {
		t.Fatal(err)
	}
	if got := quarantine(t, db.Pool, "poisoned"); got != "" {
		t.Fatalf("quarantine after a successful retry = %q", got)
	}
	if got := snapshot(t, db.Pool, "poisoned"); !strings.HasPrefix(got, "10:") {
		t.Fatalf("read model after retry = %s", got)
	}
	if s := r.State(); s.Quarantined != 0 {
		t.Fatalf("state after retry = %+v", s)
	}
}

func TestRunnerSkipAndRebuildsPassAPoisonEvent(t *testing.T) {
	db, es := runnerDB(t, postgres.Config{}, "skipped", "reference")
	ctx := context.Background()
	appendN(t, es, 3, 3, "Good")
	appendN(t, es, 1, 1, "Poison")
	appendN(t, es, 3, 3, "Good")
	poison := positionsOf(t, es, "Poison")[0]

	p := &serialProjector{logProjector{name: "skipped"}}
	p.failOn.Store("Poison")
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p, MaxFailures: 2, Backoff: time.Millisecond, CheckInterval: 20 * time.Millisecond})
	runInBackground(t, r)
	eventually(t, "poison quarantined", func() bool { return quarantine(t, db.Pool, "skipped") == fmt.Sprintf("%d:Poison:1;", poison) })
	eventually(t, "the rest applied", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "skipped"), "18:") })

	// Skip: out of the list, still not applied.
	if err := r.SkipQuarantined(ctx, poison); err != nil {
		t.Fatal(err)
	}
	if err := r.SkipQuarantined(ctx, poison); !errors.Is(err, projections.ErrNotQuarantined) {
		t.Fatalf("second skip = %v", err)
	}
	if got := quarantine(t, db.Pool, "skipped"); got != "" {
		t.Fatalf("quarantine after skip = %q", got)
	}

	// The reference: every event but the poison one, built by CatchUp (which
	// passes it the same way).
	ref := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: &logProjector{name: "reference", failOnInit: "Poison"}})
	if err := ref.CatchUp(ctx); err != nil {
		t.Fatalf("catch-up over a poison event: %v", err)
	}
	want := snapshot(t, db.Pool, "reference")
	if !strings.HasPrefix(want, "18:") || quarantine(t, db.Pool, "reference") != fmt.Sprintf("%d:Poison:1;", poison) {
		t.Fatalf("reference = %s, quarantine %q", want, quarantine(t, db.Pool, "reference"))
	}

	// An online rebuild meets it again, passes it, and quarantines it again;
	// meanwhile the projector reports "rebuilding".
	var reported atomic.Value
	if err := r.RebuildOnline(ctx, func(int64, int64) { reported.Store(r.State().Reported()) }); err != nil {
		t.Fatalf("online rebuild over a poison event: %v", err)
	}
	if got := snapshot(t, db.Pool, "skipped"); got != want {
		t.Fatalf("online rebuild = %s, want %s", got, want)
	}
	if got := reported.Load(); got != projections.StatusRebuilding || r.State().Reported() != projections.StatusRunning {
		t.Fatalf("reported %v during the rebuild, %s after", got, r.State().Reported())
	}
	if got := quarantine(t, db.Pool, "skipped"); got != fmt.Sprintf("%d:Poison:1;", poison) {
		t.Fatalf("quarantine after online rebuild = %q", got)
	}
	// A second one keeps the entry and counts the attempt.
	if err := r.RebuildOnline(ctx, nil); err != nil {
		t.Fatalf("second online rebuild: %v", err)
	}
	if got := quarantine(t, db.Pool, "skipped"); got != fmt.Sprintf("%d:Poison:2;", poison) {
		t.Fatalf("quarantine after a second online rebuild = %q", got)
	}

	// An in-place rebuild too, and the live projector goes on.
	if err := r.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replayed in place past the poison event", func() bool {
		return snapshot(t, db.Pool, "skipped") == want && quarantine(t, db.Pool, "skipped") == fmt.Sprintf("%d:Poison:1;", poison)
	})
	appendN(t, es, 1, 1, "Good")
	eventually(t, "live after the rebuilds", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "skipped"), "19:") })
	if _, st, _ := checkpoint(t, db.Pool, "skipped"); st != projections.StatusRunning {
		t.Fatalf("status after rebuilds = %q", st)
	}

	// Fixed projector: an online rebuild applies it and clears the quarantine.
	p.failOn.Store("")
	if err := r.RebuildOnline(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := quarantine(t, db.Pool, "skipped"); got != "" {
		t.Fatalf("quarantine after a rebuild that applied the event = %q", got)
	}
	if got := snapshot(t, db.Pool, "skipped"); !strings.HasPrefix(got, "20:") {
		t.Fatalf("rebuilt read model = %s", got)
	}
}

func TestRunnerParksWhenTooManyEventsFailAndResumesWhenUnparked(t *testing.T) {
	db, es := runnerDB(t, postgres.Config{}, "parking")
	appendN(t, es, 1, 3, "Good")
	appendN(t, es, 1, 3, "Poison")
	appendN(t, es, 1, 2, "Good")

	p := &logProjector{name: "parking"}
	p.failOn.Store("Poison")
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p, MaxFailures: 2, MaxQuarantined: 2, Backoff: time.Millisecond})
	runInBackground(t, r)

	eventually(t, "parked", func() bool { _, st, _ := checkpoint(t, db.Pool, "parking"); return st == projections.StatusParked })
	_, _, lastErr := checkpoint(t, db.Pool, "parking")
	if !strings.Contains(lastErr, "cannot project Poison") {
		t.Fatalf("last_error = %q, want the projector's error", lastErr)
	}
	// The batch holding the poison events was rolled back whole: nothing
	// after the failure was applied, nothing was skipped or quarantined.
	if got := snapshot(t, db.Pool, "parking"); !strings.HasPrefix(got, "0:") && !strings.HasPrefix(got, "3:") {
		t.Fatalf("parked read model = %s, want only events before the poison ones", got)
	}
	if got := quarantine(t, db.Pool, "parking"); got != "" {
		t.Fatalf("quarantine of a parked projector = %q", got)
	}
	if s := r.State(); s.Status != projections.StatusParked || !strings.Contains(s.LastError, "Poison") {
		t.Fatalf("state = %+v", s)
	}

	p.failOn.Store("")
	if err := r.Unpark(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all applied after unpark", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "parking"), "8:") })
}

// flakyStore is an event store that is unreachable for its first down
// subscriptions (an EventStoreDB outage, a dropped subscription).
type flakyStore struct {
	eventstore.Store
	down atomic.Int64
}

func (s *flakyStore) Subscribe(ctx context.Context, after uint64, handle eventstore.Handler) error {
	if s.down.Add(-1) >= 0 {
		return errors.New("event store unavailable: connection refused")
	}
	return s.Store.Subscribe(ctx, after, handle)
}

func TestRunnerWaitsOutAnEventStoreOutage(t *testing.T) {
	db, es := runnerDB(t, postgres.Config{}, "esdown")
	appendN(t, es, 2, 5, "ThingHappened")
	flaky := &flakyStore{Store: es}
	flaky.down.Store(12)

	p := &logProjector{name: "esdown"}
	r := projections.NewRunner(projections.Config{Store: flaky, Pool: db.Pool, Projector: p, MaxFailures: 3, Backoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	runInBackground(t, r)
	eventually(t, "every event applied once the store is back", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "esdown"), "10:") })
	if _, st, lastErr := checkpoint(t, db.Pool, "esdown"); st != projections.StatusRunning {
		t.Fatalf("status after the outage = %q (%s)", st, lastErr)
	}
	if s := r.State(); s.Status != projections.StatusRunning || s.LastError != "" {
		t.Fatalf("state after the outage = %+v", s)
	}
}

// TestRunnerWaitsOutLostDatabaseConnections terminates every connection of
// the database, again and again for a few seconds, while the projector is
// in the middle of the log: it must not count that against the projector
// (no parking, nothing quarantined), resume by itself, and end with the
// read model of a clean build.
func TestRunnerWaitsOutLostDatabaseConnections(t *testing.T) {
	db, es := runnerDB(t, postgres.Config{BatchSize: 20}, "outage", "clean")
	ctx := context.Background()
	appendN(t, es, 10, 60, "ThingHappened") // 600 events

	p := &logProjector{name: "outage", delay: 2 * time.Millisecond}
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p, MaxFailures: 3, Backoff: time.Millisecond, MaxBackoff: 200 * time.Millisecond, CheckInterval: 20 * time.Millisecond})
	runInBackground(t, r)
	eventually(t, "projector under way", func() bool { pos, _, _ := checkpoint(t, db.Pool, "outage"); return pos > 0 })

	// Parking, even for a moment, is what must not happen.
	var parked atomic.Int64
	watching, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go func() {
		for watching.Err() == nil {
			if r.State().Status == projections.StatusParked {
				parked.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	killer, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	var killed int64
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
		var n int64
		if err := killer.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		killed += n
	}
	if killed == 0 {
		t.Fatal("no connection was terminated; the test proved nothing")
	}
	db.Pool.Reset() // the test's own reads below must not meet a terminated idle connection
	if got := snapshot(t, db.Pool, "outage"); strings.HasPrefix(got, "600:") {
		t.Fatal("the projector finished before the outage ended; the test proved nothing")
	}
	t.Logf("terminated %d connections; %s events applied when the outage ended", killed, strings.SplitN(snapshot(t, db.Pool, "outage"), ":", 2)[0])

	appendN(t, es, 5, 4, "ThingHappened") // and 20 more once it is back
	eventually(t, "every event applied after the outage", func() bool { return strings.HasPrefix(snapshot(t, db.Pool, "outage"), "620:") })
	stopWatching()
	if n := parked.Load(); n > 0 {
		t.Fatalf("the projector was parked by a database outage (seen %d times)", n)
	}
	if _, st, lastErr := checkpoint(t, db.Pool, "outage"); st != projections.StatusRunning {
		t.Fatalf("status after the outage = %q (%s)", st, lastErr)
	}
	if s := r.State(); s.Status != projections.StatusRunning || s.Quarantined != 0 {
		t.Fatalf("state after the outage = %+v", s)
	}
	if got := quarantine(t, db.Pool, "outage"); got != "" {
		t.Fatalf("events quarantined by an outage: %s", got)
	}
	clean := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: &logProjector{name: "clean"}})
	if err := clean.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, db.Pool, "outage"), snapshot(t, db.Pool, "clean"); got != want {
		t.Fatalf("read model after the outage differs from a clean build")
	}
}

func TestRebuildReplaysFromZeroWhileRunning(t *testing.T) {
	db, es := runnerDB(t, postgres.Config{}, "rebuilt")
	appendN(t, es, 4, 5, "ThingHappened")

	p := &logProjector{name: "rebuilt"}
	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: p})
	runInBackground(t, r)
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
	db, es := runnerDB(t, postgres.Config{BatchSize: 50}, "killed", "clean")
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
