package analytics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/analytics"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

// seedHour appends, through the event store, a one-hour class of students
// on a lecture of steps subtasks: joins and enrollments, a step every
// 60/steps minutes, every student starting and completing every step, a
// tenth of them asking for help (half answered), a twentieth dropping out
// for five minutes. Appends run in time order, in parallel within a step.
func seedHour(tb testing.TB, students, steps int) (pool *pgxpool.Pool, sessionID int64, t0 time.Time) {
	tb.Helper()
	db := pgtest.New(tb)
	ctx := context.Background()
	// Seeding speed only: commits need not wait for the disk.
	if _, err := db.Pool.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q SET synchronous_commit = off`, db.Name)); err != nil {
		tb.Fatal(err)
	}
	db.Pool.Reset()
	store := postgres.New(db.Pool, postgres.Config{})
	tb.Cleanup(store.Close)
	const lectureID, instructorID = 1, 1
	sessionID = 1
	t0 = time.Date(2025, 10, 28, 10, 0, 0, 0, time.UTC)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO users (email, password_hash, name, role)
		SELECT 'u' || i || '@lockstep.test', 'x', '학생' || i, CASE WHEN i = 1 THEN 'INSTRUCTOR' ELSE 'STUDENT' END
		FROM generate_series(1, $1) i`, students+1); err != nil {
		tb.Fatal(err)
	}
	meta := eventstore.Metadata{SessionID: sessionID, LectureID: lectureID}
	appendAt := func(stream string, expected int64, at time.Time, m eventstore.Metadata, evs ...domain.Event) {
		data, err := commands.Encode(evs, m)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range data {
			data[i].OccurredAt = at.Add(time.Duration(i) * time.Millisecond)
		}
		if _, err := store.Append(ctx, stream, eventstore.Exactly(expected), data...); err != nil {
			tb.Fatalf("append to %s: %v", stream, err)
		}
	}
	parallel := func(n int, f func(i int)) {
		var wg sync.WaitGroup
		ch := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range ch {
					f(i)
				}
			})
		}
		for i := range n {
			ch <- i
		}
		close(ch)
		wg.Wait()
	}
	subtask := func(k int) domain.StepSubtask {
		return domain.StepSubtask{ID: int64(k + 1), TaskID: int64(k/5 + 1), Title: fmt.Sprintf("단계 %d", k+1), GuideText: "안내", VoiceGuideText: "음성"}
	}
	appendAt(domain.LectureStream(lectureID), 0, t0.Add(-24*time.Hour), eventstore.Metadata{LectureID: lectureID},
		domain.LectureCreated{LectureID: lectureID, InstructorID: instructorID, Title: "카카오톡 기초", CreatedAt: t0.Add(-24 * time.Hour)})
	appendAt(domain.SessionStream(sessionID), 0, t0.Add(-10*time.Minute), meta, domain.SessionOpened{
		SessionID: sessionID, LectureID: lectureID, LectureTitle: "카카오톡 기초", InstructorID: instructorID, Title: "오전반", SessionCode: "ABCDEF", OpenedAt: t0.Add(-10 * time.Minute),
	})
	user := func(i int) int64 { return int64(i + 2) }
	parallel(students, func(i int) {
		at := t0.Add(-5*time.Minute + time.Duration(i)*200*time.Millisecond)
		appendAt(domain.ParticipantStream(sessionID, user(i)), 0, at, meta, domain.ParticipantJoined{
			ParticipantID: int64(i + 1), SessionID: sessionID, LectureID: lectureID, UserID: user(i), Status: domain.ParticipantStatusWaiting, SessionStatus: domain.SessionStatusWaiting, JoinedAt: at,
		})
		appendAt(domain.ProgressStream(lectureID, user(i)), 0, at, meta, domain.StudentEnrolled{EnrollmentID: int64(i + 1), LectureID: lectureID, UserID: user(i), SessionID: sessionID, EnrolledAt: at})
	})
	stepEvery := time.Hour / time.Duration(steps)
	help := int64(0)
	for k := range steps {
		at := t0.Add(time.Duration(k) * stepEvery)
		if k == 0 {
			appendAt(domain.SessionStream(sessionID), 1, at, meta, domain.SessionStarted{SessionID: sessionID, LectureID: lectureID, CurrentSubtask: subtask(0), StartedAt: at})
		} else {
			appendAt(domain.SessionStream(sessionID), int64(k+1), at, meta, domain.StepChanged{SessionID: sessionID, LectureID: lectureID, PreviousSubtaskID: int64(k), CurrentSubtask: subtask(k), ChangedAt: at})
		}
		st := subtask(k)
		parallel(students, func(i int) {
			s := at.Add(time.Duration(i) * 50 * time.Millisecond)
			appendAt(domain.ProgressStream(lectureID, user(i)), int64(1+2*k), s, meta,
				domain.SubtaskStarted{LectureID: lectureID, UserID: user(i), TaskID: st.TaskID, SubtaskID: st.ID, SubtaskTitle: st.Title, SessionID: sessionID, StartedAt: s},
				domain.SubtaskCompleted{LectureID: lectureID, UserID: user(i), TaskID: st.TaskID, SubtaskID: st.ID, SubtaskTitle: st.Title, SessionID: sessionID, CompletedAt: s.Add(time.Minute)})
		})
		// A few ask for help at every step; half are answered.
		for j := range students / 10 / steps {
			help++
			i := (k*31 + j*7) % students
			hat := at.Add(90 * time.Second)
			appendAt(domain.HelpStream(help), 0, hat, meta, domain.HelpRequested{HelpRequestID: help, UserID: user(i), LectureID: lectureID, InstructorID: instructorID,
				TaskID: st.TaskID, SubtaskID: st.ID, SessionID: sessionID, RequestType: domain.HelpManual, RequestedAt: hat})
			if j%2 == 0 {
				appendAt(domain.HelpStream(help), 1, hat.Add(time.Second), meta, domain.HelpProvided{HelpRequestID: help, HelpResponseID: help, UserID: user(i), LectureID: lectureID,
					SubtaskID: st.ID, SessionID: sessionID, Responder: domain.ResponderAnalyzer, HelpType: domain.HelpTypeText, HelpContent: "이렇게 하세요", ProvidedAt: hat.Add(time.Second)})
			}
		}
		if k == steps/2 {
			parallel(students/20, func(j int) {
				i := j * 20
				d := at.Add(2 * time.Minute)
				presence := eventstore.Metadata{SessionID: sessionID}
				appendAt(domain.ParticipantStream(sessionID, user(i)), 1, d, presence, domain.ParticipantDisconnected{ParticipantID: int64(i + 1), SessionID: sessionID, LectureID: lectureID, UserID: user(i), LastActiveAt: d, DisconnectedAt: d})
				appendAt(domain.ParticipantStream(sessionID, user(i)), 2, d.Add(5*time.Minute), presence, domain.ParticipantReconnected{ParticipantID: int64(i + 1), SessionID: sessionID, LectureID: lectureID, UserID: user(i), ReconnectedAt: d.Add(5 * time.Minute)})
			})
		}
	}
	end := t0.Add(time.Hour)
	appendAt(domain.SessionStream(sessionID), int64(steps+1), end, meta, domain.SessionEnded{SessionID: sessionID, LectureID: lectureID, PreviousStatus: domain.SessionStatusInProgress, EndedAt: end})
	if _, err := db.Pool.Exec(ctx, `ANALYZE events`); err != nil {
		tb.Fatal(err)
	}
	return db.Pool, sessionID, t0
}

// BenchmarkStateAt measures GET …/state?at= for a 1,000-student, one-hour
// class (~43,000 events): load the classroom, fold it to a random instant of
// the hour, encode the answer. It reports p50 and p99 in milliseconds.
//
//	go test -run '^$' -bench BenchmarkStateAt -benchtime 200x ./analytics/
func BenchmarkStateAt(b *testing.B) {
	pool, sessionID, t0 := seedHour(b, 1000, 20)
	r := analytics.NewReader(pool, postgres.New(pool, postgres.Config{}))
	ctx := context.Background()
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n), "events")
	rng := rand.New(rand.NewPCG(1, 2))
	var took []time.Duration
	b.ResetTimer()
	for b.Loop() {
		at := t0.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		start := time.Now()
		cl, err := r.LoadClassroom(ctx, sessionID)
		if err != nil {
			b.Fatal(err)
		}
		st, err := r.StateAt(ctx, cl, at)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(st); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		if len(st.Participants) != 1000 || st.Status == nil {
			b.Fatalf("state at %s: %d participants", at, len(st.Participants))
		}
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[min(len(took)-1, int(p*float64(len(took))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

var _ = uuid.Nil
