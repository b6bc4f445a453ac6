package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

// A snapshot left by the last command is stale as soon as another writer
// (another instance) appends to the stream. ExecuteCached must then answer
// exactly what Execute answers: the append's version check catches a
// decision taken on the stale state, and a "nothing to do" decided on it is
// confirmed against the store.
func TestExecuteCachedWithAStaleSnapshot(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := postgres.New(db.Pool, postgres.Config{})
	defer store.Close()
	const lecture, user = 7, 42
	student := domain.Actor{UserID: user, Role: domain.RoleStudent}
	stream := domain.ProgressStream(lecture, user)
	d := domain.ProgressDecider
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	update := func(subtask int64, status domain.ProgressStatus) domain.ProgressCommand {
		at = at.Add(time.Second)
		return domain.UpdateProgress{Actor: student, At: at, Status: status,
			Subtask: domain.SubtaskRef{ID: subtask, TaskID: 1, LectureID: lecture, Title: "t"}}
	}
	if _, err := commands.Execute(ctx, store, stream, d, domain.ProgressCommand(domain.Enroll{Actor: student, At: at, EnrollmentID: 1, LectureID: lecture, UserID: user}), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	snaps := commands.NewSnapshots[domain.Progress](10)

	res, err := commands.ExecuteCached(ctx, store, snaps, stream, d, update(1, domain.ProgressStatusInProgress), eventstore.Metadata{})
	if err != nil || res.Version != 2 {
		t.Fatalf("first update: version %d, %v", res.Version, err)
	}
	// Another instance completes subtask 2: the snapshot (version 2) is stale.
	if _, err := commands.Execute(ctx, store, stream, d, update(2, domain.ProgressStatusCompleted), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	res, err = commands.ExecuteCached(ctx, store, snaps, stream, d, update(3, domain.ProgressStatusCompleted), eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 4 || res.State.Status(2) != domain.ProgressStatusCompleted || res.State.Status(3) != domain.ProgressStatusCompleted {
		t.Errorf("after a stale snapshot: version %d, subtask 2 %s, subtask 3 %s; want version 4, both COMPLETED",
			res.Version, res.State.Status(2), res.State.Status(3))
	}

	// Another instance completes subtask 1, which the snapshot still has IN_PROGRESS;
	// starting it again here is "nothing to do" on the snapshot, and must
	// answer the stored state (COMPLETED at version 5).
	if _, err := commands.Execute(ctx, store, stream, d, update(1, domain.ProgressStatusCompleted), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	res, err = commands.ExecuteCached(ctx, store, snaps, stream, d, update(1, domain.ProgressStatusInProgress), eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 5 || res.State.Status(1) != domain.ProgressStatusCompleted {
		t.Errorf("a no-op on a stale snapshot answered version %d, subtask 1 %s; want version 5, COMPLETED", res.Version, res.State.Status(1))
	}
	stored, err := store.ReadStream(ctx, stream, 0, 0)
	if err != nil || len(stored) != 5 {
		t.Fatalf("stream has %d events (%v), want 5", len(stored), err)
	}
}
