package activitylog_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// TestThroughTheApp drives the real router (auth, global middleware, the
// wiring of wireLogs, the log writer in the workers role) over PostgreSQL.
func TestThroughTheApp(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t)
	student := s.NewUser(t, "STUDENT", "Kim")
	other := s.NewUser(t, "STUDENT", "Lee")
	_, subtask := newLecture(t, s, s.NewUser(t, "INSTRUCTOR", "Park"), student)
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)

	resp := s.Post(t, "/api/logs/activity", student.Token, map[string]any{
		"user_id": student.ID, "subtask_id": subtask, "event_type": "CLICK",
		"event_data": map[string]any{"x": 150, "y": 300}, "timestamp": at.Format(time.RFC3339),
	})
	if resp.Status != http.StatusCreated {
		t.Fatalf("activity: %d %s", resp.Status, resp.Body)
	}
	logID := int64(resp.JSON(t)["log_id"].(float64))

	var entries []string
	for i := range 1000 {
		entries = append(entries, fmt.Sprintf(`{"event_type": "SCROLL", "event_data": {"i": %d, "pad": "%s"}}`, i, strings.Repeat("x", 1500)))
	}
	resp = s.Post(t, "/api/logs/batch", student.Token, `{"logs": [`+strings.Join(entries, ",")+`]}`) // ~1.6 MB
	if resp.Status != http.StatusCreated || resp.JSON(t)["accepted"] != float64(1000) {
		t.Fatalf("batch over 1 MiB: %d %.300s", resp.Status, resp.Body)
	}
	if resp := s.Post(t, "/api/logs/activity", other.Token, map[string]any{"user_id": student.ID, "event_type": "CLICK"}); resp.Status != http.StatusForbidden {
		t.Errorf("someone else's user_id: %d %s", resp.Status, resp.Body)
	}
	if resp := s.Post(t, "/api/logs/batch", student.Token, `{"logs": []}`); resp.Status != http.StatusBadRequest {
		t.Errorf("empty batch: %d %s", resp.Status, resp.Body)
	}

	apptest.Eventually(t, "the logs stored by the app's writer", 20*time.Second, func() bool {
		return countRows(t, s.DB.Pool, "user_id = $1", student.ID) == 1001
	})
	if n := countRows(t, s.DB.Pool, "log_id = $1 AND subtask_id = $2 AND event_type = 'CLICK' AND occurred_at = $3", logID, subtask, at); n != 1 {
		t.Errorf("the activity log %d is not stored as sent", logID)
	}
}

// newLecture has instructor create a lecture with one task and one subtask
// and enroll students in it, and waits until the lectures read model holds
// the subtask and the enrollments (log ingest checks subtask ids there).
func newLecture(t *testing.T, s *apptest.Server, instructor apptest.User, students ...apptest.User) (lecture, subtask int64) {
	t.Helper()
	created := func(r *apptest.Response) int64 {
		t.Helper()
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		return int64(r.JSON(t)["id"].(float64))
	}
	lecture = created(s.Post(t, "/api/lectures", instructor.Token, map[string]any{"title": "카카오톡 기초"}))
	task := created(s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lecture), instructor.Token, map[string]any{"title": "메시지 보내기"}))
	subtask = created(s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), instructor.Token, map[string]any{"title": "친구 선택하기"}))
	for _, st := range students {
		if r := s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lecture), st.Token, nil); r.Status != http.StatusCreated {
			t.Fatalf("enroll: %d %s", r.Status, r.Body)
		}
	}
	apptest.Eventually(t, "the lecture in the read model", 20*time.Second, func() bool {
		var n int
		err := s.DB.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM rm_lecture_subtasks WHERE id = $1)
			+ (SELECT count(*) FROM rm_enrollments WHERE lecture_id = $2)`, subtask, lecture).Scan(&n)
		return err == nil && n == 1+len(students)
	})
	return lecture, subtask
}
