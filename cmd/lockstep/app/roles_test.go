package app_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// An instructor demoted to STUDENT by an admin, logged in again with a
// STUDENT token, manages nothing — not even the lectures and sessions they
// own — and loses the owner's reads; the only ADMIN cannot demote itself.
func TestDemotedInstructorManagesNothing(t *testing.T) {
	s := apptest.Start(t)
	admin := s.Admin(t)
	instr := s.NewUser(t, "INSTRUCTOR", "박강사")
	tok := instr.Token

	// While an INSTRUCTOR: a lecture with a plan, an inactive lecture and
	// three sessions (waiting, in progress, paused).
	lecture := apptest.ID(t, apptest.MustError(t, s.Post(t, "/api/lectures", tok, map[string]any{"title": "카카오톡 기초"}), 201, ""), "id")
	task := apptest.ID(t, apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lecture), tok, map[string]any{"title": "과제", "order_index": 1}), 201, ""), "id")
	sub := map[string]any{"title": "앱 열기", "order_index": 1, "target_action": "CLICK", "guide_text": "눌러주세요"}
	subtask := apptest.ID(t, apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), tok, sub), 201, ""), "id")
	hidden := apptest.ID(t, apptest.MustError(t, s.Post(t, "/api/lectures", tok, map[string]any{"title": "숨긴 강의"}), 201, ""), "id")
	apptest.MustError(t, s.Delete(t, fmt.Sprintf("/api/lectures/%d", hidden), tok), 204, "")
	open := func() int64 {
		return apptest.ID(t, apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", lecture), tok, nil), 201, ""), "session_id")
	}
	waiting, running, paused := open(), open(), open()
	for _, id := range []int64{running, paused} {
		apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/sessions/%d/start", id), tok, map[string]any{}), 200, "")
	}
	apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/sessions/%d/pause", paused), tok, map[string]any{}), 200, "")
	apptest.MustError(t, s.Get(t, fmt.Sprintf("/api/sessions/%d/participants", running), tok), 200, "")
	apptest.MustError(t, s.Get(t, fmt.Sprintf("/api/lectures/%d", hidden), tok), 200, "")
	learner := s.NewUser(t, "STUDENT", "김학생")
	apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lecture), learner.Token, map[string]any{}), 201, "")
	progress := fmt.Sprintf("/api/progress/users/%d/lectures/%d", learner.ID, lecture)
	apptest.MustError(t, s.Get(t, progress, tok), 200, "")

	// The admin demotes them; they log in again and get a STUDENT token.
	r := apptest.MustError(t, s.Patch(t, fmt.Sprintf("/api/admin/users/%d", instr.ID), admin.Token, map[string]any{"role": "STUDENT"}), 200, "")
	if r.JSON(t)["role"] != "STUDENT" {
		t.Fatalf("patched %s", r.Body)
	}
	student := s.Login(t, instr.Email, "password-123")
	if student.Role != "STUDENT" {
		t.Fatalf("login after demotion says role %s", student.Role)
	}
	tok = student.Token

	for _, c := range []struct {
		name, method, path string
		body               any
	}{
		{"update_lecture", http.MethodPut, fmt.Sprintf("/api/lectures/%d", lecture), map[string]any{"title": "바뀐 제목"}},
		{"delete_lecture", http.MethodDelete, fmt.Sprintf("/api/lectures/%d", lecture), nil},
		{"add_task", http.MethodPost, fmt.Sprintf("/api/lectures/%d/tasks", lecture), map[string]any{"title": "과제 2", "order_index": 2}},
		{"update_task", http.MethodPut, fmt.Sprintf("/api/tasks/%d", task), map[string]any{"title": "바뀐 과제"}},
		{"add_subtask", http.MethodPost, fmt.Sprintf("/api/tasks/%d/subtasks", task), map[string]any{"title": "단계 2", "order_index": 2}},
		{"update_subtask", http.MethodPut, fmt.Sprintf("/api/subtasks/%d", subtask), map[string]any{"title": "바뀐 단계"}},
		{"delete_subtask", http.MethodDelete, fmt.Sprintf("/api/subtasks/%d", subtask), nil},
		{"create_lecture", http.MethodPost, "/api/lectures", map[string]any{"title": "새 강의"}},
		{"open_session", http.MethodPost, fmt.Sprintf("/api/lectures/%d/sessions", lecture), nil},
		{"start_session", http.MethodPost, fmt.Sprintf("/api/sessions/%d/start", waiting), map[string]any{}},
		{"next_step", http.MethodPost, fmt.Sprintf("/api/sessions/%d/next-step", running), map[string]any{}},
		{"pause_session", http.MethodPost, fmt.Sprintf("/api/sessions/%d/pause", running), map[string]any{}},
		{"resume_session", http.MethodPost, fmt.Sprintf("/api/sessions/%d/resume", paused), map[string]any{}},
		{"end_session", http.MethodPost, fmt.Sprintf("/api/sessions/%d/end", running), map[string]any{}},
		{"participants", http.MethodGet, fmt.Sprintf("/api/sessions/%d/participants", running), nil},
		{"students_progress", http.MethodGet, progress, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			apptest.MustError(t, s.Do(t, apptest.Request{Method: c.method, Path: c.path, Token: tok, Body: c.body}), 403, "FORBIDDEN")
		})
	}
	// Their inactive lecture is hidden from them like anyone else's.
	apptest.MustError(t, s.Get(t, fmt.Sprintf("/api/lectures/%d", hidden), tok), 404, "NOT_FOUND")

	// Nothing changed.
	l := apptest.MustError(t, s.Get(t, fmt.Sprintf("/api/lectures/%d", lecture), admin.Token), 200, "").JSON(t)
	if l["title"] != "카카오톡 기초" || l["is_active"] != true {
		t.Fatalf("lecture changed: %v", l)
	}
	for id, status := range map[int64]string{waiting: "WAITING", running: "IN_PROGRESS", paused: "PAUSED"} {
		cur := apptest.MustError(t, s.Get(t, fmt.Sprintf("/api/sessions/%d/current", id), admin.Token), 200, "").JSON(t)
		if cur["status"] != status {
			t.Fatalf("session %d: %v, want status %s", id, cur, status)
		}
	}

	// The only ADMIN cannot demote itself; its role stays.
	me := apptest.MustError(t, s.Get(t, "/api/auth/me", admin.Token), 200, "").JSON(t)
	self := fmt.Sprintf("/api/admin/users/%d", int64(me["id"].(float64)))
	for _, role := range []string{"STUDENT", "INSTRUCTOR", "ANALYST"} {
		apptest.MustError(t, s.Patch(t, self, admin.Token, map[string]any{"role": role}), 409, "CONFLICT")
	}
	if got := s.Admin(t); got.Role != "ADMIN" {
		t.Fatalf("admin's role after refused self-demotions: %s", got.Role)
	}
	apptest.MustError(t, s.Get(t, "/api/admin/users", admin.Token), 200, "")
}
