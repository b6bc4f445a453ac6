package readapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

type lqProgressMe struct {
	LectureID      int64 `json:"lecture_id"`
	CurrentSubtask *struct {
		ID        int64  `json:"id"`
		TaskID    int64  `json:"task_id"`
		Title     string `json:"title"`
		GuideText string `json:"guide_text"`
		Status    string `json:"status"`
	} `json:"current_subtask"`
	ProgressSummary struct {
		CompletedSubtasks int     `json:"completed_subtasks"`
		TotalSubtasks     int     `json:"total_subtasks"`
		CompletionRate    float64 `json:"completion_rate"`
	} `json:"progress_summary"`
}

func TestProgressQueries(t *testing.T) {
	s := apptest.Start(t)
	owner, other, student := s.Cast(t)
	classmate := s.NewUser(t, "STUDENT", "이학생")
	analyst := lqAnalyst(t, s)

	lectureID := lqCreate(t, s, owner, "/api/lectures", map[string]any{"title": "카카오톡 기초"})
	task1 := lqCreate(t, s, owner, fmt.Sprintf("/api/lectures/%d/tasks", lectureID), map[string]any{"title": "메시지 보내기", "order_index": 1})
	task2 := lqCreate(t, s, owner, fmt.Sprintf("/api/lectures/%d/tasks", lectureID), map[string]any{"title": "사진 보내기", "order_index": 2})
	var subs []int64
	for i, task := range []int64{task1, task1, task2, task2} {
		subs = append(subs, lqCreate(t, s, owner, fmt.Sprintf("/api/tasks/%d/subtasks", task), map[string]any{
			"title": fmt.Sprintf("단계 %d", i+1), "guide_text": fmt.Sprintf("안내 %d", i+1), "target_action": "CLICK",
		}))
	}
	update := func(u apptest.User, sub int64, status string) {
		t.Helper()
		lqExpect(t, s.Post(t, "/api/progress/update", u.Token, map[string]any{"subtask_id": sub, "status": status}), http.StatusOK, "")
	}
	me := func(u apptest.User, query string) lqProgressMe {
		t.Helper()
		r := s.Get(t, "/api/progress/me"+query, u.Token)
		lqExpect(t, r, http.StatusOK, "")
		var out lqProgressMe
		r.Decode(t, &out)
		return out
	}
	q := fmt.Sprintf("?lecture_id=%d", lectureID)

	t.Run("me_not_enrolled_404", func(t *testing.T) {
		lqExpect(t, s.Get(t, "/api/progress/me"+q, student.Token), http.StatusNotFound, "NOT_FOUND")
		lqExpect(t, s.Get(t, "/api/progress/me", student.Token), http.StatusNotFound, "NOT_FOUND")
	})
	lqExpect(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lectureID), student.Token, nil), http.StatusCreated, "")
	lqExpect(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lectureID), classmate.Token, nil), http.StatusCreated, "")

	t.Run("me_fresh_enrollment", func(t *testing.T) {
		p := me(student, q)
		if p.CurrentSubtask == nil || p.CurrentSubtask.ID != subs[0] || p.CurrentSubtask.Status != "NOT_STARTED" || p.CurrentSubtask.GuideText != "안내 1" || p.CurrentSubtask.TaskID != task1 {
			t.Errorf("current = %+v", p.CurrentSubtask)
		}
		if p.ProgressSummary.CompletedSubtasks != 0 || p.ProgressSummary.TotalSubtasks != 4 || p.ProgressSummary.CompletionRate != 0 {
			t.Errorf("summary = %+v", p.ProgressSummary)
		}
	})
	t.Run("me_after_progress", func(t *testing.T) {
		update(student, subs[0], "COMPLETED")
		update(student, subs[2], "IN_PROGRESS")
		p := me(student, q)
		if p.CurrentSubtask == nil || p.CurrentSubtask.ID != subs[2] || p.CurrentSubtask.Status != "IN_PROGRESS" || p.CurrentSubtask.Title != "단계 3" {
			t.Errorf("current = %+v", p.CurrentSubtask)
		}
		if p.ProgressSummary.CompletedSubtasks != 1 || p.ProgressSummary.TotalSubtasks != 4 || p.ProgressSummary.CompletionRate != 0.25 {
			t.Errorf("summary = %+v", p.ProgressSummary)
		}
		// Without lecture_id: the lecture of the latest activity.
		if p := me(student, ""); p.LectureID != lectureID || p.CurrentSubtask == nil || p.CurrentSubtask.ID != subs[2] {
			t.Errorf("me without lecture_id = %+v", p)
		}
		// The classmate's progress is their own.
		if p := me(classmate, q); p.ProgressSummary.CompletedSubtasks != 0 || p.CurrentSubtask.ID != subs[0] {
			t.Errorf("classmate = %+v", p)
		}
	})
	t.Run("me_all_done_then_removed_subtask_not_counted", func(t *testing.T) {
		for _, sub := range subs[1:] {
			update(student, sub, "COMPLETED")
		}
		p := me(student, q)
		if p.CurrentSubtask != nil || p.ProgressSummary.CompletedSubtasks != 4 || p.ProgressSummary.CompletionRate != 1 {
			t.Errorf("all done = %+v", p)
		}
		lqExpect(t, s.Delete(t, fmt.Sprintf("/api/subtasks/%d", subs[3]), owner.Token), http.StatusNoContent, "")
		p = me(student, q)
		if p.ProgressSummary.CompletedSubtasks != 3 || p.ProgressSummary.TotalSubtasks != 3 {
			t.Errorf("after a removal = %+v", p.ProgressSummary)
		}
	})
	t.Run("me_refusals", func(t *testing.T) {
		lqExpect(t, s.Get(t, "/api/progress/me", ""), http.StatusUnauthorized, "UNAUTHORIZED")
		lqExpectFields(t, s.Get(t, "/api/progress/me?lecture_id=abc", student.Token), "lecture_id")
		lqExpect(t, s.Get(t, "/api/progress/me?lecture_id=999999", student.Token), http.StatusNotFound, "NOT_FOUND")
	})

	path := fmt.Sprintf("/api/progress/users/%d/lectures/%d", student.ID, lectureID)
	t.Run("user_progress_seed_shape", func(t *testing.T) {
		for _, u := range []apptest.User{owner, student, analyst, s.Admin(t)} {
			r := s.Get(t, path, u.Token)
			lqExpect(t, r, http.StatusOK, "")
			var out struct {
				User struct {
					ID   int64  `json:"id"`
					Name string `json:"name"`
				} `json:"user"`
				Lecture struct {
					ID    int64  `json:"id"`
					Title string `json:"title"`
				} `json:"lecture"`
				Progress []struct {
					SubtaskID    int64   `json:"subtask_id"`
					TaskTitle    string  `json:"task_title"`
					SubtaskTitle string  `json:"subtask_title"`
					Status       string  `json:"status"`
					StartedAt    *string `json:"started_at"`
					CompletedAt  *string `json:"completed_at"`
				} `json:"progress"`
			}
			r.Decode(t, &out)
			if out.User.ID != student.ID || out.User.Name != "김학생" || out.Lecture.ID != lectureID || out.Lecture.Title != "카카오톡 기초" {
				t.Fatalf("as %s: %s", u.Role, r.Body)
			}
			if len(out.Progress) != 4 {
				t.Fatalf("as %s: progress has %d entries, want 4 (the removed subtask stays in history): %s", u.Role, len(out.Progress), r.Body)
			}
			for i, e := range out.Progress {
				if e.SubtaskID != subs[i] || e.Status != "COMPLETED" || e.CompletedAt == nil || e.SubtaskTitle != fmt.Sprintf("단계 %d", i+1) {
					t.Errorf("entry %d = %+v", i, e)
				}
			}
			if out.Progress[0].TaskTitle != "메시지 보내기" || out.Progress[2].TaskTitle != "사진 보내기" || out.Progress[2].StartedAt == nil || out.Progress[0].StartedAt != nil {
				t.Errorf("entries = %+v", out.Progress)
			}
		}
	})
	t.Run("user_progress_refusals", func(t *testing.T) {
		lqExpect(t, s.Get(t, path, ""), http.StatusUnauthorized, "UNAUTHORIZED")
		lqExpect(t, s.Get(t, path, classmate.Token), http.StatusForbidden, "FORBIDDEN")
		lqExpect(t, s.Get(t, path, other.Token), http.StatusForbidden, "FORBIDDEN")
		lqExpect(t, s.Get(t, fmt.Sprintf("/api/progress/users/%d/lectures/999999", student.ID), student.Token), http.StatusNotFound, "NOT_FOUND")
		lqExpect(t, s.Get(t, fmt.Sprintf("/api/progress/users/999999/lectures/%d", lectureID), owner.Token), http.StatusNotFound, "NOT_FOUND")
		lqExpect(t, s.Get(t, fmt.Sprintf("/api/progress/users/%d/lectures/%d", other.ID, lectureID), owner.Token), http.StatusNotFound, "NOT_FOUND")
		// A classmate's own progress is theirs to see: empty history.
		r := s.Get(t, fmt.Sprintf("/api/progress/users/%d/lectures/%d", classmate.ID, lectureID), classmate.Token)
		lqExpect(t, r, http.StatusOK, "")
		if p, ok := r.JSON(t)["progress"].([]any); !ok || len(p) != 0 {
			t.Errorf("classmate history = %s", r.Body)
		}
	})
}
