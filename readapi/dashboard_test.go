package readapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/projections"
)

// dashHistory appends events straight to a server's event store, with the
// times a test chooses.
type dashHistory struct {
	t     testing.TB
	srv   *apptest.Server
	store *postgres.Store
	last  uint64
}

func newDashHistory(t testing.TB, srv *apptest.Server) *dashHistory {
	store := postgres.New(srv.DB.Pool, postgres.Config{})
	t.Cleanup(store.Close)
	return &dashHistory{t: t, srv: srv, store: store}
}

// add appends events to one stream in one append; it returns the position
// of the last one.
func (h *dashHistory) add(stream string, lectureID int64, at time.Time, evs ...domain.Event) uint64 {
	h.t.Helper()
	data, err := commands.Encode(evs, eventstore.Metadata{LectureID: lectureID})
	if err != nil {
		h.t.Fatal(err)
	}
	for i := range data {
		data[i].OccurredAt = at
	}
	res, err := h.store.Append(context.Background(), stream, eventstore.Any, data...)
	if err != nil {
		h.t.Fatalf("append to %s: %v", stream, err)
	}
	h.last = res.Position
	return res.Position
}

// await waits until the dashboard projector applied everything appended.
func (h *dashHistory) await() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var pos int64
		err := h.srv.DB.Pool.QueryRow(context.Background(), `SELECT position FROM projection_checkpoints WHERE name = $1`, projections.DashboardProjector).Scan(&pos)
		if err == nil && uint64(pos) >= h.last {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("dashboard projector at %d, not at %d within 20s (%v)", pos, h.last, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dashServer starts a server whose dashboards think it is now, without the
// workers (no analyzer or stuck detector appending on their own).
func dashServer(t *testing.T, now time.Time) *apptest.Server {
	t.Helper()
	prev := app.DashboardNow
	app.DashboardNow = func() time.Time { return now }
	t.Cleanup(func() { app.DashboardNow = prev })
	return apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.Workers = false }))
}

// assertJSON compares a response body with the expected JSON document exactly
// (every field, every number).
func assertJSON(t *testing.T, what string, r *apptest.Response, want string) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: status %d: %s", what, r.Status, r.Body)
	}
	var got, exp any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	if !reflect.DeepEqual(got, exp) {
		g, _ := json.MarshalIndent(got, "", "  ")
		e, _ := json.MarshalIndent(exp, "", "  ")
		t.Fatalf("%s:\n got %s\nwant %s", what, g, e)
	}
}

// dashLecturePlan appends a lecture with two tasks of two subtasks each.
const (
	dLecture                   = 9001
	dTask1, dTask2             = 9101, 9102
	dSubA, dSubB, dSubC, dSubD = 9201, 9202, 9203, 9204
	dSession                   = 9301
)

var dTitles = map[int64]string{dSubA: "친구 선택하기", dSubB: "메시지 입력하기", dSubC: "사진 보내기", dSubD: "대화방 나가기"}

func dashPlan(h *dashHistory, instructorID int64, at time.Time) {
	h.add(domain.LectureStream(dLecture), dLecture, at,
		domain.LectureCreated{LectureID: dLecture, InstructorID: instructorID, Title: "카카오톡 기초", CreatedAt: at},
		domain.TaskAdded{LectureID: dLecture, TaskID: dTask1, Title: "메시지", OrderIndex: 1, AddedAt: at},
		domain.TaskAdded{LectureID: dLecture, TaskID: dTask2, Title: "사진", OrderIndex: 2, AddedAt: at},
		// Added out of order: lecture order is by task, then order_index.
		domain.SubtaskAdded{LectureID: dLecture, TaskID: dTask2, SubtaskID: dSubD, Title: dTitles[dSubD], OrderIndex: 2, TargetAction: domain.ActionClick, AddedAt: at},
		domain.SubtaskAdded{LectureID: dLecture, TaskID: dTask1, SubtaskID: dSubA, Title: dTitles[dSubA], OrderIndex: 1, TargetAction: domain.ActionClick, AddedAt: at},
		domain.SubtaskAdded{LectureID: dLecture, TaskID: dTask1, SubtaskID: dSubB, Title: dTitles[dSubB], OrderIndex: 2, TargetAction: domain.ActionClick, AddedAt: at},
		domain.SubtaskAdded{LectureID: dLecture, TaskID: dTask2, SubtaskID: dSubC, Title: dTitles[dSubC], OrderIndex: 1, TargetAction: domain.ActionClick, AddedAt: at},
	)
}

