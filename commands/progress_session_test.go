package commands_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// Progress reported during a live session carries the session's id (in the
// event and its metadata), so the classroom's history holds it.
func TestProgressDuringALiveSessionCarriesTheSession(t *testing.T) {
	s := apptest.Start(t)
	teacher := s.NewUser(t, "INSTRUCTOR", "박강사")
	student := s.NewUser(t, "STUDENT", "김학생")
	lecture := s.Post(t, "/api/lectures", teacher.Token, map[string]any{"title": "카카오톡 기초"}).Must(t, http.StatusCreated).ID(t, "id")
	task := s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lecture), teacher.Token, map[string]any{"title": "메시지 보내기", "order_index": 1}).Must(t, http.StatusCreated).ID(t, "id")
	first := s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), teacher.Token, map[string]any{"title": "앱 열기", "order_index": 1, "target_action": "CLICK"}).Must(t, http.StatusCreated).ID(t, "id")
	opened := s.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", lecture), teacher.Token, map[string]any{"title": "오전반"}).Must(t, http.StatusCreated)
	session, code := opened.ID(t, "session_id"), opened.JSON(t)["session_code"]
	s.Post(t, fmt.Sprintf("/api/sessions/%d/join", session), student.Token, map[string]any{"session_code": code}).Must(t, http.StatusCreated).ID(t, "participant_id")
	s.Post(t, fmt.Sprintf("/api/sessions/%d/start", session), teacher.Token, nil).Must(t, http.StatusOK)
	s.Post(t, "/api/progress/update", student.Token, map[string]any{"subtask_id": first, "status": "COMPLETED"}).Must(t, http.StatusOK)

	evs, err := s.App.Store().ReadStream(context.Background(), domain.ProgressStream(lecture, student.ID), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range evs {
		if e.Type != "SubtaskCompleted" {
			continue
		}
		found = true
		p, err := domain.DecodeEvent(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Metadata.SessionID != session || p.(domain.SubtaskCompleted).SessionID != session {
			t.Fatalf("SubtaskCompleted during session %d carries session %d (metadata) / %d (data)", session, e.Metadata.SessionID, p.(domain.SubtaskCompleted).SessionID)
		}
	}
	if !found {
		t.Fatal("no SubtaskCompleted stored")
	}
}
