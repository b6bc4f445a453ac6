package projections_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

// seedClassHistory writes about n events of a realistic lecture history —
// a lecture with 40 subtasks, then students each enrolling and starting and
// completing every subtask — straight into the events table with COPY, in
// transactions of at most 65,535 events (one transaction id each, so the
// positions follow the store's scheme).
func seedClassHistory(tb testing.TB, db *pgtest.DB, n int) int {
	tb.Helper()
	const lectureID, subtasks = 1, 40
	at := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	var evs []apptest.SeedEvent
	add := func(stream string, ev domain.Event) {
		evs = append(evs, apptest.SeedEvent{Stream: stream, Event: ev, At: at})
	}
	ls := domain.LectureStream(lectureID)
	add(ls, domain.LectureCreated{LectureID: lectureID, InstructorID: 1, Title: "카카오톡 기초", CreatedAt: at})
	for t := 1; t <= 4; t++ {
		add(ls, domain.TaskAdded{LectureID: lectureID, TaskID: int64(t), Title: "과제 " + strconv.Itoa(t), OrderIndex: t, AddedAt: at})
		for s := 1; s <= subtasks/4; s++ {
			id := int64((t-1)*10 + s)
			add(ls, domain.SubtaskAdded{LectureID: lectureID, TaskID: int64(t), SubtaskID: id, Title: "단계 " + strconv.Itoa(int(id)),
				OrderIndex: s, TargetAction: domain.ActionClick, GuideText: "화면의 버튼을 눌러주세요", VoiceGuideText: "버튼을 눌러주세요", AddedAt: at})
		}
	}
	for u := int64(1); len(evs) < n; u++ {
		ps := domain.ProgressStream(lectureID, u+100)
		add(ps, domain.StudentEnrolled{EnrollmentID: u, LectureID: lectureID, UserID: u + 100, EnrolledAt: at})
		for s := int64(1); s <= subtasks && len(evs) < n; s++ {
			task := (s-1)/10 + 1
			title := "단계 " + strconv.Itoa(int(s))
			add(ps, domain.SubtaskStarted{LectureID: lectureID, UserID: u + 100, TaskID: task, SubtaskID: s, SubtaskTitle: title, StartedAt: at})
			add(ps, domain.SubtaskCompleted{LectureID: lectureID, UserID: u + 100, TaskID: task, SubtaskID: s, SubtaskTitle: title, CompletedAt: at.Add(time.Minute)})
		}
	}
	apptest.CopyEvents(tb, db.Pool, eventstore.Metadata{UserID: 1, LectureID: lectureID}, evs)
	return len(evs)
}

// benchClassHistory is a test database seeded with a class history of
// LOCKSTEP_BENCH_EVENTS events (n when unset), the count seeded, and an
// event store on it (the caller closes it).
func benchClassHistory(b *testing.B, n int) (*pgtest.DB, int, *postgres.Store) {
	if s := os.Getenv("LOCKSTEP_BENCH_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	db := pgtest.New(b)
	seeded := seedClassHistory(b, db, n)
	return db, seeded, postgres.New(db.Pool, postgres.Config{})
}

// benchRebuildOnline times b.N online rebuilds by r of a history of seeded
// events and reports events/s; the timer is stopped when it returns.
func benchRebuildOnline(b *testing.B, r *projections.Runner, seeded int) {
	b.Helper()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := r.RebuildOnline(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seeded*b.N)/time.Since(start).Seconds(), "events/s")
	b.StopTimer()
}

// BenchmarkRebuildOnline measures how fast the lectures projector is rebuilt
// from event zero into shadow tables and swapped in. LOCKSTEP_BENCH_EVENTS
// sets the history's size (default 1,000,000).
func BenchmarkRebuildOnline(b *testing.B) {
	db, seeded, es := benchClassHistory(b, 1_000_000)
	defer es.Close()
	benchRebuildOnline(b, projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: &projections.Lectures{}}), seeded)
	var done int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM rm_subtask_progress WHERE status = 'COMPLETED'`).Scan(&done); err != nil || done == 0 {
		b.Fatalf("rebuild produced no progress rows (%v)", err)
	}
	b.Logf("%d events, %d completed subtask rows", seeded, done)
}

// (fmt is used by the other tests of this package.)
var _ = fmt.Sprint