func taskOf(subtask int64) int64 {
	if subtask == dSubA || subtask == dSubB {
		return dTask1
	}
	return dTask2
}

func started(user, subtask int64, at time.Time) domain.SubtaskStarted {
	return domain.SubtaskStarted{LectureID: dLecture, UserID: user, TaskID: taskOf(subtask), SubtaskID: subtask, SubtaskTitle: dTitles[subtask], StartedAt: at}
}

func completed(user, subtask int64, at time.Time) domain.SubtaskCompleted {
	return domain.SubtaskCompleted{LectureID: dLecture, UserID: user, TaskID: taskOf(subtask), SubtaskID: subtask, SubtaskTitle: dTitles[subtask], CompletedAt: at}
}

func helpRequested(id, user, instructor, subtask int64, typ domain.HelpRequestType, stuck int, at time.Time) domain.HelpRequested {
	return domain.HelpRequested{HelpRequestID: id, UserID: user, LectureID: dLecture, InstructorID: instructor, TaskID: taskOf(subtask),
		SubtaskID: subtask, SubtaskTitle: dTitles[subtask], RequestType: typ, StuckDurationSeconds: stuck, RequestedAt: at}
}

type dashUsers struct {
	instructor, other, analyst, admin, s1, s2, s3 apptest.User
}

func newDashUsers(t *testing.T, srv *apptest.Server) dashUsers {
	u := dashUsers{
		instructor: srv.NewUser(t, "INSTRUCTOR", "박강사"),
		other:      srv.NewUser(t, "INSTRUCTOR", "최강사"),
		s1:         srv.NewUser(t, "STUDENT", "김학생"),
		s2:         srv.NewUser(t, "STUDENT", "이학생"),
		s3:         srv.NewUser(t, "STUDENT", "정학생"),
		admin:      srv.Admin(t),
	}
	analyst := srv.NewUser(t, "STUDENT", "분석가")
	if r := srv.Patch(t, fmt.Sprintf("/api/admin/users/%d", analyst.ID), u.admin.Token, map[string]any{"role": "ANALYST"}); r.Status != http.StatusOK {
		t.Fatalf("make analyst: %d %s", r.Status, r.Body)
	}
	u.analyst = srv.Login(t, analyst.Email, "password-123")
	return u
}

