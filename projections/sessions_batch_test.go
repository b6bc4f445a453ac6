package projections_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

// snapshotSessions is snapshotProjector of the sessions projector.
func snapshotSessions(t *testing.T, db *pgtest.DB) map[string][]string {
	return snapshotProjector(t, db, "sessions", projections.NewSessions(nil).Tables())
}

// TestSessionsBatchEqualsPerEvent: the sessions projector's batch path
// leaves exactly the tables and instructor messages that Handle, event by
// event, leaves, over a mixed class history (progress with and without a
// session in the event, repeated completions, joins between bursts), in
// batches of every size the runner may hand it.
func TestSessionsBatchEqualsPerEvent(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := postgres.New(db.Pool, postgres.Config{})
	defer store.Close()
	seedMixedClass(t, db, store)

	ref := projections.NewRunner(projections.Config{Store: store, Pool: db.Pool, Projector: perEvent{projections.NewSessions(nil)}})
	if err := ref.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	want := snapshotSessions(t, db)
	progress := 0
	for _, m := range want["live_messages"] {
		if strings.Contains(m, `"student_progress"`) {
			progress++
		}
	}
	if progress < 100 || len(want["session_completions"]) < 50 {
		t.Fatalf("the history is too thin to compare: %d student_progress messages, %d completions", progress, len(want["session_completions"]))
	}

	evs, err := store.ReadAll(ctx, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	records := make([]projections.Record, len(evs))
	for i, ev := range evs {
		p, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		records[i] = projections.Record{Event: ev, Payload: p}
	}
	for _, size := range []int{1000, 7, 2} {
		s := projections.NewSessions(nil)
		replayBatched(t, db, s, "sessions", records, size)
		got := snapshotSessions(t, db)
		for table, rows := range want {
			if !slices.Equal(rows, got[table]) {
				t.Errorf("batch size %d: %s differs (%d rows per event, %d batched)", size, table, len(rows), len(got[table]))
			}
		}
	}
}
