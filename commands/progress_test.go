package commands_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

func TestProgressUpdate(t *testing.T) {
	s := apptest.Start(t)
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	student := s.NewUser(t, "STUDENT", "김학생")
	outsider := s.NewUser(t, "STUDENT", "이학생")
	lectureID, _, subs := lecPlan(t, s, owner)
	apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lectureID), student.Token, nil), http.StatusCreated, "")
	stream := domain.ProgressStream(lectureID, student.ID)
	update := func(u apptest.User, subtask int64, status string) *apptest.Response {
		return s.Post(t, "/api/progress/update", u.Token, map[string]any{"subtask_id": subtask, "status": status})
	}

	t.Run("refusals", func(t *testing.T) {
		apptest.MustError(t, s.Post(t, "/api/progress/update", "", map[string]any{"subtask_id": subs[0], "status": "COMPLETED"}), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, update(outsider, subs[0], "COMPLETED"), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, update(owner, subs[0], "COMPLETED"), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, update(student, 999999, "COMPLETED"), http.StatusNotFound, "NOT_FOUND")
		lecExpectFields(t, update(student, subs[0], "NOT_STARTED"), "status")
		lecExpectFields(t, s.Post(t, "/api/progress/update", student.Token, map[string]any{}), "subtask_id", "status")
		lecExpectFields(t, s.Post(t, "/api/progress/update", student.Token, map[string]any{"subtask_id": "one", "status": "COMPLETED"}), "subtask_id")
		if n := lecEventCount(t, s, stream); n != 1 {
			t.Errorf("refused updates left %d events, want only the enrollment", n)
		}
	})
	t.Run("start_then_complete", func(t *testing.T) {
		r := update(student, subs[0], "IN_PROGRESS")
		apptest.MustError(t, r, http.StatusOK, "")
		m := r.JSON(t)
		if m["status"] != "IN_PROGRESS" || m["subtask_id"] != float64(subs[0]) || m["started_at"] == nil || m["completed_at"] != nil {
			t.Errorf("start = %s", r.Body)
		}
		r = update(student, subs[0], "COMPLETED")
		apptest.MustError(t, r, http.StatusOK, "")
		var out struct {
			SubtaskID   int64  `json:"subtask_id"`
			Status      string `json:"status"`
			CompletedAt string `json:"completed_at"`
			NextSubtask *struct {
				ID    int64  `json:"id"`
				Title string `json:"title"`
			} `json:"next_subtask"`
		}
		r.Decode(t, &out)
		if out.Status != "COMPLETED" || out.CompletedAt == "" || out.NextSubtask == nil || out.NextSubtask.ID != subs[1] || out.NextSubtask.Title != "메시지 보내기 2" {
			t.Errorf("complete = %s", r.Body)
		}
		// Completing again is a no-op with the same answer.
		again := update(student, subs[0], "COMPLETED")
		apptest.MustError(t, again, http.StatusOK, "")
		if string(again.Body) != string(r.Body) {
			t.Errorf("again = %s, first %s", again.Body, r.Body)
		}
		if n := lecEventCount(t, s, stream); n != 3 {
			t.Errorf("progress stream has %d events, want 3 (enrolled, started, completed)", n)
		}
	})
	t.Run("next_crosses_tasks_and_ends_null", func(t *testing.T) {
		r := update(student, subs[1], "COMPLETED")
		apptest.MustError(t, r, http.StatusOK, "")
		if next, _ := r.JSON(t)["next_subtask"].(map[string]any); next == nil || next["id"] != float64(subs[2]) {
			t.Errorf("next after the last subtask of task 1 = %s", r.Body)
		}
		r = update(student, subs[3], "COMPLETED")
		apptest.MustError(t, r, http.StatusOK, "")
		m := r.JSON(t)
		if v, ok := m["next_subtask"]; !ok || v != nil {
			t.Errorf("next after the last subtask = %s, want null", r.Body)
		}
	})
	// The write side keeps the folded plan between commands: a plan edited
	// after it was read is what the next command sees.
	t.Run("renamed_next_subtask_is_shown", func(t *testing.T) {
		apptest.MustError(t, s.Put(t, fmt.Sprintf("/api/subtasks/%d", subs[2]), owner.Token, map[string]any{"title": "새 이름"}), http.StatusOK, "")
		r := update(student, subs[1], "COMPLETED")
		apptest.MustError(t, r, http.StatusOK, "")
		if next, _ := r.JSON(t)["next_subtask"].(map[string]any); next == nil || next["title"] != "새 이름" {
			t.Errorf("next after a renamed subtask = %s", r.Body)
		}
	})
	t.Run("removed_subtask_is_not_found", func(t *testing.T) {
		apptest.MustError(t, s.Delete(t, fmt.Sprintf("/api/subtasks/%d", subs[2]), owner.Token), http.StatusNoContent, "")
		apptest.MustError(t, update(student, subs[2], "COMPLETED"), http.StatusNotFound, "NOT_FOUND")
	})
}
