package projections_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/projections"
)

// lectureTablesSnapshot reads every read model of the lectures projector, each
// table as a JSON array of its rows in a stable order.
func lectureTablesSnapshot(t *testing.T, s *apptest.Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range projections.LecturesTables {
		var rows string
		err := s.DB.Pool.QueryRow(context.Background(),
			`SELECT COALESCE(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text)::text, '[]') FROM `+table+` t`).Scan(&rows)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		out[table] = rows
	}
	return out
}

func lectureCall(t *testing.T, r *apptest.Response, status int) map[string]any {
	t.Helper()
	apptest.Must(t, r, status)
	if status == http.StatusNoContent {
		return nil
	}
	return r.JSON(t)
}

// TestLectures_rebuild runs every kind of lecture, enrollment and
// progress command, then rebuilds the projection from event zero and
// requires read models equal to the live ones.
func TestLectures_rebuild(t *testing.T) {
	s := apptest.Start(t)
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	students := []apptest.User{s.NewUser(t, "STUDENT", "김학생"), s.NewUser(t, "STUDENT", "이학생")}

	id := func(m map[string]any) int64 { return int64(m["id"].(float64)) }
	var subs []int64
	for l := range 2 {
		lec := id(lectureCall(t, s.Post(t, "/api/lectures", owner.Token, map[string]any{
			"title": fmt.Sprintf("강의 %d", l), "description": "설명", "thumbnail_url": "https://example.com/x.png",
		}), http.StatusCreated))
		lectureCall(t, s.Put(t, fmt.Sprintf("/api/lectures/%d", lec), owner.Token, map[string]any{"title": fmt.Sprintf("강의 %d (개정)", l)}), http.StatusOK)
		for k := range 2 {
			task := id(lectureCall(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lec), owner.Token, map[string]any{"title": fmt.Sprintf("과제 %d", k)}), http.StatusCreated))
			lectureCall(t, s.Put(t, fmt.Sprintf("/api/tasks/%d", task), owner.Token, map[string]any{"description": "과제 설명"}), http.StatusOK)
			for j := range 3 {
				sub := id(lectureCall(t, s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), owner.Token, map[string]any{
					"title": fmt.Sprintf("단계 %d", j), "target_action": "CLICK", "guide_text": "안내",
				}), http.StatusCreated))
				subs = append(subs, sub)
			}
			lectureCall(t, s.Put(t, fmt.Sprintf("/api/subtasks/%d", subs[len(subs)-1]), owner.Token, map[string]any{"voice_guide_text": "음성 안내"}), http.StatusOK)
			lectureCall(t, s.Delete(t, fmt.Sprintf("/api/subtasks/%d", subs[len(subs)-2]), owner.Token), http.StatusNoContent)
		}
		for _, st := range students {
			lectureCall(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lec), st.Token, nil), http.StatusCreated)
		}
		if l == 1 {
			lectureCall(t, s.Delete(t, fmt.Sprintf("/api/lectures/%d", lec), owner.Token), http.StatusNoContent)
		}
	}
	for i, st := range students {
		lectureCall(t, s.Post(t, "/api/progress/update", st.Token, map[string]any{"subtask_id": subs[0], "status": "IN_PROGRESS"}), http.StatusOK)
		lectureCall(t, s.Post(t, "/api/progress/update", st.Token, map[string]any{"subtask_id": subs[0], "status": "COMPLETED"}), http.StatusOK)
		lectureCall(t, s.Post(t, "/api/progress/update", st.Token, map[string]any{"subtask_id": subs[2+i], "status": "COMPLETED"}), http.StatusOK)
		lectureCall(t, s.Post(t, "/api/progress/update", st.Token, map[string]any{"subtask_id": subs[6], "status": "IN_PROGRESS"}), http.StatusOK)
	}

	live := lectureTablesSnapshot(t, s)
	for table, rows := range live {
		if rows == "[]" {
			t.Fatalf("%s is empty before the rebuild: the test would prove nothing", table)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Damage the read models, so that only a real replay restores them.
	if _, err := s.DB.Pool.Exec(ctx, `UPDATE rm_lectures SET title = 'damaged', enrolled_count = 99; DELETE FROM rm_subtask_progress`); err != nil {
		t.Fatal(err)
	}
	runner := projections.NewRunner(projections.Config{
		Store: postgres.New(s.DB.Pool, postgres.Config{}), Pool: s.DB.Pool, Projector: &projections.Lectures{},
	})
	if err := runner.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if err := runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rebuilt := lectureTablesSnapshot(t, s)
	for _, table := range projections.LecturesTables {
		if live[table] != rebuilt[table] {
			t.Errorf("%s differs after the rebuild:\nlive:    %s\nrebuilt: %s", table, live[table], rebuilt[table])
		}
	}
}
