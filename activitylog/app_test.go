package activitylog_test

import (
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

	resp := s.Post(t, "/api/logs/activity", student.Token, map[string]any{
		"user_id": student.ID, "subtask_id": 1000, "event_type": "CLICK",
		"event_data": map[string]any{"x": 150, "y": 300}, "timestamp": "2025-10-28T10:05:30Z",
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

	eventually(t, "the logs stored by the app's writer", 20*time.Second, func() bool {
		return countRows(t, s.DB.Pool, "user_id = $1", student.ID) == 1001
	})
	if n := countRows(t, s.DB.Pool, "log_id = $1 AND subtask_id = 1000 AND event_type = 'CLICK' AND occurred_at = '2025-10-28T10:05:30Z'", logID); n != 1 {
		t.Errorf("the activity log %d is not stored as sent", logID)
	}
}
