package readapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// classroom is a lecture with one task per entry of plan and that many subtasks in it.
type classroom struct {
	srv        *apptest.Server
	instructor apptest.User
	lectureID  int64
	subtasks   []subtask // in lecture order
}

type subtask struct {
	ID             int64  `json:"id"`
	Title          string `json:"title"`
	GuideText      string `json:"guide_text"`
	VoiceGuideText string `json:"voice_guide_text"`
}

func newClassroom(t testing.TB, srv *apptest.Server, plan ...int) *classroom {
	t.Helper()
	cl := &classroom{srv: srv, instructor: srv.FastUsers(t, domain.RoleInstructor, "박강사", 1)[0]}
	var lec struct {
		ID int64 `json:"id"`
	}
	apptest.Must(t, srv.Post(t, "/api/lectures", cl.instructor.Token, map[string]any{"title": "카카오톡 기초", "description": "카카오톡 사용법을 배웁니다"}), 201).Decode(t, &lec)
	cl.lectureID = lec.ID
	for ti, n := range plan {
		var task struct {
			ID int64 `json:"id"`
		}
		apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lec.ID), cl.instructor.Token,
			map[string]any{"title": fmt.Sprintf("과제 %d", ti+1), "order_index": ti + 1}), 201).Decode(t, &task)
		for si := range n {
			st := subtask{Title: fmt.Sprintf("단계 %d-%d", ti+1, si+1), GuideText: fmt.Sprintf("안내 %d-%d", ti+1, si+1), VoiceGuideText: fmt.Sprintf("음성 %d-%d", ti+1, si+1)}
			var out struct {
				ID int64 `json:"id"`
			}
			apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task.ID), cl.instructor.Token, map[string]any{
				"title": st.Title, "order_index": si + 1, "target_action": "CLICK", "guide_text": st.GuideText, "voice_guide_text": st.VoiceGuideText,
			}), 201).Decode(t, &out)
			st.ID = out.ID
			cl.subtasks = append(cl.subtasks, st)
		}
	}
	return cl
}

type created struct {
	SessionID   int64  `json:"session_id"`
	SessionCode string `json:"session_code"`
	QRCodeURL   string `json:"qr_code_url"`
	Status      string `json:"status"`
	CreatedAt   string `json:"created_at"`
	Lecture     struct {
		ID    int64  `json:"id"`
		Title string `json:"title"`
	} `json:"lecture"`
}

func (cl *classroom) open(t testing.TB) created {
	t.Helper()
	var c created
	apptest.Must(t, cl.srv.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", cl.lectureID), cl.instructor.Token,
		map[string]any{"title": "2025-10-28 오전반", "scheduled_at": "2025-10-28T10:00:00Z"}), 201).Decode(t, &c)
	return c
}

// The test socket client is apptest's.
type (
	socket = apptest.Socket
	frame  = apptest.Frame
)

func dial(t testing.TB, srv *apptest.Server, path, token string) (*socket, *http.Response, error) {
	t.Helper()
	return srv.Dial(t, path, token)
}

func dialWith(url string, h http.Header) (*socket, *http.Response, error) {
	return apptest.DialURL(url, h)
}

func mustDial(t testing.TB, srv *apptest.Server, path, token string) *socket {
	t.Helper()
	return srv.MustDial(t, path, token)
}

// eventually polls cond until it holds or 15 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	apptest.Eventually(t, what, 15*time.Second, cond)
}

type current struct {
	SessionID      int64 `json:"session_id"`
	Status         string
	CurrentSubtask *subtask `json:"current_subtask"`
	StartedAt      *string  `json:"started_at"`
	Active         int      `json:"active_participants"`
	Message        string   `json:"instructor_message"`
}

func getCurrent(t testing.TB, srv *apptest.Server, sessionID int64, token string) current {
	t.Helper()
	return apptest.GetOK[current](t, srv, fmt.Sprintf("/api/sessions/%d/current", sessionID), token)
}

type participant struct {
	UserID   int64  `json:"user_id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Status   string `json:"status"`
	JoinedAt string `json:"joined_at"`
}

type participants struct {
	SessionID    int64         `json:"session_id"`
	Participants []participant `json:"participants"`
	TotalCount   int           `json:"total_count"`
}

func getParticipants(t testing.TB, srv *apptest.Server, sessionID int64, token string) participants {
	t.Helper()
	return apptest.GetOK[participants](t, srv, fmt.Sprintf("/api/sessions/%d/participants", sessionID), token)
}

func statusOf(p participants, userID int64) string {
	for _, x := range p.Participants {
		if x.UserID == userID {
			return x.Status
		}
	}
	return ""
}
