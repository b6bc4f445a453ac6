package projections_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

// perEvent is a projector without its HandleBatch: the runner applies it
// event by event (the reference the batch paths are compared with).
type perEvent struct{ projections.Projector }

// Tables is the projector's (for the online rebuild of the benchmarks).
func (p perEvent) Tables() []string { return p.Projector.(projections.TableOwner).Tables() }

// snapshotProjector is every table of a projector and the socket messages it
// recorded, as sorted rows.
func snapshotProjector(t *testing.T, db *pgtest.DB, producer string, tables []string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	queries := map[string]string{"live_messages": `SELECT channel || ' ' || position || ' ' || payload::text FROM live_messages WHERE producer = '` + producer + `'`}
	for _, table := range tables {
		queries[table] = `SELECT to_jsonb(t)::text FROM ` + table + ` t`
	}
	for name, q := range queries {
		rows, err := db.Pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(list)
		out[name] = list
	}
	return out
}

// snapshotDashboard is snapshotProjector of the dashboard.
func snapshotDashboard(t *testing.T, db *pgtest.DB) map[string][]string {
	return snapshotProjector(t, db, "dashboard", projections.DashboardTables)
}

// seedMixedClass appends a realistic mixed history of two lectures through
// the event store: plan edits, a live session with joins, step changes,
// enrollments before and after progress, progress bursts (several events
// per append, so STARTED_LEARNING meets taken positions), repeated and
// out-of-order completions, MANUAL and AUTO help, a removed subtask and one
// the plan never had, a day boundary, disconnects and reconnects, and times
// with nanoseconds.
func seedMixedClass(t *testing.T, db *pgtest.DB, store eventstore.Store) {
	t.Helper()
	ctx := context.Background()
	appendTo := func(stream string, events ...domain.Event) {
		t.Helper()
		data, err := commands.Encode(events, eventstore.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, stream, eventstore.Any, data...); err != nil {
			t.Fatal(err)
		}
	}
	var users []int64
	for i := range 24 {
		var id int64
		if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', $2, 'STUDENT') RETURNING id`,
			"s"+strconv.Itoa(i)+"@x.test", "학생"+strconv.Itoa(i)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		users = append(users, id)
	}
	users = append(users, 9_000_001) // no users row: empty name
	rng := rand.New(rand.NewPCG(12, 3))
	at := time.Date(2026, 3, 2, 23, 40, 0, 0, time.UTC)
	tick := func() time.Time {
		at = at.Add(time.Duration(rng.IntN(20_000)) * time.Millisecond).Add(time.Duration(rng.IntN(1000)) * time.Nanosecond)
		return at
	}
	type lec struct {
		id       int64
		session  int64
		subtasks []int64
	}
	lectures := []lec{{id: 1, session: 10}, {id: 2, session: 20}}
	for li := range lectures {
		l := &lectures[li]
		ls := domain.LectureStream(l.id)
		appendTo(ls, domain.LectureCreated{LectureID: l.id, InstructorID: 500, Title: "강의 " + strconv.Itoa(int(l.id)), CreatedAt: tick()})
		for task := int64(1); task <= 2; task++ {
			tid := l.id*100 + task
			appendTo(ls, domain.TaskAdded{LectureID: l.id, TaskID: tid, Title: "과제", OrderIndex: int(task), AddedAt: tick()})
			for s := int64(1); s <= 4; s++ {
				sid := tid*10 + s
				l.subtasks = append(l.subtasks, sid)
				appendTo(ls, domain.SubtaskAdded{LectureID: l.id, TaskID: tid, SubtaskID: sid, Title: "단계 " + strconv.Itoa(int(sid)),
					OrderIndex: int(s), TargetAction: domain.ActionClick, GuideText: "g", VoiceGuideText: "v", AddedAt: tick()})
			}
		}
		ss := domain.SessionStream(l.session)
		appendTo(ss, domain.SessionOpened{SessionID: l.session, LectureID: l.id, LectureTitle: "강의", InstructorID: 500, Title: "반", SessionCode: "ABC23" + strconv.Itoa(li), OpenedAt: tick()})
	}
	step := func(id int64) domain.StepSubtask { return domain.StepSubtask{ID: id, TaskID: id / 10, Title: "단계"} }
	enrolled := map[[2]int64]bool{}
	// Half the students join before the start, enroll, then the sessions start.
	for i, u := range users {
		l := lectures[i%2]
		if i%4 < 2 {
			appendTo(domain.ParticipantStream(l.session, u), domain.ParticipantJoined{ParticipantID: u, SessionID: l.session, LectureID: l.id, UserID: u,
				Status: domain.ParticipantStatusWaiting, SessionStatus: domain.SessionStatusWaiting, JoinedAt: tick()})
		}
		if i%3 != 0 {
			appendTo(domain.ProgressStream(l.id, u), domain.StudentEnrolled{EnrollmentID: u, LectureID: l.id, UserID: u, EnrolledAt: tick()})
			enrolled[[2]int64{l.id, u}] = true
		}
	}
	for _, l := range lectures {
		appendTo(domain.SessionStream(l.session), domain.SessionStarted{SessionID: l.session, LectureID: l.id, CurrentSubtask: step(l.subtasks[0]), StartedAt: tick()})
	}
	progress := func(l lec, u, sub int64, complete bool) domain.Event {
		title := "단계 " + strconv.Itoa(int(sub))
		if complete {
			return domain.SubtaskCompleted{LectureID: l.id, UserID: u, TaskID: sub / 10, SubtaskID: sub, SubtaskTitle: title, CompletedAt: tick()}
		}
		return domain.SubtaskStarted{LectureID: l.id, UserID: u, TaskID: sub / 10, SubtaskID: sub, SubtaskTitle: title, StartedAt: tick()}
	}
	helpID := int64(0)
	for round := range 8 {
		for _, l := range lectures {
			if round > 0 && round < len(l.subtasks) {
				appendTo(domain.SessionStream(l.session), domain.StepChanged{SessionID: l.session, LectureID: l.id, PreviousSubtaskID: l.subtasks[round-1], CurrentSubtask: step(l.subtasks[round]), ChangedAt: tick()})
			}
			if round == 4 {
				appendTo(domain.LectureStream(l.id), domain.SubtaskRemoved{LectureID: l.id, TaskID: l.subtasks[2] / 10, SubtaskID: l.subtasks[2], RemovedAt: tick()})
			}
		}
		for i, u := range users {
			l := lectures[i%2]
			ps := domain.ProgressStream(l.id, u)
			sub := l.subtasks[min(round, len(l.subtasks)-1)]
			switch rng.IntN(6) {
			case 0: // started and completed in one append
				appendTo(ps, progress(l, u, sub, false), progress(l, u, sub, true))
			case 1: // completed without a start
				appendTo(ps, progress(l, u, sub, true))
			case 2: // started only, then an earlier subtask completed again and restarted
				appendTo(ps, progress(l, u, sub, false))
				appendTo(ps, progress(l, u, l.subtasks[0], true), progress(l, u, l.subtasks[0], false))
			case 3: // help first (MANUAL or AUTO), then completion
				helpID++
				typ := domain.HelpManual
				if helpID%2 == 0 {
					typ = domain.HelpAuto
				}
				appendTo(domain.HelpStream(helpID), domain.HelpRequested{HelpRequestID: helpID, UserID: u, LectureID: l.id, InstructorID: 500, TaskID: sub / 10,
					SubtaskID: sub, SubtaskTitle: "단계", SessionID: l.session, RequestType: typ, StuckDurationSeconds: 30, RequestedAt: tick()})
				appendTo(ps, progress(l, u, sub, false), progress(l, u, sub, true))
			case 4: // a subtask the plan never had, and the removed one
				appendTo(ps, progress(l, u, 999_999, true), progress(l, u, l.subtasks[2], false), progress(l, u, l.subtasks[2], true))
			case 5: // disconnect, reconnect, complete twice
				ps2 := domain.ParticipantStream(l.session, u)
				appendTo(ps2, domain.ParticipantDisconnected{ParticipantID: u, SessionID: l.session, LectureID: l.id, UserID: u, LastActiveAt: at, DisconnectedAt: tick()})
				appendTo(ps2, domain.ParticipantReconnected{ParticipantID: u, SessionID: l.session, LectureID: l.id, UserID: u, ReconnectedAt: tick()})
				appendTo(ps, progress(l, u, sub, true), progress(l, u, sub, true))
			}
			if round == 2 && i%4 >= 2 { // late joiners
				appendTo(domain.ParticipantStream(l.session, u), domain.ParticipantJoined{ParticipantID: u, SessionID: l.session, LectureID: l.id, UserID: u,
					Status: domain.ParticipantStatusActive, SessionStatus: domain.SessionStatusInProgress, JoinedAt: tick()})
			}
			if round == 3 && !enrolled[[2]int64{l.id, u}] && u != 9_000_001 { // enrolling after progress
				appendTo(ps, domain.StudentEnrolled{EnrollmentID: u, LectureID: l.id, UserID: u, EnrolledAt: tick()})
				enrolled[[2]int64{l.id, u}] = true
			}
		}
		// A burst of the whole class in one append per lecture's students
		// across streams is not possible; instead many single appends in a
		// row (a long run for the batch path).
		for i, u := range users {
			l := lectures[i%2]
			appendTo(domain.ProgressStream(l.id, u), progress(l, u, l.subtasks[(round+1)%len(l.subtasks)], i%2 == 0))
		}
	}
	// A student who completes subtasks, then enrols (counted with those
	// completions, after the last plan change could recount them), then
	// completes one more: the fold's enrolment reads the count.
	late, l := int64(9_000_002), lectures[1]
	ps := domain.ProgressStream(l.id, late)
	appendTo(ps, progress(l, late, l.subtasks[0], true), progress(l, late, l.subtasks[1], true))
	appendTo(ps, domain.StudentEnrolled{EnrollmentID: late, LectureID: l.id, UserID: late, EnrolledAt: tick()})
	appendTo(ps, progress(l, late, l.subtasks[3], true))
}