// TestDashboardKnownHistory builds a two-day history of three students (a
// live session, progress, a manual request escalated, an AUTO request, a
// manual request resolved, activity logs), asserts every number of every
// dashboard endpoint, then rebuilds the projection from zero and asserts the
// same answers.
func TestDashboardKnownHistory(t *testing.T) {
	now := time.Date(2025, 10, 29, 12, 0, 0, 0, time.UTC)
	srv := dashServer(t, now)
	u := newDashUsers(t, srv)
	h := newDashHistory(t, srv)
	s1, s2, s3, ins := u.s1.ID, u.s2.ID, u.s3.ID, u.instructor.ID
	d1 := func(hh, mm int) time.Time { return time.Date(2025, 10, 27, hh, mm, 0, 0, time.UTC) }
	d2 := func(hh, mm int) time.Time { return time.Date(2025, 10, 28, hh, mm, 0, 0, time.UTC) }
	prog := func(user int64) string { return domain.ProgressStream(dLecture, user) }
	part := func(user int64) string { return domain.ParticipantStream(dSession, user) }
	sess := domain.SessionStream(dSession)
	help := func(id int64) string { return domain.HelpStream(id) }
	step := func(id int64) domain.StepSubtask {
		return domain.StepSubtask{ID: id, TaskID: taskOf(id), Title: dTitles[id]}
	}

	// Day 1: a live session with S1 and S2.
	dashPlan(h, ins, d1(9, 0))
	h.add(prog(s1), dLecture, d1(9, 0), domain.StudentEnrolled{EnrollmentID: 1, LectureID: dLecture, UserID: s1, EnrolledAt: d1(9, 0)})
	h.add(prog(s2), dLecture, d1(9, 5), domain.StudentEnrolled{EnrollmentID: 2, LectureID: dLecture, UserID: s2, EnrolledAt: d1(9, 5)})
	h.add(sess, dLecture, d1(9, 10), domain.SessionOpened{SessionID: dSession, LectureID: dLecture, LectureTitle: "카카오톡 기초", InstructorID: ins, Title: "오전반", SessionCode: "ABCDEF", OpenedAt: d1(9, 10)})
	h.add(part(s1), dLecture, d1(9, 10), domain.ParticipantJoined{ParticipantID: 1, SessionID: dSession, LectureID: dLecture, UserID: s1, Status: domain.ParticipantStatusWaiting, SessionStatus: domain.SessionStatusWaiting, JoinedAt: d1(9, 10)})
	h.add(part(s2), dLecture, d1(9, 11), domain.ParticipantJoined{ParticipantID: 2, SessionID: dSession, LectureID: dLecture, UserID: s2, Status: domain.ParticipantStatusWaiting, SessionStatus: domain.SessionStatusWaiting, JoinedAt: d1(9, 11)})
	h.add(sess, dLecture, d1(9, 12), domain.SessionStarted{SessionID: dSession, LectureID: dLecture, CurrentSubtask: step(dSubA), StartedAt: d1(9, 12)})
	h.add(prog(s1), dLecture, d1(9, 13), started(s1, dSubA, d1(9, 13)))
	h.add(prog(s2), dLecture, d1(9, 14), started(s2, dSubA, d1(9, 14)))
	h.add(prog(s1), dLecture, d1(9, 15), completed(s1, dSubA, d1(9, 15)))
	h.add(help(9401), dLecture, d1(9, 16), helpRequested(9401, s2, ins, dSubA, domain.HelpManual, 120, d1(9, 16)))
	h.add(help(9401), dLecture, d1(9, 17),
		domain.HelpAnalyzed{HelpRequestID: 9401, Diagnosis: "?", Confidence: 0.2, AnalyzedAt: d1(9, 17)},
		domain.HelpEscalated{HelpRequestID: 9401, UserID: s2, LectureID: dLecture, InstructorID: ins, SubtaskID: dSubA, Reason: "low confidence", EscalatedAt: d1(9, 17)})
	h.add(prog(s2), dLecture, d1(9, 20), completed(s2, dSubA, d1(9, 20)))
	h.add(sess, dLecture, d1(9, 21), domain.StepChanged{SessionID: dSession, LectureID: dLecture, PreviousSubtaskID: dSubA, CurrentSubtask: step(dSubB), ChangedAt: d1(9, 21)})
	h.add(prog(s1), dLecture, d1(9, 25), completed(s1, dSubB, d1(9, 25)))
	h.add(help(9402), dLecture, d1(9, 31), helpRequested(9402, s2, ins, dSubB, domain.HelpAuto, 600, d1(9, 31)))
	h.add(part(s2), dLecture, d1(9, 40), domain.ParticipantDisconnected{ParticipantID: 2, SessionID: dSession, LectureID: dLecture, UserID: s2, LastActiveAt: d1(9, 39), DisconnectedAt: d1(9, 40)})
	h.add(sess, dLecture, d1(9, 50), domain.SessionEnded{SessionID: dSession, LectureID: dLecture, PreviousStatus: domain.SessionStatusInProgress, EndedAt: d1(9, 50)})

	// Day 2: S3 alone, with help the analyzer answered; S1 finishes.
	h.add(prog(s3), dLecture, d2(10, 0), domain.StudentEnrolled{EnrollmentID: 3, LectureID: dLecture, UserID: s3, EnrolledAt: d2(10, 0)})
	h.add(prog(s3), dLecture, d2(10, 1), started(s3, dSubA, d2(10, 1)))
	h.add(help(9403), dLecture, d2(10, 3), helpRequested(9403, s3, ins, dSubA, domain.HelpManual, 30, d2(10, 3)))
	h.add(help(9403), dLecture, d2(10, 4),
		domain.HelpAnalyzed{HelpRequestID: 9403, Diagnosis: "tap", Confidence: 0.9, AnalyzedAt: d2(10, 4)},
		domain.HelpProvided{HelpRequestID: 9403, HelpResponseID: 9501, UserID: s3, LectureID: dLecture, SubtaskID: dSubA, Responder: domain.ResponderAnalyzer, HelpType: domain.HelpTypeText, HelpContent: "친구 이름을 누르세요", ProvidedAt: d2(10, 4)})
	h.add(prog(s3), dLecture, d2(10, 6), completed(s3, dSubA, d2(10, 6)))
	h.add(prog(s1), dLecture, d2(10, 10), started(s1, dSubC, d2(10, 10)))
	h.add(prog(s1), dLecture, d2(10, 20), completed(s1, dSubC, d2(10, 20)))
	h.add(prog(s1), dLecture, d2(10, 21), started(s1, dSubD, d2(10, 21)))
	h.add(prog(s1), dLecture, d2(10, 30), completed(s1, dSubD, d2(10, 30)))
	// Activity logs: S3 on one of the lecture's subtasks later that day
	// (moves their last_activity), S2 on another lecture's subtask (does not).
	if _, err := srv.DB.Pool.Exec(context.Background(), `INSERT INTO activity_logs (log_id, user_id, session_id, subtask_id, event_type, occurred_at, received_at)
		VALUES (1, $1, NULL, $2, 'SCREEN_VIEW', $3, $3), (2, $4, NULL, 99999, 'SCREEN_VIEW', $5, $5)`,
		s3, dSubB, d2(11, 0), s2, d2(12, 0)); err != nil {
		t.Fatal(err)
	}
	h.await()

	students := func(s apptest.User, completedN int, cur string, helpN int, last, enrolled string) string {
		return fmt.Sprintf(`{"user_id": %d, "name": %q, "email": %q, "progress_rate": %g, "completed_subtasks": %d, "total_subtasks": 4,
			"current_subtask": %s, "help_count": %d, "last_activity": %q, "enrolled_at": %q}`,
			s.ID, s.Name, s.Email, float64(completedN)/4, completedN, cur, helpN, last, enrolled)
	}
	curB := fmt.Sprintf(`{"id": %d, "title": "메시지 입력하기", "status": "NOT_STARTED"}`, dSubB)
	st1 := students(u.s1, 4, "null", 0, "2025-10-28T10:30:00Z", "2025-10-27T09:00:00Z")
	st2 := students(u.s2, 1, curB, 2, "2025-10-27T09:20:00Z", "2025-10-27T09:05:00Z")
	st3 := students(u.s3, 1, curB, 1, "2025-10-28T11:00:00Z", "2025-10-28T10:00:00Z")
	pending := fmt.Sprintf(`[
		{"help_request_id": 9401, "user": {"id": %d, "name": "이학생"}, "subtask": {"id": %d, "title": "친구 선택하기"}, "created_at": "2025-10-27T09:16:00Z", "status": "ESCALATED"},
		{"help_request_id": 9402, "user": {"id": %d, "name": "이학생"}, "subtask": {"id": %d, "title": "메시지 입력하기"}, "created_at": "2025-10-27T09:31:00Z", "status": "ANALYZING"}]`,
		s2, dSubA, s2, dSubB)
	expect := map[string]string{
		fmt.Sprintf("/api/dashboard/lectures/%d/students", dLecture): fmt.Sprintf(`{"lecture_id": %d, "students": [%s, %s, %s],
			"pagination": {"page": 1, "page_size": 20, "total_count": 3, "total_pages": 1}}`, dLecture, st1, st2, st3),
		fmt.Sprintf("/api/dashboard/lectures/%d/students?page=2&page_size=2", dLecture): fmt.Sprintf(`{"lecture_id": %d, "students": [%s],
			"pagination": {"page": 2, "page_size": 2, "total_count": 3, "total_pages": 2}}`, dLecture, st3),
		"/api/dashboard/help-requests/pending": `{"pending_requests": ` + pending + `, "pagination": {"page": 1, "page_size": 20, "total_count": 2, "total_pages": 1}}`,
		fmt.Sprintf("/api/dashboard/statistics/lecture/%d", dLecture): fmt.Sprintf(`{
			"lecture_id": %d, "total_students": 3, "average_progress_rate": 0.5, "total_help_requests": 3,
			"average_completion_time_minutes": 1517,
			"common_difficulties": [
				{"subtask_id": %d, "subtask_title": "친구 선택하기", "help_count": 2, "average_stuck_time_seconds": 180},
				{"subtask_id": %d, "subtask_title": "메시지 입력하기", "help_count": 1, "average_stuck_time_seconds": 420}],
			"daily_activity": [
				{"date": "2025-10-27", "active_students": 2, "help_requests": 2},
				{"date": "2025-10-28", "active_students": 2, "help_requests": 1}],
			"progress_distribution": {"0-25%%": 2, "26-50%%": 0, "51-75%%": 0, "76-100%%": 1}}`, dLecture, dSubA, dSubB),
		fmt.Sprintf("/api/dashboard/chart-data/progress-trend?lecture_id=%d", dLecture): `{
			"labels": ["10/23", "10/24", "10/25", "10/26", "10/27", "10/28", "10/29"],
			"datasets": [
				{"label": "평균 진행률", "data": [0, 0, 0, 0, 37.5, 50, 50]},
				{"label": "도움 요청 수", "data": [0, 0, 0, 0, 2, 1, 0]}]}`,
		fmt.Sprintf("/api/dashboard/chart-data/progress-trend?lecture_id=%d&days=2", dLecture): `{
			"labels": ["10/28", "10/29"],
			"datasets": [{"label": "평균 진행률", "data": [50, 50]}, {"label": "도움 요청 수", "data": [1, 0]}]}`,
		fmt.Sprintf("/api/dashboard/chart-data/progress-trend?lecture_id=%d&days=1", dLecture): `{
			"labels": ["10/29"],
			"datasets": [{"label": "평균 진행률", "data": [50]}, {"label": "도움 요청 수", "data": [0]}]}`,
	}
	check := func(stage string) {
		t.Helper()
		for path, want := range expect {
			assertJSON(t, stage+" "+path, srv.Get(t, path, u.instructor.Token), want)
		}
		// ANALYST and ADMIN see every lecture's dashboards and every open request.
		for _, who := range []apptest.User{u.analyst, u.admin} {
			assertJSON(t, stage+" statistics as "+who.Role, srv.Get(t, fmt.Sprintf("/api/dashboard/statistics/lecture/%d", dLecture), who.Token),
				expect[fmt.Sprintf("/api/dashboard/statistics/lecture/%d", dLecture)])
			assertJSON(t, stage+" pending as "+who.Role, srv.Get(t, "/api/dashboard/help-requests/pending", who.Token), expect["/api/dashboard/help-requests/pending"])
		}
		// Another instructor has no open requests of their own.
		assertJSON(t, stage+" pending of another instructor", srv.Get(t, "/api/dashboard/help-requests/pending", u.other.Token),
			`{"pending_requests": [], "pagination": {"page": 1, "page_size": 20, "total_count": 0, "total_pages": 0}}`)
	}
	check("projected")

	// Spoil the read models, then rebuild from event zero (online): the same answers.
	if _, err := srv.DB.Pool.Exec(context.Background(), `UPDATE dash_lectures SET help_requests = 999, completions = 0;
		UPDATE dash_students SET help_count = 7; DELETE FROM dash_daily; DELETE FROM dash_help_open`); err != nil {
		t.Fatal(err)
	}
	if r := srv.Get(t, fmt.Sprintf("/api/dashboard/statistics/lecture/%d", dLecture), u.instructor.Token); strings.Contains(string(r.Body), `"total_help_requests":3`) {
		t.Fatalf("spoiling the read models did not show: %s", r.Body)
	}
	if err := srv.App.Rebuild(context.Background(), projections.DashboardProjector, nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	check("rebuilt")
}

func TestDashboardAccess(t *testing.T) {
	srv := dashServer(t, time.Date(2025, 10, 29, 12, 0, 0, 0, time.UTC))
	u := newDashUsers(t, srv)
	h := newDashHistory(t, srv)
	dashPlan(h, u.instructor.ID, time.Date(2025, 10, 27, 9, 0, 0, 0, time.UTC))
	h.await()
	paths := []string{
		fmt.Sprintf("/api/dashboard/lectures/%d/students", dLecture),
		fmt.Sprintf("/api/dashboard/statistics/lecture/%d", dLecture),
		fmt.Sprintf("/api/dashboard/chart-data/progress-trend?lecture_id=%d", dLecture),
	}
	for _, p := range paths {
		for who, want := range map[string]struct {
			token  string
			status int
		}{
			"owner": {u.instructor.Token, 200}, "analyst": {u.analyst.Token, 200}, "admin": {u.admin.Token, 200},
			"other instructor": {u.other.Token, 403}, "student": {u.s1.Token, 403}, "anonymous": {"", 401},
		} {
			if r := srv.Get(t, p, want.token); r.Status != want.status {
				t.Errorf("%s GET %s = %d %s, want %d", who, p, r.Status, r.Body, want.status)
			}
		}
		unknown := strings.Replace(p, fmt.Sprint(dLecture), "777777", 1)
		if r := srv.Get(t, unknown, u.instructor.Token); r.Status != http.StatusNotFound || r.ErrorCode() != "NOT_FOUND" {
			t.Errorf("GET %s = %d %s, want 404", unknown, r.Status, r.Body)
		}
	}
	if r := srv.Get(t, "/api/dashboard/help-requests/pending", u.s1.Token); r.Status != http.StatusForbidden {
		t.Errorf("student pending = %d", r.Status)
	}
	for _, q := range []string{"", "lecture_id=abc", fmt.Sprintf("lecture_id=%d&days=0", dLecture), fmt.Sprintf("lecture_id=%d&days=91", dLecture), fmt.Sprintf("lecture_id=%d&days=x", dLecture)} {
		if r := srv.Get(t, "/api/dashboard/chart-data/progress-trend?"+q, u.instructor.Token); r.Status != http.StatusBadRequest || r.ErrorCode() != "INVALID_REQUEST" {
			t.Errorf("trend ?%s = %d %s, want 400", q, r.Status, r.Body)
		}
	}
	if r := srv.Get(t, fmt.Sprintf("/api/dashboard/chart-data/progress-trend?lecture_id=%d&days=90", dLecture), u.instructor.Token); r.Status != http.StatusOK {
		t.Errorf("trend days=90 = %d", r.Status)
	}

	// Sockets: wrong role or instructor 4403, bad token 4401, unknown lecture 4404.
	ws := fmt.Sprintf("/ws/dashboard/lecture/%d/", dLecture)
	for _, c := range []struct {
		path, token string
		code        int
	}{
		{ws, u.s1.Token, 4403}, {ws, u.other.Token, 4403}, {ws, "garbage", 4401}, {ws, "", 4401},
		{"/ws/dashboard/lecture/777777/", u.instructor.Token, 4404},
	} {
		if code := dashCloseCode(t, srv, c.path, c.token); code != c.code {
			t.Errorf("socket %s as %q closed with %d, want %d", c.path, c.token, code, c.code)
		}
	}
	// The analyst may watch (no trailing slash either).
	s := mustDial(t, srv, fmt.Sprintf("/ws/dashboard/lecture/%d", dLecture), u.analyst.Token)
	if f := s.Next(t); f.Type != "dashboard_state" {
		t.Fatalf("analyst's first message %s", f.Raw)
	}
}

// dashCloseCode dials a socket that must be refused and returns the close code.
func dashCloseCode(t *testing.T, srv *apptest.Server, path, token string) int {
	t.Helper()
	url := srv.WSURL(path)
	if token != "" {
		url += "?token=" + token
	}
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		if resp != nil {
			return resp.StatusCode
		}
		t.Fatalf("dial %s: %v", path, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("socket %s: want a close, got %v (%s)", path, err, msg)
	}
	return ce.Code
}

// TestDashboardSocket: progress_update, help_request and student_activity
// (STARTED_LEARNING on a student's first act of a day, before that act's own
// message; JOINED_SESSION; LEFT_SESSION) arrive in order with increasing
// positions, and ?after= replays exactly what followed.
func TestDashboardSocket(t *testing.T) {
	srv := dashServer(t, time.Date(2025, 10, 29, 12, 0, 0, 0, time.UTC))
	u := newDashUsers(t, srv)
	h := newDashHistory(t, srv)
	at := func(d, hh, mm int) time.Time { return time.Date(2025, 10, d, hh, mm, 0, 0, time.UTC) }
	s1, s2, ins := u.s1.ID, u.s2.ID, u.instructor.ID
	dashPlan(h, ins, at(27, 9, 0))
	h.add(domain.ProgressStream(dLecture, s1), dLecture, at(27, 9, 0), domain.StudentEnrolled{EnrollmentID: 1, LectureID: dLecture, UserID: s1, EnrolledAt: at(27, 9, 0)})
	h.add(domain.ProgressStream(dLecture, s2), dLecture, at(27, 9, 0), domain.StudentEnrolled{EnrollmentID: 2, LectureID: dLecture, UserID: s2, EnrolledAt: at(27, 9, 0)})
	h.add(domain.SessionStream(dSession), dLecture, at(28, 9, 0), domain.SessionOpened{SessionID: dSession, LectureID: dLecture, InstructorID: ins, Title: "오전반", SessionCode: "ABCDEF", OpenedAt: at(28, 9, 0)})
	h.await()

	sock := mustDial(t, srv, fmt.Sprintf("/ws/dashboard/lecture/%d/?token=%s", dLecture, u.instructor.Token), "")
	snap := sock.Next(t)
	if snap.Type != "dashboard_state" || snap.Position < h.last {
		t.Fatalf("snapshot %s (want position ≥ %d)", snap.Raw, h.last)
	}
	var state struct {
		LectureID int64 `json:"lecture_id"`
		Students  []struct {
			UserID int64 `json:"user_id"`
		} `json:"students"`
		Pending []any `json:"pending_requests"`
	}
	snap.Decode(t, &state)
	if state.LectureID != dLecture || len(state.Students) != 2 || state.Students[0].UserID != s1 || len(state.Pending) != 0 {
		t.Fatalf("snapshot data %s", snap.Data)
	}

	p1 := h.add(domain.ProgressStream(dLecture, s1), dLecture, at(28, 9, 1), started(s1, dSubA, at(28, 9, 1)))
	p2 := h.add(domain.ProgressStream(dLecture, s1), dLecture, at(28, 9, 2), completed(s1, dSubA, at(28, 9, 2)))
	p3 := h.add(domain.HelpStream(9401), dLecture, at(28, 9, 3), helpRequested(9401, s1, ins, dSubB, domain.HelpAuto, 90, at(28, 9, 3)))
	p4 := h.add(domain.ParticipantStream(dSession, s2), dLecture, at(28, 9, 4), domain.ParticipantJoined{ParticipantID: 2, SessionID: dSession, LectureID: dLecture, UserID: s2, Status: domain.ParticipantStatusWaiting, SessionStatus: domain.SessionStatusWaiting, JoinedAt: at(28, 9, 4)})
	p5 := h.add(domain.ParticipantStream(dSession, s2), dLecture, at(28, 9, 5), domain.ParticipantDisconnected{ParticipantID: 2, SessionID: dSession, LectureID: dLecture, UserID: s2, LastActiveAt: at(28, 9, 4), DisconnectedAt: at(28, 9, 5)})

	type want struct {
		pos  uint64
		typ  string
		data string
	}
	activity := func(user apptest.User, what, ts string) string {
		return fmt.Sprintf(`{"user_id": %d, "user_name": %q, "activity": %q, "timestamp": %q}`, user.ID, user.Name, what, ts)
	}
	wants := []want{
		{p1 - 1, "student_activity", activity(u.s1, "STARTED_LEARNING", "2025-10-28T09:01:00Z")},
		{p1, "progress_update", fmt.Sprintf(`{"user_id": %d, "user_name": "김학생", "subtask_id": %d, "subtask_title": "친구 선택하기", "old_status": "NOT_STARTED", "new_status": "IN_PROGRESS", "timestamp": "2025-10-28T09:01:00Z"}`, s1, dSubA)},
		{p2, "progress_update", fmt.Sprintf(`{"user_id": %d, "user_name": "김학생", "subtask_id": %d, "subtask_title": "친구 선택하기", "old_status": "IN_PROGRESS", "new_status": "COMPLETED", "timestamp": "2025-10-28T09:02:00Z"}`, s1, dSubA)},
		{p3, "help_request", fmt.Sprintf(`{"help_request_id": 9401, "user": {"id": %d, "name": "김학생"}, "subtask": {"id": %d, "title": "메시지 입력하기"}, "request_type": "AUTO", "stuck_duration_seconds": 90, "timestamp": "2025-10-28T09:03:00Z"}`, s1, dSubB)},
		{p4 - 1, "student_activity", activity(u.s2, "STARTED_LEARNING", "2025-10-28T09:04:00Z")},
		{p4, "student_activity", activity(u.s2, "JOINED_SESSION", "2025-10-28T09:04:00Z")},
		{p5, "student_activity", activity(u.s2, "LEFT_SESSION", "2025-10-28T09:05:00Z")},
	}
	expectFrames := func(s *socket, ws []want) {
		t.Helper()
		for _, w := range ws {
			f := s.Next(t)
			if f.Type != w.typ || f.Position != w.pos {
				t.Fatalf("got %s, want %s at %d", f.Raw, w.typ, w.pos)
			}
			var got, exp any
			_ = json.Unmarshal(f.Data, &got)
			if err := json.Unmarshal([]byte(w.data), &exp); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("%s data %s, want %s", w.typ, f.Data, w.data)
			}
		}
	}
	expectFrames(sock, wants)

	// Resume after the first progress_update: exactly what followed, no snapshot.
	again := mustDial(t, srv, fmt.Sprintf("/ws/dashboard/lecture/%d?after=%d&token=%s", dLecture, p1, u.instructor.Token), "")
	expectFrames(again, wants[2:])
}
