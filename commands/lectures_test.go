package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// lecDetails returns the error details of a contract error answer.
func lecDetails(t *testing.T, r *apptest.Response) map[string]any {
	t.Helper()
	var e struct {
		Error struct {
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	r.Decode(t, &e)
	return e.Error.Details
}

// lecExpectFields fails unless r is a 400 naming exactly fields.
func lecExpectFields(t *testing.T, r *apptest.Response, fields ...string) {
	t.Helper()
	apptest.MustError(t, r, http.StatusBadRequest, "INVALID_REQUEST")
	d := lecDetails(t, r)
	for _, f := range fields {
		if _, ok := d[f]; !ok {
			t.Errorf("details %v do not name %q", d, f)
		}
	}
	if len(d) != len(fields) {
		t.Errorf("details %v, want exactly %v", d, fields)
	}
}

// lecEventCount counts the stored events of a stream.
func lecEventCount(t *testing.T, s *apptest.Server, stream string) int {
	t.Helper()
	var n int
	if err := s.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE stream = $1`, stream).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLectureCommands(t *testing.T) {
	s := apptest.Start(t)
	owner, other, student := s.Cast(t)
	admin := s.Admin(t)

	var lectureID int64
	t.Run("create_201_seed_shape", func(t *testing.T) {
		r := s.Post(t, "/api/lectures", owner.Token, map[string]any{
			"title": "카카오톡 기초", "description": "카카오톡 사용법을 배웁니다", "thumbnail_url": "https://example.com/t.png",
		})
		apptest.MustError(t, r, http.StatusCreated, "")
		lectureID = apptest.ID(t, r, "id")
		m := r.JSON(t)
		if m["title"] != "카카오톡 기초" || m["instructor_id"] != float64(owner.ID) || m["is_active"] != true {
			t.Errorf("created = %s", r.Body)
		}
		if _, ok := m["created_at"].(string); !ok {
			t.Errorf("no created_at: %s", r.Body)
		}
		// Read-your-writes: the detail answers at once.
		d := s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), student.Token)
		apptest.MustError(t, d, http.StatusOK, "")
		if d.JSON(t)["title"] != "카카오톡 기초" {
			t.Errorf("detail = %s", d.Body)
		}
	})
	t.Run("create_refusals", func(t *testing.T) {
		apptest.MustError(t, s.Post(t, "/api/lectures", "", map[string]any{"title": "x"}), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Post(t, "/api/lectures", "not-a-token", map[string]any{"title": "x"}), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Post(t, "/api/lectures", student.Token, map[string]any{"title": "x"}), http.StatusForbidden, "FORBIDDEN")
		lecExpectFields(t, s.Post(t, "/api/lectures", owner.Token, map[string]any{"description": "no title"}), "title")
		lecExpectFields(t, s.Post(t, "/api/lectures", owner.Token, map[string]any{
			"title": strings.Repeat("가", domain.MaxTitleLen+1), "thumbnail_url": "ftp://x",
		}), "title", "thumbnail_url")
		lecExpectFields(t, s.Post(t, "/api/lectures", owner.Token, map[string]any{"title": 12}), "title")
		lecExpectFields(t, s.Post(t, "/api/lectures", owner.Token, `{"title": `), "body")
	})
	t.Run("admin_creates", func(t *testing.T) {
		apptest.MustError(t, s.Post(t, "/api/lectures", admin.Token, map[string]any{"title": "관리자 강의"}), http.StatusCreated, "")
	})

	path := func(id int64) string { return fmt.Sprintf("/api/lectures/%d", id) }
	t.Run("put_subset_200", func(t *testing.T) {
		r := s.Put(t, path(lectureID), owner.Token, map[string]any{"description": "새 설명"})
		apptest.MustError(t, r, http.StatusOK, "")
		m := r.JSON(t)
		if m["description"] != "새 설명" || m["title"] != "카카오톡 기초" || m["id"] != float64(lectureID) {
			t.Errorf("put = %s", r.Body)
		}
		d := s.Get(t, path(lectureID), owner.Token).JSON(t)
		if d["description"] != "새 설명" {
			t.Errorf("detail after put = %v", d)
		}
		before := lecEventCount(t, s, domain.LectureStream(lectureID))
		apptest.MustError(t, s.Put(t, path(lectureID), owner.Token, map[string]any{"description": "새 설명"}), http.StatusOK, "")
		if after := lecEventCount(t, s, domain.LectureStream(lectureID)); after != before {
			t.Errorf("a put that changes nothing appended %d events", after-before)
		}
	})
	t.Run("put_refusals", func(t *testing.T) {
		apptest.MustError(t, s.Put(t, path(lectureID), "", map[string]any{"title": "x"}), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Put(t, path(lectureID), other.Token, map[string]any{"title": "x"}), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Put(t, path(lectureID), student.Token, map[string]any{"title": "x"}), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Put(t, path(999999), owner.Token, map[string]any{"title": "x"}), http.StatusNotFound, "NOT_FOUND")
		apptest.MustError(t, s.Put(t, "/api/lectures/abc", owner.Token, map[string]any{"title": "x"}), http.StatusNotFound, "NOT_FOUND")
		before := lecEventCount(t, s, domain.LectureStream(lectureID))
		lecExpectFields(t, s.Put(t, path(lectureID), owner.Token, map[string]any{"title": "  ", "thumbnail_url": "nope"}), "title", "thumbnail_url")
		lecExpectFields(t, s.Put(t, path(lectureID), owner.Token, map[string]any{"is_active": "yes"}), "is_active")
		if after := lecEventCount(t, s, domain.LectureStream(lectureID)); after != before {
			t.Errorf("refused puts appended %d events", after-before)
		}
	})
	t.Run("delete_204_then_inactive", func(t *testing.T) {
		apptest.MustError(t, s.Delete(t, path(lectureID), ""), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Delete(t, path(lectureID), other.Token), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Delete(t, path(999999), owner.Token), http.StatusNotFound, "NOT_FOUND")
		apptest.MustError(t, s.Delete(t, path(lectureID), owner.Token), http.StatusNoContent, "")
		apptest.MustError(t, s.Delete(t, path(lectureID), owner.Token), http.StatusNoContent, "")
		d := s.Get(t, path(lectureID), owner.Token)
		apptest.MustError(t, d, http.StatusOK, "")
		if d.JSON(t)["is_active"] != false {
			t.Errorf("after delete: %s", d.Body)
		}
		apptest.MustError(t, s.Get(t, path(lectureID), student.Token), http.StatusNotFound, "NOT_FOUND")
		// PUT is_active brings it back.
		r := s.Put(t, path(lectureID), owner.Token, map[string]any{"is_active": true})
		apptest.MustError(t, r, http.StatusOK, "")
		apptest.MustError(t, s.Get(t, path(lectureID), student.Token), http.StatusOK, "")
	})
	t.Run("event_metadata", func(t *testing.T) {
		r := s.Do(t, apptest.Request{Method: http.MethodPut, Path: path(lectureID), Token: owner.Token,
			Body: map[string]any{"title": "카카오톡 기초 (개정)"}, Header: map[string]string{"X-Request-ID": "req-lecture-meta-1"}})
		apptest.MustError(t, r, http.StatusOK, "")
		var meta []byte
		if err := s.DB.Pool.QueryRow(context.Background(),
			`SELECT metadata FROM events WHERE stream = $1 ORDER BY version DESC LIMIT 1`, domain.LectureStream(lectureID)).Scan(&meta); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(meta, &m)
		if m["correlation_id"] != "req-lecture-meta-1" || m["user_id"] != float64(owner.ID) || m["lecture_id"] != float64(lectureID) {
			t.Errorf("metadata = %s", meta)
		}
	})
}

// lecPlan creates a lecture with tasks and subtasks through the API and
// returns its id and subtask ids in lecture order.
func lecPlan(t *testing.T, s *apptest.Server, owner apptest.User) (lectureID int64, taskIDs, subtaskIDs []int64) {
	t.Helper()
	r := s.Post(t, "/api/lectures", owner.Token, map[string]any{"title": "카카오톡 기초"})
	apptest.MustError(t, r, http.StatusCreated, "")
	lectureID = apptest.ID(t, r, "id")
	for ti, title := range []string{"메시지 보내기", "사진 보내기"} {
		r := s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lectureID), owner.Token, map[string]any{"title": title, "order_index": ti + 1})
		apptest.MustError(t, r, http.StatusCreated, "")
		task := apptest.ID(t, r, "id")
		taskIDs = append(taskIDs, task)
		for si := range 2 {
			r := s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), owner.Token, map[string]any{
				"title": fmt.Sprintf("%s %d", title, si+1), "order_index": si + 1, "target_action": "CLICK",
				"guide_text": "눌러주세요", "voice_guide_text": "눌러주세요",
			})
			apptest.MustError(t, r, http.StatusCreated, "")
			subtaskIDs = append(subtaskIDs, apptest.ID(t, r, "id"))
		}
	}
	return lectureID, taskIDs, subtaskIDs
}

func TestTaskAndSubtaskCommands(t *testing.T) {
	s := apptest.Start(t)
	owner, other, student := s.Cast(t)
	r := s.Post(t, "/api/lectures", owner.Token, map[string]any{"title": "카카오톡 기초"})
	lectureID := apptest.ID(t, r, "id")
	tasksPath := fmt.Sprintf("/api/lectures/%d/tasks", lectureID)

	var taskID, firstSub, secondSub int64
	t.Run("add_task_201", func(t *testing.T) {
		r := s.Post(t, tasksPath, owner.Token, map[string]any{"title": "메시지 보내기", "description": "친구에게", "order_index": 2})
		apptest.MustError(t, r, http.StatusCreated, "")
		taskID = apptest.ID(t, r, "id")
		m := r.JSON(t)
		if m["lecture_id"] != float64(lectureID) || m["order_index"] != float64(2) || m["title"] != "메시지 보내기" {
			t.Errorf("task = %s", r.Body)
		}
		// order_index left out: after the last task.
		r = s.Post(t, tasksPath, owner.Token, map[string]any{"title": "사진 보내기"})
		apptest.MustError(t, r, http.StatusCreated, "")
		if r.JSON(t)["order_index"] != float64(3) {
			t.Errorf("auto order_index = %s", r.Body)
		}
		// an earlier task: the detail lists tasks by order_index.
		r = s.Post(t, tasksPath, owner.Token, map[string]any{"title": "앱 설치", "order_index": 1})
		apptest.MustError(t, r, http.StatusCreated, "")
		d := s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), student.Token)
		var det struct {
			Tasks []struct {
				Title      string `json:"title"`
				OrderIndex int    `json:"order_index"`
			} `json:"tasks"`
		}
		d.Decode(t, &det)
		var titles []string
		for _, tk := range det.Tasks {
			titles = append(titles, tk.Title)
		}
		if strings.Join(titles, ",") != "앱 설치,메시지 보내기,사진 보내기" {
			t.Errorf("tasks order = %v", titles)
		}
	})
	t.Run("add_task_refusals", func(t *testing.T) {
		apptest.MustError(t, s.Post(t, tasksPath, "", map[string]any{"title": "x"}), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Post(t, tasksPath, other.Token, map[string]any{"title": "x"}), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Post(t, tasksPath, student.Token, map[string]any{"title": "x"}), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Post(t, "/api/lectures/999999/tasks", owner.Token, map[string]any{"title": "x"}), http.StatusNotFound, "NOT_FOUND")
		before := lecEventCount(t, s, domain.LectureStream(lectureID))
		lecExpectFields(t, s.Post(t, tasksPath, owner.Token, map[string]any{"order_index": 0}), "title", "order_index")
		lecExpectFields(t, s.Post(t, tasksPath, owner.Token, map[string]any{"title": "x", "order_index": "first"}), "order_index")
		if after := lecEventCount(t, s, domain.LectureStream(lectureID)); after != before {
			t.Errorf("refused commands appended %d events", after-before)
		}
	})
	t.Run("update_task", func(t *testing.T) {
		p := fmt.Sprintf("/api/tasks/%d", taskID)
		r := s.Put(t, p, owner.Token, map[string]any{"title": "메시지 보내기 (개정)"})
		apptest.MustError(t, r, http.StatusOK, "")
		if r.JSON(t)["title"] != "메시지 보내기 (개정)" {
			t.Errorf("put task = %s", r.Body)
		}
		apptest.MustError(t, s.Put(t, p, other.Token, map[string]any{"title": "x"}), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Put(t, "/api/tasks/999999", owner.Token, map[string]any{"title": "x"}), http.StatusNotFound, "NOT_FOUND")
		lecExpectFields(t, s.Put(t, p, owner.Token, map[string]any{"order_index": -1}), "order_index")
	})

	subPath := func(task int64) string { return fmt.Sprintf("/api/tasks/%d/subtasks", task) }
	t.Run("add_subtask_201", func(t *testing.T) {
		r := s.Post(t, subPath(taskID), owner.Token, map[string]any{
			"title": "친구 선택하기", "description": "친구 목록에서", "order_index": 2, "target_action": "CLICK",
			"target_element_hint": "com.kakao.talk", "guide_text": "친구를 선택하세요", "voice_guide_text": "친구를 선택하세요",
		})
		apptest.MustError(t, r, http.StatusCreated, "")
		secondSub = apptest.ID(t, r, "id")
		m := r.JSON(t)
		if m["task_id"] != float64(taskID) || m["target_action"] != "CLICK" || m["target_element_hint"] != "com.kakao.talk" || m["guide_text"] != "친구를 선택하세요" {
			t.Errorf("subtask = %s", r.Body)
		}
		r = s.Post(t, subPath(taskID), owner.Token, map[string]any{"title": "카카오톡 앱 열기", "order_index": 1})
		apptest.MustError(t, r, http.StatusCreated, "")
		firstSub = apptest.ID(t, r, "id")
		if r.JSON(t)["target_action"] != "OTHER" {
			t.Errorf("default target_action: %s", r.Body)
		}
		var task struct {
			Subtasks []struct {
				ID int64 `json:"id"`
			} `json:"subtasks"`
		}
		s.Get(t, fmt.Sprintf("/api/tasks/%d", taskID), student.Token).Decode(t, &task)
		if len(task.Subtasks) != 2 || task.Subtasks[0].ID != firstSub || task.Subtasks[1].ID != secondSub {
			t.Errorf("subtasks order = %+v, want [%d %d]", task.Subtasks, firstSub, secondSub)
		}
	})
	t.Run("add_subtask_refusals", func(t *testing.T) {
		body := map[string]any{"title": "x"}
		apptest.MustError(t, s.Post(t, subPath(taskID), "", body), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Post(t, subPath(taskID), other.Token, body), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Post(t, subPath(999999), owner.Token, body), http.StatusNotFound, "NOT_FOUND")
		before := lecEventCount(t, s, domain.LectureStream(lectureID))
		lecExpectFields(t, s.Post(t, subPath(taskID), owner.Token, map[string]any{
			"target_action": "TAP", "guide_text": strings.Repeat("a", domain.MaxGuideTextLen+1),
		}), "title", "target_action", "guide_text")
		if after := lecEventCount(t, s, domain.LectureStream(lectureID)); after != before {
			t.Errorf("refused commands appended %d events", after-before)
		}
	})
	t.Run("update_subtask", func(t *testing.T) {
		p := fmt.Sprintf("/api/subtasks/%d", secondSub)
		r := s.Put(t, p, owner.Token, map[string]any{"title": "친구 고르기", "target_action": "LONG_CLICK"})
		apptest.MustError(t, r, http.StatusOK, "")
		m := r.JSON(t)
		if m["title"] != "친구 고르기" || m["target_action"] != "LONG_CLICK" || m["guide_text"] != "친구를 선택하세요" {
			t.Errorf("put subtask = %s", r.Body)
		}
		apptest.MustError(t, s.Put(t, p, "", map[string]any{"title": "x"}), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Put(t, p, other.Token, map[string]any{"title": "x"}), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Put(t, "/api/subtasks/999999", owner.Token, map[string]any{"title": "x"}), http.StatusNotFound, "NOT_FOUND")
		lecExpectFields(t, s.Put(t, p, owner.Token, map[string]any{"target_action": "click", "order_index": 0}), "target_action", "order_index")
	})
	t.Run("delete_subtask", func(t *testing.T) {
		p := fmt.Sprintf("/api/subtasks/%d", firstSub)
		apptest.MustError(t, s.Delete(t, p, ""), http.StatusUnauthorized, "UNAUTHORIZED")
		apptest.MustError(t, s.Delete(t, p, other.Token), http.StatusForbidden, "FORBIDDEN")
		apptest.MustError(t, s.Delete(t, "/api/subtasks/999999", owner.Token), http.StatusNotFound, "NOT_FOUND")
		apptest.MustError(t, s.Delete(t, p, owner.Token), http.StatusNoContent, "")
		apptest.MustError(t, s.Delete(t, p, owner.Token), http.StatusNotFound, "NOT_FOUND")
		apptest.MustError(t, s.Put(t, p, owner.Token, map[string]any{"title": "x"}), http.StatusNotFound, "NOT_FOUND")
		var task struct {
			Subtasks []struct {
				ID int64 `json:"id"`
			} `json:"subtasks"`
		}
		s.Get(t, fmt.Sprintf("/api/tasks/%d", taskID), student.Token).Decode(t, &task)
		if len(task.Subtasks) != 1 || task.Subtasks[0].ID != secondSub {
			t.Errorf("after delete subtasks = %+v", task.Subtasks)
		}
	})
}

func TestEnroll(t *testing.T) {
	s := apptest.Start(t)
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	student := s.NewUser(t, "STUDENT", "김학생")
	admin := s.Admin(t)
	r := s.Post(t, "/api/lectures", owner.Token, map[string]any{"title": "카카오톡 기초"})
	lectureID := apptest.ID(t, r, "id")
	p := fmt.Sprintf("/api/lectures/%d/enroll", lectureID)

	first := s.Post(t, p, student.Token, nil)
	apptest.MustError(t, first, http.StatusCreated, "")
	m := first.JSON(t)
	if m["lecture_id"] != float64(lectureID) || m["user_id"] != float64(student.ID) {
		t.Errorf("enrollment = %s", first.Body)
	}
	enrollmentID := apptest.ID(t, first, "enrollment_id")
	if _, ok := m["enrolled_at"].(string); !ok {
		t.Errorf("no enrolled_at: %s", first.Body)
	}
	again := s.Post(t, p, student.Token, nil)
	apptest.MustError(t, again, http.StatusOK, "")
	if string(again.Body) != string(first.Body) {
		t.Errorf("again = %s, want the same enrollment %s", again.Body, first.Body)
	}
	if n := lecEventCount(t, s, domain.ProgressStream(lectureID, student.ID)); n != 1 {
		t.Errorf("progress stream has %d events, want 1", n)
	}
	d := s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), owner.Token).JSON(t)
	if d["enrolled_count"] != float64(1) {
		t.Errorf("enrolled_count = %v", d["enrolled_count"])
	}

	apptest.MustError(t, s.Post(t, p, "", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	apptest.MustError(t, s.Post(t, p, owner.Token, nil), http.StatusForbidden, "FORBIDDEN")
	apptest.MustError(t, s.Post(t, p, s.NewUser(t, "STUDENT", "이학생").Token, map[string]any{"user_id": student.ID}), http.StatusForbidden, "FORBIDDEN")
	apptest.MustError(t, s.Post(t, "/api/lectures/999999/enroll", student.Token, nil), http.StatusNotFound, "NOT_FOUND")
	lecExpectFields(t, s.Post(t, p, student.Token, map[string]any{"user_id": "me"}), "user_id")

	// An admin enrolls a student on their behalf.
	other := s.NewUser(t, "STUDENT", "박학생")
	r = s.Post(t, p, admin.Token, map[string]any{"user_id": other.ID})
	apptest.MustError(t, r, http.StatusCreated, "")
	if r.JSON(t)["user_id"] != float64(other.ID) || apptest.ID(t, r, "enrollment_id") == enrollmentID {
		t.Errorf("admin enrollment = %s", r.Body)
	}

	// An inactive lecture is not there for students.
	apptest.MustError(t, s.Delete(t, fmt.Sprintf("/api/lectures/%d", lectureID), owner.Token), http.StatusNoContent, "")
	apptest.MustError(t, s.Post(t, p, s.NewUser(t, "STUDENT", "정학생").Token, nil), http.StatusNotFound, "NOT_FOUND")
}

func TestIdempotencyKey(t *testing.T) {
	s := apptest.Start(t)
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	send := func(key string, body any) *apptest.Response {
		return s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/lectures", Token: owner.Token, Body: body,
			Header: map[string]string{"Idempotency-Key": key}})
	}
	first := send("create-lecture-1", map[string]any{"title": "카카오톡 기초"})
	apptest.MustError(t, first, http.StatusCreated, "")
	second := send("create-lecture-1", map[string]any{"title": "카카오톡 기초"})
	apptest.MustError(t, second, http.StatusCreated, "")
	if string(first.Body) != string(second.Body) {
		t.Errorf("retry answered %s, first %s", second.Body, first.Body)
	}
	if second.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry not marked replayed")
	}
	var n int
	if err := s.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'LectureCreated'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d LectureCreated events, want 1", n)
	}
	apptest.MustError(t, send("create-lecture-1", map[string]any{"title": "다른 강의"}), http.StatusConflict, "CONFLICT")
	apptest.MustError(t, send("create-lecture-2", map[string]any{"title": "카카오톡 기초"}), http.StatusCreated, "")
}