// TestDashboardBatchEqualsPerEvent: the batch path (HandleBatch, as the
// runner and `lockstep rebuild` use it) leaves exactly the read model and
// socket messages that Handle, event by event, leaves — and it did not get
// there by falling back to Handle.
func TestDashboardBatchEqualsPerEvent(t *testing.T) {
	db, records, want := mixedClassPerEvent(t, projections.NewDashboard(nil), snapshotDashboard)
	if len(want["dash_progress"]) < 100 || len(want["live_messages"]) < 200 || len(want["dash_daily"]) < 4 {
		t.Fatalf("the history is too thin to compare: %d progress rows, %d messages, %d days",
			len(want["dash_progress"]), len(want["live_messages"]), len(want["dash_daily"]))
	}
	for _, size := range []int{1000, 7} {
		dash := projections.NewDashboard(nil)
		before := projections.DashboardFallbacks.Load()
		replayBatched(t, db, dash, "dashboard", records, size)
		if n := projections.DashboardFallbacks.Load() - before; n != 0 {
			t.Errorf("batch size %d: %d progress runs fell back to Handle", size, n)
		}
		sameSnapshots(t, size, want, snapshotDashboard(t, db))
	}
}

// mixedClassPerEvent seeds a mixed class history (seedMixedClass) and
// applies it with p event by event (perEvent): the reference of the batch
// tests. It returns the database, the history's records (decoded, for
// replayBatched) and the reference's snapshot.
func mixedClassPerEvent(t *testing.T, p projections.Projector, snapshot func(*testing.T, *pgtest.DB) map[string][]string) (*pgtest.DB, []projections.Record, map[string][]string) {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	store := postgres.New(db.Pool, postgres.Config{})
	t.Cleanup(store.Close)
	seedMixedClass(t, db, store)

	ref := projections.NewRunner(projections.Config{Store: store, Pool: db.Pool, Projector: perEvent{p}})
	if err := ref.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, db)

	evs, err := store.ReadAll(ctx, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	records := make([]projections.Record, len(evs))
	for i, ev := range evs {
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		records[i] = projections.Record{Event: ev, Payload: payload}
	}
	return db, records, want
}

