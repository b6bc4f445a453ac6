package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/eventstoretest"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

// The conformance suite again with group commit off: every exact-version
// append is then a transaction of its own (the path a lone append and a
// failed group take).
func TestConformanceSingleAppends(t *testing.T) {
	eventstoretest.Run(t, harness(postgres.Config{SingleAppends: true}))
}

// Many appends at once, as a class completing a subtask together: they go
// in groups (fewer transactions than appends), and each keeps its own
// expected-version check and result — racing appends to one stream: exactly
// one wins; a retried append inside a group gets its first result back.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := postgres.New(newPool(t, db, 24), postgres.Config{})
	defer store.Close()

	event := func() eventstore.EventData {
		return eventstore.EventData{ID: uuid.New(), Type: "Ticked", Data: []byte(`{"n":1}`)}
	}
	// A stream retried below, and one raced for.
	first := event()
	prior, err := store.Append(ctx, "retried", eventstore.Exactly(0), first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, "raced", eventstore.Exactly(0), event()); err != nil {
		t.Fatal(err)
	}

	const appenders = 300
	type outcome struct {
		stream string
		res    eventstore.AppendResult
		err    error
	}
	out := make([]outcome, appenders)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch {
			case i%50 == 7: // the same append again: its first result
				res, err := store.Append(ctx, "retried", eventstore.Exactly(0), first)
				out[i] = outcome{"retried", res, err}
			case i%10 == 3: // thirty appenders race for version 2 of one stream
				res, err := store.Append(ctx, "raced", eventstore.Exactly(1), event(), event())
				out[i] = outcome{"raced", res, err}
			default:
				stream := fmt.Sprintf("student-%d", i)
				res, err := store.Append(ctx, stream, eventstore.Exactly(0), event(), event(), event())
				out[i] = outcome{stream, res, err}
			}
		}()
	}
	close(start)
	wg.Wait()

	raceWins := 0
	positions := map[uint64]bool{}
	for i, o := range out {
		switch {
		case o.stream == "retried":
			if o.err != nil || o.res != prior {
				t.Errorf("appender %d: retried append = %+v, %v; want its first result %+v", i, o.res, o.err, prior)
			}
		case o.stream == "raced":
			if o.err == nil {
				raceWins++
				if o.res.Version != 3 {
					t.Errorf("the race's winner got version %d, want 3", o.res.Version)
				}
			} else if !errors.Is(o.err, eventstore.ErrConcurrency) {
				t.Errorf("appender %d lost the race with %v, want ErrConcurrency", i, o.err)
			}
		default:
			if o.err != nil || o.res.Version != 3 {
				t.Fatalf("appender %d: %+v, %v", i, o.res, o.err)
			}
			if positions[o.res.Position] {
				t.Errorf("position %d answered twice", o.res.Position)
			}
			positions[o.res.Position] = true
			stored, err := store.ReadStream(ctx, o.stream, 0, 0)
			if err != nil || len(stored) != 3 || stored[2].Position != o.res.Position {
				t.Errorf("%s: %d events stored (%v), last at the answered position: %v", o.stream, len(stored), err, len(stored) == 3 && stored[2].Position == o.res.Position)
			}
		}
	}
	if raceWins != 1 {
		t.Errorf("%d appenders won the race for one version, want exactly 1", raceWins)
	}
	if n := countRows(t, db, `SELECT count(*) FROM events WHERE stream = 'retried'`); n != 1 {
		t.Errorf("the retried append is stored %d times", n)
	}
	appends := countRows(t, db, `SELECT count(DISTINCT (stream, txid)) FROM events`)
	txs := countRows(t, db, `SELECT count(DISTINCT txid) FROM events`)
	t.Logf("%d appends stored in %d transactions", appends, txs)
	if txs >= appends {
		t.Errorf("%d appends in %d transactions: nothing was grouped", appends, txs)
	}
	// Everything reads back in order, gap-free, through the global log.
	all, err := store.ReadAll(ctx, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if want := countRows(t, db, `SELECT count(*) FROM events`); int64(len(all)) != want {
		t.Errorf("ReadAll returned %d of %d events", len(all), want)
	}
}

func countRows(t *testing.T, db *pgtest.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
