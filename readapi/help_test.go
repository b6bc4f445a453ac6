package readapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// hpClass is a lecture with one CLICK subtask the rules answer, and an
// enrolled student.
type hpClass struct {
	srv        *apptest.Server
	instructor apptest.User
	student    apptest.User
	lectureID  int64
	subtaskID  int64
}

func newHPClass(t testing.TB, srv *apptest.Server, studentName string) *hpClass {
	t.Helper()
	c := &hpClass{srv: srv, instructor: srv.NewUser(t, "INSTRUCTOR", "박강사"), student: srv.NewUser(t, "STUDENT", studentName)}
	c.lectureID = apptest.ID(t, apptest.Must(t, srv.Post(t, "/api/lectures", c.instructor.Token, map[string]any{"title": "카카오톡 기초"}), 201), "id")
	task := apptest.ID(t, apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", c.lectureID), c.instructor.Token, map[string]any{"title": "메시지", "order_index": 1}), 201), "id")
	c.subtaskID = apptest.ID(t, apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), c.instructor.Token, map[string]any{
		"title": "친구 선택하기", "order_index": 1, "target_action": "CLICK", "target_element_hint": "친구 탭",
	}), 201), "id")
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", c.lectureID), c.student.Token, nil), 201)
	return c
}

func (c *hpClass) ask(t testing.TB) int64 {
	t.Helper()
	// Stuck two minutes: the analyzer sees LONG_IDLE and answers (without a
	// signal it would escalate instead).
	return apptest.ID(t, apptest.Must(t, c.srv.Post(t, "/api/help/request", c.student.Token, map[string]any{"subtask_id": c.subtaskID, "stuck_duration_seconds": 120}), 201), "help_request_id")
}

