package readapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/live"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
	"github.com/lockstep/lockstep/readapi"
)

// Sizes of the benchmark's class history.
const (
	benchStudents = 200
	benchSubtasks = 40
	benchDays     = 30
	benchLecture  = 1
	benchTeacher  = 1
)

// seedDashboardHistory writes a lecture's 30-day history straight into the
// events table with COPY (positions in the store's txid*65536+i scheme):
// 200 students, 40 subtasks, each student at their own pace (some finish,
// most do not), a live session every day that the day's active students
// join, help requests on one (student, subtask) pair in ten (MANUAL and
// AUTO; most answered by the analyzer, some left open or escalated), and
// five activity logs per student and active day. It returns the number of
// events and the last day of the history.
func seedDashboardHistory(tb testing.TB, db *pgtest.DB) (int, time.Time) {
	tb.Helper()
	ctx := context.Background()
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	lastDay := day0.AddDate(0, 0, benchDays-1)

	// Users: the instructor, then the students (ids 2..201).
	users := [][]any{{int64(benchTeacher), "teacher@bench.test", "x", "박강사", "INSTRUCTOR"}}
	for i := range benchStudents {
		id := int64(i + 2)
		users = append(users, []any{id, fmt.Sprintf("s%d@bench.test", id), "x", fmt.Sprintf("학생%d", id), "STUDENT"})
	}
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "password_hash", "name", "role"}, pgx.CopyFromRows(users)); err != nil {
		tb.Fatalf("seed users: %v", err)
	}

	var evs []apptest.SeedEvent
	add := func(at time.Time, stream string, ev domain.Event) {
		evs = append(evs, apptest.SeedEvent{Stream: stream, Event: ev, At: at})
	}
	ls := domain.LectureStream(benchLecture)
	created := day0.Add(-24 * time.Hour)
	add(created, ls, domain.LectureCreated{LectureID: benchLecture, InstructorID: benchTeacher, Title: "카카오톡 기초", CreatedAt: created})
	title := func(s int64) string { return "단계 " + strconv.FormatInt(s, 10) }
	task := func(s int64) int64 { return (s-1)/10 + 1 }
	for t := int64(1); t <= benchSubtasks/10; t++ {
		add(created, ls, domain.TaskAdded{LectureID: benchLecture, TaskID: t, Title: "과제 " + strconv.FormatInt(t, 10), OrderIndex: int(t), AddedAt: created})
		for s := (t-1)*10 + 1; s <= t*10; s++ {
			add(created, ls, domain.SubtaskAdded{LectureID: benchLecture, TaskID: t, SubtaskID: s, Title: title(s), OrderIndex: int(s), TargetAction: domain.ActionClick, AddedAt: created})
		}
	}
	// Sessions: one a day, 09:00–12:00, moving through the plan.
	for d := range benchDays {
		sid := int64(d + 1)
		at := day0.AddDate(0, 0, d).Add(9 * time.Hour)
		first := int64(d*benchSubtasks/benchDays + 1)
		add(at, domain.SessionStream(sid), domain.SessionOpened{SessionID: sid, LectureID: benchLecture, InstructorID: benchTeacher, Title: "반", SessionCode: "ABC" + strconv.Itoa(100+d), OpenedAt: at})
		add(at.Add(5*time.Minute), domain.SessionStream(sid), domain.SessionStarted{SessionID: sid, LectureID: benchLecture, CurrentSubtask: domain.StepSubtask{ID: first, TaskID: task(first), Title: title(first)}, StartedAt: at.Add(5 * time.Minute)})
		if first < benchSubtasks {
			add(at.Add(90*time.Minute), domain.SessionStream(sid), domain.StepChanged{SessionID: sid, LectureID: benchLecture, PreviousSubtaskID: first, CurrentSubtask: domain.StepSubtask{ID: first + 1, TaskID: task(first + 1), Title: title(first + 1)}, ChangedAt: at.Add(90 * time.Minute)})
		}
		add(at.Add(3*time.Hour), domain.SessionStream(sid), domain.SessionEnded{SessionID: sid, LectureID: benchLecture, PreviousStatus: domain.SessionStatusInProgress, EndedAt: at.Add(3 * time.Hour)})
	}
	helpID := int64(0)
	type logRow struct {
		user, session, subtask int64
		at                     time.Time
	}
	var logs []logRow
	for i := range benchStudents {
		user := int64(i + 2)
		ps := domain.ProgressStream(benchLecture, user)
		enrolled := day0.Add(time.Duration(8*60+i%60) * time.Minute)
		add(enrolled, ps, domain.StudentEnrolled{EnrollmentID: int64(i + 1), LectureID: benchLecture, UserID: user, EnrolledAt: enrolled})
		pace := 0.5 + 0.5*float64(i%10)/10 // days per subtask
		joined := map[int]bool{}
		for s := int64(1); s <= benchSubtasks; s++ {
			d := int(float64(s-1) * pace)
			if d >= benchDays {
				break
			}
			base := day0.AddDate(0, 0, d).Add(9*time.Hour + 10*time.Minute + time.Duration(s%4)*20*time.Minute + time.Duration(i%30)*time.Second)
			if !joined[d] {
				joined[d] = true
				sid := int64(d + 1)
				add(base.Add(-time.Minute), domain.ParticipantStream(sid, user), domain.ParticipantJoined{ParticipantID: int64(d*1000 + i + 1), SessionID: sid, LectureID: benchLecture, UserID: user, Status: domain.ParticipantStatusActive, SessionStatus: domain.SessionStatusInProgress, JoinedAt: base.Add(-time.Minute)})
				for k := range 5 {
					logs = append(logs, logRow{user, sid, s, base.Add(time.Duration(k) * 3 * time.Minute)})
				}
			}
			add(base, ps, domain.SubtaskStarted{LectureID: benchLecture, UserID: user, TaskID: task(s), SubtaskID: s, SubtaskTitle: title(s), StartedAt: base})
			done := base.Add(time.Duration(2+(i+int(s))%9) * time.Minute)
			if (i*7+int(s))%10 == 0 {
				helpID++
				hs := domain.HelpStream(helpID)
				asked := base.Add(time.Minute)
				typ := domain.HelpManual
				if helpID%3 == 0 {
					typ = domain.HelpAuto
				}
				add(asked, hs, domain.HelpRequested{HelpRequestID: helpID, UserID: user, LectureID: benchLecture, InstructorID: benchTeacher, TaskID: task(s), SubtaskID: s, SubtaskTitle: title(s), RequestType: typ, StuckDurationSeconds: 60, RequestedAt: asked})
				switch {
				case helpID%11 == 0: // left open
				case helpID%7 == 0:
					add(asked.Add(time.Second), hs, domain.HelpEscalated{HelpRequestID: helpID, UserID: user, LectureID: benchLecture, InstructorID: benchTeacher, SubtaskID: s, Reason: "low confidence", EscalatedAt: asked.Add(time.Second)})
				default:
					add(asked.Add(time.Second), hs, domain.HelpProvided{HelpRequestID: helpID, HelpResponseID: helpID, UserID: user, LectureID: benchLecture, SubtaskID: s, Responder: domain.ResponderAnalyzer, HelpType: domain.HelpTypeText, HelpContent: "버튼을 누르세요", ProvidedAt: asked.Add(time.Second)})
				}
			}
			add(done, ps, domain.SubtaskCompleted{LectureID: benchLecture, UserID: user, TaskID: task(s), SubtaskID: s, SubtaskTitle: title(s), CompletedAt: done})
		}
	}
	slices.SortStableFunc(evs, func(a, b apptest.SeedEvent) int { return a.At.Compare(b.At) })
	apptest.CopyEvents(tb, db.Pool, eventstore.Metadata{UserID: benchTeacher, LectureID: benchLecture}, evs)

	logRows := make([][]any, len(logs))
	for i, l := range logs {
		logRows[i] = []any{int64(i + 1), l.user, l.session, l.subtask, "SCREEN_VIEW", l.at, l.at}
	}
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"activity_logs"}, []string{"log_id", "user_id", "session_id", "subtask_id", "event_type", "occurred_at", "received_at"},
		pgx.CopyFromRows(logRows)); err != nil {
		tb.Fatalf("seed logs: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE`); err != nil {
		tb.Fatal(err)
	}
	return len(evs), lastDay
}

