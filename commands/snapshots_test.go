package commands_test

import (
	"context"
	"sync"
	"sync/atomic"
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

// countingStore counts the reads commands make through it.
type countingStore struct {
	eventstore.Store
	q                    eventstore.Querier
	streamReads, queries atomic.Int64
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, after int64, limit int) ([]eventstore.Event, error) {
	s.streamReads.Add(1)
	return s.Store.ReadStream(ctx, stream, after, limit)
}

func (s *countingStore) Query(ctx context.Context, f eventstore.Filter) ([]eventstore.Event, error) {
	s.queries.Add(1)
	return s.q.Query(ctx, f)
}

func (s *countingStore) Latest(ctx context.Context, f eventstore.Filter) (eventstore.Event, bool, error) {
	return s.q.Latest(ctx, f)
}

// The first progress of a class comes from every student at once, each on a
// stream this instance holds no snapshot of: ExecuteCached folds them from
// shared filtered reads, and each command still lands exactly on its
// stream's version.
func TestExecuteCachedPrimesStreamsTogether(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	pg := postgres.New(db.Pool, postgres.Config{})
	defer pg.Close()
	store := &countingStore{Store: pg, q: pg}
	const lecture, students = 7, 60
	d := domain.ProgressDecider
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	update := func(user int64, status domain.ProgressStatus) domain.ProgressCommand {
		return domain.UpdateProgress{Actor: domain.Actor{UserID: user, Role: domain.RoleStudent}, At: at, Status: status,
			Subtask: domain.SubtaskRef{ID: 1, TaskID: 1, LectureID: lecture, Title: "t"}}
	}
	for u := int64(1); u <= students; u++ {
		stream := domain.ProgressStream(lecture, u)
		if _, err := commands.Execute(ctx, pg, stream, d, domain.ProgressCommand(domain.Enroll{Actor: domain.Actor{UserID: u, Role: domain.RoleStudent}, At: at, EnrollmentID: u, LectureID: lecture, UserID: u}), eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
		if _, err := commands.Execute(ctx, pg, stream, d, update(u, domain.ProgressStatusInProgress), eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	snaps := commands.NewSnapshots[domain.Progress](100)
	var wg sync.WaitGroup
	for u := int64(1); u <= students; u++ {
		wg.Go(func() {
			res, err := commands.ExecuteCached(ctx, store, snaps, domain.ProgressStream(lecture, u), d, update(u, domain.ProgressStatusCompleted), eventstore.Metadata{})
			if err != nil || res.Version != 3 || res.State.Status(1) != domain.ProgressStatusCompleted {
				t.Errorf("student %d: version %d, status %s, %v; want version 3, COMPLETED", u, res.Version, res.State.Status(1), err)
			}
		})
	}
	wg.Wait()
	// Every fold was right (a wrong one fails its append and reads its stream).
	if n := store.streamReads.Load(); n != 0 {
		t.Errorf("%d stream reads: some primed folds were wrong", n)
	}
	if n := store.queries.Load(); n == 0 || n >= students/2 {
		t.Errorf("%d commands made %d filtered reads; want them shared", students, n)
	}
	for u := int64(1); u <= students; u++ {
		if evs, err := pg.ReadStream(ctx, domain.ProgressStream(lecture, u), 0, 0); err != nil || len(evs) != 3 {
			t.Fatalf("student %d's stream: %d events, %v; want 3", u, len(evs), err)
		}
	}
}