func (c *hpClass) awaitResolved(t testing.TB, id int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if strings.Contains(string(apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/help/request/%d", id), c.student.Token), 200).Body), `"status":"RESOLVED"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("help request %d not resolved within 15s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGetHelpRequestVisibility(t *testing.T) {
	srv := apptest.Start(t)
	c := newHPClass(t, srv, "김학생")
	id := c.ask(t)
	analyst := srv.NewUser(t, "STUDENT", "분석가")
	apptest.Must(t, srv.Patch(t, fmt.Sprintf("/api/admin/users/%d", analyst.ID), srv.Admin(t).Token, map[string]any{"role": "ANALYST"}), 200)
	analyst = srv.Login(t, analyst.Email, "password-123")
	otherStudent := srv.NewUser(t, "STUDENT", "이학생")
	otherInstructor := srv.NewUser(t, "INSTRUCTOR", "최강사")
	path := fmt.Sprintf("/api/help/request/%d", id)
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"the_student", c.student.Token, 200},
		{"the_lecture_owner", c.instructor.Token, 200},
		{"an_analyst", analyst.Token, 200},
		{"an_admin", srv.Admin(t).Token, 200},
		{"another_student", otherStudent.Token, 403},
		{"another_instructor", otherInstructor.Token, 403},
		{"no_token", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.Get(t, path, tc.token)
			if r.Status != tc.status {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if tc.status == 200 {
				body := r.JSON(t)
				if hpNum(body["help_request_id"]) != id || body["status"] == nil || hpNum(body["user_id"]) != c.student.ID {
					t.Fatalf("%s", r.Body)
				}
			}
		})
	}
	if r := srv.Get(t, "/api/help/request/99999999", c.student.Token); r.Status != 404 || r.ErrorCode() != "NOT_FOUND" {
		t.Fatalf("unknown: %d %s", r.Status, r.Body)
	}
	if r := srv.Get(t, "/api/help/request/abc", c.student.Token); r.Status != 404 {
		t.Fatalf("not an id: %d %s", r.Status, r.Body)
	}
}

func hpNum(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

type hpNotifications struct {
	Notifications []struct {
		ID          int64  `json:"id"`
		Type        string `json:"type"`
		Message     string `json:"message"`
		IsRead      bool   `json:"is_read"`
		CreatedAt   string `json:"created_at"`
		RelatedUser *struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"related_user"`
	} `json:"notifications"`
	UnreadCount int64              `json:"unread_count"`
	Pagination  apptest.Pagination `json:"pagination"`
}

func TestNotificationsReadUnreadAndOwnership(t *testing.T) {
	srv := apptest.Start(t)
	c := newHPClass(t, srv, "김학생")
	ids := []int64{c.ask(t), c.ask(t), c.ask(t)}
	for _, id := range ids {
		c.awaitResolved(t, id)
	}

	var all hpNotifications
	apptest.Must(t, srv.Get(t, "/api/notifications", c.instructor.Token), 200).Decode(t, &all)
	if len(all.Notifications) != 3 || all.UnreadCount != 3 || all.Pagination.TotalCount != 3 || all.Pagination.Page != 1 || all.Pagination.PageSize != 20 {
		t.Fatalf("%+v", all)
	}
	for i, n := range all.Notifications {
		if n.Type != "HELP_REQUEST" || n.Message != "김학생님이 도움을 요청했습니다" || n.IsRead || n.RelatedUser == nil || n.RelatedUser.Name != "김학생" {
			t.Fatalf("notification %d: %+v", i, n)
		}
		if i > 0 && (n.CreatedAt > all.Notifications[i-1].CreatedAt || n.ID > all.Notifications[i-1].ID) {
			t.Fatalf("not newest first: %+v", all.Notifications)
		}
	}

	var page hpNotifications
	apptest.Must(t, srv.Get(t, "/api/notifications?page=2&page_size=2", c.instructor.Token), 200).Decode(t, &page)
	if len(page.Notifications) != 1 || page.Notifications[0].ID != all.Notifications[2].ID || page.Pagination.TotalPages != 2 {
		t.Fatalf("page 2: %+v", page)
	}
	if r := srv.Get(t, "/api/notifications?page_size=101", c.instructor.Token); r.Status != 400 {
		t.Fatalf("page_size 101: %d", r.Status)
	}

	target := all.Notifications[1].ID
	readPath := fmt.Sprintf("/api/notifications/%d/read", target)
	// Someone else's notification does not exist for them.
	for _, tok := range []string{c.student.Token, srv.NewUser(t, "INSTRUCTOR", "최강사").Token} {
		if r := srv.Post(t, readPath, tok, nil); r.Status != 404 || r.ErrorCode() != "NOT_FOUND" {
			t.Fatalf("someone else's: %d %s", r.Status, r.Body)
		}
	}
	if r := srv.Post(t, "/api/notifications/987654321/read", c.instructor.Token, nil); r.Status != 404 {
		t.Fatalf("unknown: %d", r.Status)
	}
	for range 2 { // idempotent
		r := apptest.Must(t, srv.Post(t, readPath, c.instructor.Token, nil), 200).JSON(t)
		if r["is_read"] != true || hpNum(r["id"]) != target {
			t.Fatalf("%v", r)
		}
	}
	apptest.Must(t, srv.Get(t, "/api/notifications", c.instructor.Token), 200).Decode(t, &all)
	if all.UnreadCount != 2 {
		t.Fatalf("unread %d", all.UnreadCount)
	}
	for _, n := range all.Notifications {
		if n.IsRead != (n.ID == target) {
			t.Fatalf("read flags %+v", all.Notifications)
		}
	}
	var unread hpNotifications
	apptest.Must(t, srv.Get(t, "/api/notifications?is_read=false", c.instructor.Token), 200).Decode(t, &unread)
	if len(unread.Notifications) != 2 || unread.Pagination.TotalCount != 2 {
		t.Fatalf("unread filter %+v", unread)
	}
	// The student's own: one HELP_AVAILABLE per resolved request.
	var mine hpNotifications
	apptest.Must(t, srv.Get(t, "/api/notifications", c.student.Token), 200).Decode(t, &mine)
	if len(mine.Notifications) != 3 || mine.Notifications[0].Type != "HELP_AVAILABLE" || mine.UnreadCount != 3 {
		t.Fatalf("student %+v", mine)
	}
	if r := srv.Get(t, "/api/notifications", ""); r.Status != 401 {
		t.Fatalf("no token: %d", r.Status)
	}
}

// hpNext is the next message of s as a generic map.
func hpNext(t testing.TB, s *apptest.Socket) map[string]any {
	t.Helper()
	f := s.Next(t)
	var m map[string]any
	if err := json.Unmarshal(f.Raw, &m); err != nil {
		t.Fatalf("not JSON: %s", f.Raw)
	}
	return m
}

// hpRefused dials and waits for the server to close the socket (or refuse the
// upgrade) and reports the close code (or HTTP status).
func hpRefused(t testing.TB, srv *apptest.Server, path, token string) int {
	t.Helper()
	s, resp, err := srv.Dial(t, path, token)
	if err != nil {
		if resp != nil {
			return resp.StatusCode
		}
		t.Fatalf("dial: %v", err)
	}
	return s.CloseCode(t)
}

func TestHelpSocketsRefuseOthers(t *testing.T) {
	srv := apptest.Start(t)
	c := newHPClass(t, srv, "김학생")
	other := srv.NewUser(t, "STUDENT", "이학생")
	for _, tc := range []struct {
		name  string
		path  string
		token string
		want  []int
	}{
		{"another_students_help", fmt.Sprintf("/ws/help/%d/", c.student.ID), other.Token, []int{4403, 403}},
		{"instructor_on_a_students_help", fmt.Sprintf("/ws/help/%d", c.student.ID), c.instructor.Token, []int{4403, 403}},
		{"student_on_the_dashboard", "/ws/dashboard/help-requests/", c.student.Token, []int{4403, 403}},
		{"bad_token", fmt.Sprintf("/ws/help/%d", c.student.ID), "not-a-token", []int{4401, 401}},
		{"no_token", "/ws/dashboard/help-requests/", "", []int{4401, 401}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hpRefused(t, srv, tc.path, tc.token)
			if got != tc.want[0] && got != tc.want[1] {
				t.Fatalf("got %d, want %v", got, tc.want)
			}
		})
	}
}

// A student socket that reconnects with ?after= gets the HELP_AVAILABLE it
// missed, and no snapshot; one that connects fresh gets the snapshot of its
// open requests.
func TestStudentHelpSocketCatchesUpAfterReconnect(t *testing.T) {
	srv := apptest.Start(t)
	c := newHPClass(t, srv, "김학생")
	path := fmt.Sprintf("/ws/help/%d", c.student.ID)
	s, _, err := srv.Dial(t, path, c.student.Token)
	if err != nil {
		t.Fatal(err)
	}
	snap := hpNext(t, s)
	if snap["type"] != "help_status" {
		t.Fatalf("%v", snap)
	}
	after := uint64(snap["position"].(float64))
	s.Close()

	id := c.ask(t)
	c.awaitResolved(t, id)

	s2, _, err := srv.Dial(t, fmt.Sprintf("%s?after=%d", path, after), c.student.Token)
	if err != nil {
		t.Fatal(err)
	}
	m := hpNext(t, s2)
	availPos := uint64(m["position"].(float64))
	hr, _ := m["help_response"].(map[string]any)
	if m["type"] != "HELP_AVAILABLE" || hpNum(hr["help_request_id"]) != id || hr["responder"] != "ANALYZER" || uint64(m["position"].(float64)) <= after {
		t.Fatalf("%v", m)
	}

	// A fresh connection: the request is resolved, so none is open, and the
	// snapshot's position covers the HELP_AVAILABLE.
	s3, _, err := srv.Dial(t, path, c.student.Token)
	if err != nil {
		t.Fatal(err)
	}
	m = hpNext(t, s3)
	data, _ := m["data"].(map[string]any)
	if m["type"] != "help_status" || len(data["open_requests"].([]any)) != 0 || uint64(m["position"].(float64)) < availPos {
		t.Fatalf("%v", m)
	}
}