// BenchmarkDashboardEndpoints seeds a 30-day history of 200 students × 40
// subtasks, projects it with the dashboard projector, then measures each
// dashboard endpoint over in-process HTTP (the real router, authentication
// and PostgreSQL), reporting p50 and p99 latency per endpoint.
//
//	go test -run '^$' -bench BenchmarkDashboardEndpoints -benchtime 2000x ./readapi/
func BenchmarkDashboardEndpoints(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	seedStart := time.Now()
	n, lastDay := seedDashboardHistory(b, db)
	seeded := time.Since(seedStart)
	es := postgres.New(db.Pool, postgres.Config{})
	defer es.Close()
	runner := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: projections.NewDashboard(nil)})
	projStart := time.Now()
	if err := runner.CatchUp(ctx); err != nil {
		b.Fatalf("project: %v", err)
	}
	projected := time.Since(projStart)
	if _, err := db.Pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events seeded in %v, projected in %v (%.0f events/s)", n, seeded.Round(time.Millisecond), projected.Round(time.Millisecond), float64(n)/projected.Seconds())

	tokens, err := auth.NewTokens(auth.Config{Secret: []byte("bench-secret-bench-secret-bench-secret!")})
	if err != nil {
		b.Fatal(err)
	}
	token, err := tokens.Issue(domain.Actor{UserID: benchTeacher, Role: domain.RoleInstructor})
	if err != nil {
		b.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	hub := live.NewHub(live.HubConfig{Pool: db.Pool})
	defer hub.Close()
	(&readapi.DashboardQueries{
		Pool: db.Pool, Hub: hub, Tokens: tokens, Producer: projections.DashboardProjector, Channel: projections.DashboardLectureChannel,
		Now: func() time.Time { return lastDay.Add(20 * time.Hour) },
	}).Routes(engine, tokens.Authenticate())
	srv := httptest.NewServer(engine)
	defer srv.Close()
	client := srv.Client()

	get := func(tb testing.TB, path string) []byte {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET %s: %d %s (%v)", path, resp.StatusCode, body, err)
		}
		return body
	}
	// The history is really there.
	var stats struct {
		TotalStudents int     `json:"total_students"`
		Help          int     `json:"total_help_requests"`
		Avg           float64 `json:"average_progress_rate"`
	}
	if err := json.Unmarshal(get(b, fmt.Sprintf("/api/dashboard/statistics/lecture/%d", benchLecture)), &stats); err != nil || stats.TotalStudents != benchStudents || stats.Help == 0 || stats.Avg == 0 {
		b.Fatalf("statistics %+v (%v)", stats, err)
	}
	b.Logf("statistics: %+v", stats)

	for _, e := range []struct{ name, path string }{
		{"students_page20", fmt.Sprintf("/api/dashboard/lectures/%d/students", benchLecture)},
		{"students_page100", fmt.Sprintf("/api/dashboard/lectures/%d/students?page=2&page_size=100", benchLecture)},
		{"pending", "/api/dashboard/help-requests/pending"},
		{"statistics", fmt.Sprintf("/api/dashboard/statistics/lecture/%d", benchLecture)},
		{"trend_7d", fmt.Sprintf("/api/dashboard/chart-data/progress-trend?lecture_id=%d", benchLecture)},
		{"trend_90d", fmt.Sprintf("/api/dashboard/chart-data/progress-trend?lecture_id=%d&days=90", benchLecture)},
	} {
		b.Run(e.name, func(b *testing.B) {
			for range 20 {
				get(b, e.path)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				get(b, e.path)
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50_ms")
			b.ReportMetric(pct(0.99), "p99_ms")
		})
	}
}
