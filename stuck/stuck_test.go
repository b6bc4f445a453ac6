package stuck_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/analyzer/pgactivity"
	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/stuck"
)

// liveClass is a session in progress on a CLICK step with two students in it.
type liveClass struct {
	srv        *apptest.Server
	instructor apptest.User
	students   []apptest.User
	sessionID  int64
	subtaskID  int64
}

func newLiveClass(t testing.TB, srv *apptest.Server) *liveClass {
	t.Helper()
	c := &liveClass{srv: srv, instructor: srv.NewUser(t, "INSTRUCTOR", "박강사")}
	lecture := apptest.ID(t, apptest.Must(t, srv.Post(t, "/api/lectures", c.instructor.Token, map[string]any{"title": "카카오톡 기초"}), 201), "id")
	task := apptest.ID(t, apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lecture), c.instructor.Token, map[string]any{"title": "메시지", "order_index": 1}), 201), "id")
	c.subtaskID = apptest.ID(t, apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), c.instructor.Token, map[string]any{
		"title": "친구 선택하기", "order_index": 1, "target_action": "CLICK", "target_element_hint": "친구 탭 (com.kakao.talk:id/friend_tab)",
	}), 201), "id")
	opened := apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", lecture), c.instructor.Token, map[string]any{"title": "오전반"}), 201)
	c.sessionID = apptest.ID(t, opened, "session_id")
	code := opened.JSON(t)["session_code"] // a session id alone admits no one (CONTRACT "Admission")
	for _, name := range []string{"김학생", "이학생"} {
		s := srv.NewUser(t, "STUDENT", name)
		apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/sessions/%d/join", c.sessionID), s.Token, map[string]any{"session_code": code}), 201)
		c.students = append(c.students, s)
	}
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/sessions/%d/start", c.sessionID), c.instructor.Token, map[string]any{}), 200)
	return c
}

