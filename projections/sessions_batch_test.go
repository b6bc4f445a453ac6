package projections_test

import (
	"strings"
	"testing"

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
	db, records, want := mixedClassPerEvent(t, projections.NewSessions(nil), snapshotSessions)
	progress := 0
	for _, m := range want["live_messages"] {
		if strings.Contains(m, `"student_progress"`) {
			progress++
		}
	}
	if progress < 100 || len(want["session_completions"]) < 50 {
		t.Fatalf("the history is too thin to compare: %d student_progress messages, %d completions", progress, len(want["session_completions"]))
	}
	for _, size := range []int{1000, 7, 2} {
		s := projections.NewSessions(nil)
		replayBatched(t, db, s, "sessions", records, size)
		sameSnapshots(t, size, want, snapshotSessions(t, db))
	}
}