// sameSnapshots fails the test unless the batched snapshot got has every
// table of the per-event snapshot want with the same rows, logging the first
// row that differs.
func sameSnapshots(t *testing.T, size int, want, got map[string][]string) {
	t.Helper()
	for table, rows := range want {
		if !slices.Equal(rows, got[table]) {
			t.Errorf("batch size %d: %s differs (%d rows per event, %d batched)", size, table, len(rows), len(got[table]))
			for i := range max(len(rows), len(got[table])) {
				var a, b string
				if i < len(rows) {
					a = rows[i]
				}
				if i < len(got[table]) {
					b = got[table][i]
				}
				if a != b {
					t.Logf("first difference:\n per event: %s\n batched:   %s", a, b)
					break
				}
			}
		}
	}
}

// BenchmarkDashboardRebuild measures `lockstep rebuild`'s path (RebuildOnline:
// shadow tables, batches of 5,000, swap) for the dashboard projector over a
// class history, event by event (the path before HandleBatch) and batched,
// in one run. LOCKSTEP_BENCH_EVENTS sets the history's size (default 20,000).
func BenchmarkDashboardRebuild(b *testing.B) {
	db, seeded, es := benchClassHistory(b, 20_000)
	defer es.Close()
	for _, c := range []struct {
		name string
		p    projections.Projector
	}{{"per-event", perEvent{projections.NewDashboard(nil)}}, {"batched", projections.NewDashboard(nil)}} {
		b.Run(c.name, func(b *testing.B) {
			benchRebuildOnline(b, projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: c.p}), seeded)
			var done int
			if err := db.Pool.QueryRow(context.Background(), `SELECT COALESCE(sum(completed_count), 0) FROM dash_students`).Scan(&done); err != nil || done == 0 {
				b.Fatalf("rebuild counted no completions (%v)", err)
			}
		})
	}
}

// replayBatched resets p's tables and messages and applies records with its
// HandleBatch, size records at a time, in one transaction.
func replayBatched(t *testing.T, db *pgtest.DB, p interface {
	projections.Projector
	projections.BatchHandler
}, producer string, records []projections.Record, size int) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := p.Reset(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM live_messages WHERE producer = $1`, producer); err != nil {
			return err
		}
		for start := 0; start < len(records); start += size {
			if err := p.HandleBatch(ctx, tx, records[start:min(start+size, len(records))]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