// logs stores activity logs of a student on the step as the log writer would.
func (c *liveClass) logs(t testing.TB, userID int64, at time.Time, types ...string) {
	t.Helper()
	for i, typ := range types {
		_, err := c.srv.DB.Pool.Exec(context.Background(), `INSERT INTO activity_logs (log_id, user_id, session_id, subtask_id, event_type, event_data, screen_info, occurred_at, received_at)
			VALUES (nextval('activity_log_ids'), $1, $2, $3, $4, '{"x":10,"y":20}', '{"package_name":"com.kakao.talk","activity_name":"MainActivity"}', $5, $5)`,
			userID, c.sessionID, c.subtaskID, typ, at.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
	}
}

type helpView struct {
	Status      string          `json:"status"`
	RequestType string          `json:"request_type"`
	SessionID   int64           `json:"session_id"`
	UserID      int64           `json:"user_id"`
	ContextData json.RawMessage `json:"context_data"`
	Subtask     struct {
		ID int64 `json:"id"`
	} `json:"subtask"`
	StuckDurationSeconds int `json:"stuck_duration_seconds"`
}

// await reads a help request once the read model has it.
func await(t testing.TB, srv *apptest.Server, helpID int64, token string) helpView {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := srv.Get(t, fmt.Sprintf("/api/help/request/%d", helpID), token)
		if r.Status == 200 {
			var v helpView
			r.Decode(t, &v)
			return v
		}
		if r.Status != 404 || time.Now().After(deadline) {
			t.Fatalf("help request %d: %d %s", helpID, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDetectorRaisesOneAutoRequestPerStudentAndStep(t *testing.T) {
	srv := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.StuckDetectorOff = true }))
	c := newLiveClass(t, srv)
	kim, lee := c.students[0], c.students[1]
	store := postgres.New(srv.DB.Pool, postgres.Config{})
	help := commands.NewHelp(commands.HelpConfig{Store: store, Pool: srv.DB.Pool})
	now := time.Now().UTC() // the step started just before
	clock := now.Add(6 * time.Second)
	d := stuck.New(stuck.Config{Pool: srv.DB.Pool, Help: help.RequestHelp, Activity: pgactivity.Source{Pool: srv.DB.Pool}, Now: func() time.Time { return clock }})

	// Kim presses BACK four times; Lee is working calmly.
	c.logs(t, kim.ID, now.Add(time.Second), "BACK", "BACK", "BACK", "BACK")
	c.logs(t, lee.ID, now.Add(2*time.Second), "SCROLL", "CLICK")
	raised, err := d.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(raised) != 1 {
		t.Fatalf("raised %v, want one request (Kim's)", raised)
	}
	v := await(t, srv, raised[0], kim.Token)
	if v.UserID != kim.ID || v.RequestType != "AUTO" || v.SessionID != c.sessionID || v.Subtask.ID != c.subtaskID ||
		!strings.Contains(string(v.ContextData), `"REPEATED_BACK"`) || !strings.Contains(string(v.ContextData), `"detected_by":"stuck-detector"`) {
		t.Fatalf("AUTO request %+v %s", v, v.ContextData)
	}

	// Kim keeps pressing BACK: still one open request for this student and step.
	c.logs(t, kim.ID, now.Add(7*time.Second), "BACK", "BACK", "BACK")
	clock = now.Add(10 * time.Second)
	if raised, err := d.Tick(context.Background()); err != nil || len(raised) != 0 {
		t.Fatalf("second look raised %v (%v)", raised, err)
	}

	// Three minutes later Lee has done nothing since: a long idle. Kim's
	// request is still open (no analyzer runs here): nothing for Kim.
	clock = now.Add(3 * time.Minute)
	raised, err = d.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(raised) != 1 {
		t.Fatalf("raised %v, want Lee's", raised)
	}
	v = await(t, srv, raised[0], lee.Token)
	if v.UserID != lee.ID || !strings.Contains(string(v.ContextData), `"LONG_IDLE"`) || v.StuckDurationSeconds < 170 {
		t.Fatalf("idle request %+v %s", v, v.ContextData)
	}
}

func TestDetectorSkipsCompletedStepsAndSessionsNotInProgress(t *testing.T) {
	srv := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.StuckDetectorOff = true }))
	c := newLiveClass(t, srv)
	kim, lee := c.students[0], c.students[1]
	help := commands.NewHelp(commands.HelpConfig{Store: postgres.New(srv.DB.Pool, postgres.Config{}), Pool: srv.DB.Pool})
	now := time.Now().UTC()
	d := stuck.New(stuck.Config{Pool: srv.DB.Pool, Help: help.RequestHelp, Activity: pgactivity.Source{Pool: srv.DB.Pool}, Now: func() time.Time { return now.Add(5 * time.Minute) }})
	// Kim completed the step: idle or not, Kim is not stuck.
	apptest.Must(t, srv.Post(t, "/api/progress/update", kim.Token, map[string]any{"subtask_id": c.subtaskID, "status": "COMPLETED"}), 200)
	c.logs(t, lee.ID, now, "BACK", "BACK", "BACK")
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/sessions/%d/pause", c.sessionID), c.instructor.Token, map[string]any{}), 200)
	if raised, err := d.Tick(context.Background()); err != nil || len(raised) != 0 {
		t.Fatalf("paused session: raised %v (%v)", raised, err)
	}
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/sessions/%d/resume", c.sessionID), c.instructor.Token, map[string]any{}), 200)
	raised, err := d.Tick(context.Background())
	if err != nil || len(raised) != 1 {
		t.Fatalf("raised %v (%v), want Lee's only", raised, err)
	}
	if v := await(t, srv, raised[0], lee.Token); v.UserID != lee.ID {
		t.Fatalf("%+v", v)
	}
	// A student's own request during the session is attributed to it.
	r := apptest.Must(t, srv.Post(t, "/api/help/request", kim.Token, map[string]any{"subtask_id": c.subtaskID}), 201)
	if v := await(t, srv, apptest.ID(t, r, "help_request_id"), kim.Token); v.SessionID != c.sessionID || v.RequestType != "MANUAL" {
		t.Fatalf("manual request in the session: %+v", v)
	}
}

// Through the running server: a synthetic stuck pattern in the logs becomes
// an AUTO request on the instructor's help socket, analyzed and answered.
func TestRunningDetectorRaisesAutoHelp(t *testing.T) {
	srv := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.StuckInterval = 100 * time.Millisecond }))
	c := newLiveClass(t, srv)
	kim := c.students[0]
	c.logs(t, kim.ID, time.Now().UTC(), "BACK", "BACK", "BACK")
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out struct {
			Notifications []struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"notifications"`
		}
		apptest.Must(t, srv.Get(t, "/api/notifications", c.instructor.Token), 200).Decode(t, &out)
		if len(out.Notifications) > 0 {
			n := out.Notifications[0]
			if len(out.Notifications) != 1 || n.Type != "HELP_REQUEST" || !strings.Contains(n.Message, "김학생님이 '친구 선택하기' 단계에서 어려움을") {
				t.Fatalf("%+v", out.Notifications)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no AUTO help request within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The analyzer answers it: the student gets help without asking.
	deadline = time.Now().Add(15 * time.Second)
	for {
		var out struct {
			Notifications []struct {
				Type string `json:"type"`
			} `json:"notifications"`
		}
		apptest.Must(t, srv.Get(t, "/api/notifications", kim.Token), 200).Decode(t, &out)
		if len(out.Notifications) == 1 && out.Notifications[0].Type == "HELP_AVAILABLE" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HELP_AVAILABLE for the student within 15s: %+v", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
