package app_test

// FuzzAPIBodies sends arbitrary JSON bodies to every route that decodes one,
// through the whole app (gin engine, middleware, handlers, validation,
// PostgreSQL) of a test server, as the caller the route is meant for. One
// target covers the route families auth, lectures, sessions, participants,
// progress, help, logs and admin. Properties: nothing panics (a panic would
// be the recovery middleware's 500); no body earns a 5xx; every 4xx answer
// is in the contract's shape {"error": {"code", "message", "details"}}, and
// a 400 is INVALID_REQUEST. The seeds are the bodies the existing tests send,
// plus the committed corpus in testdata/fuzz/FuzzAPIBodies.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

type fuzzRoute struct {
	family, method, path string
	token                string
	seed                 string
}

func FuzzAPIBodies(f *testing.F) {
	s := apptest.Start(f)
	admin := s.Admin(f)
	teacher := s.NewUser(f, "INSTRUCTOR", "김강사")
	student := s.NewUser(f, "STUDENT", "박학생")
	target := s.NewUser(f, "STUDENT", "이학생")

	id := func(r *apptest.Response, key string) int64 {
		f.Helper()
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			f.Fatalf("%d %s: %v", r.Status, r.Body, err)
		}
		v, ok := m[key].(float64)
		if !ok || r.Status >= 300 {
			f.Fatalf("no %s in %d %s", key, r.Status, r.Body)
		}
		return int64(v)
	}
	lecture := id(s.Post(f, "/api/lectures", teacher.Token, map[string]any{"title": "카카오톡 기초"}), "id")
	task := id(s.Post(f, fmt.Sprintf("/api/lectures/%d/tasks", lecture), teacher.Token, map[string]any{"title": "과제", "order_index": 1}), "id")
	subtask := id(s.Post(f, fmt.Sprintf("/api/tasks/%d/subtasks", task), teacher.Token,
		map[string]any{"title": "앱 열기", "order_index": 1, "target_action": "CLICK", "guide_text": "눌러주세요"}), "id")
	session := id(s.Post(f, fmt.Sprintf("/api/lectures/%d/sessions", lecture), teacher.Token, nil), "session_id")
	s.Post(f, fmt.Sprintf("/api/lectures/%d/enroll", lecture), student.Token, nil)
	s.Post(f, fmt.Sprintf("/api/sessions/%d/start", session), teacher.Token, map[string]any{})
	s.Post(f, fmt.Sprintf("/api/sessions/%d/join", session), student.Token, nil)
	help := int64(1)
	if r := s.Post(f, "/api/help/request", student.Token, map[string]any{"subtask_id": subtask, "stuck_duration_seconds": 120}); r.Status == http.StatusCreated {
		help = id(r, "help_request_id")
	}
	sp := func(format string) string { return fmt.Sprintf(format, session) }

	routes := []fuzzRoute{
		{"auth", "POST", "/api/auth/register", "", `{"email":"fuzz@lockstep.test","password":"password-123","name":"김철수","role":"STUDENT","age":67,"phone":"01012345678","digital_level":"BEGINNER"}`},
		{"auth", "POST", "/api/auth/login", "", `{"email":"fuzz@lockstep.test","password":"password-123"}`},
		{"auth", "POST", "/api/auth/refresh", "", `{"refresh_token":"` + target.RefreshToken + `"}`},
		{"lectures", "POST", "/api/lectures", teacher.Token, `{"title":"카카오톡 기초","description":"메시지 보내기"}`},
		{"lectures", "PUT", fmt.Sprintf("/api/lectures/%d", lecture), teacher.Token, `{"title":"카카오톡 기초","is_active":true}`},
		{"lectures", "POST", fmt.Sprintf("/api/lectures/%d/tasks", lecture), teacher.Token, `{"title":"과제 2","order_index":2}`},
		{"lectures", "PUT", fmt.Sprintf("/api/tasks/%d", task), teacher.Token, `{"title":"바뀐 과제"}`},
		{"lectures", "POST", fmt.Sprintf("/api/tasks/%d/subtasks", task), teacher.Token, `{"title":"단계 2","order_index":2,"target_action":"CLICK"}`},
		{"lectures", "PUT", fmt.Sprintf("/api/subtasks/%d", subtask), teacher.Token, `{"title":"바뀐 단계"}`},
		{"lectures", "POST", fmt.Sprintf("/api/lectures/%d/enroll", lecture), student.Token, `{}`},
		{"sessions", "POST", fmt.Sprintf("/api/lectures/%d/sessions", lecture), teacher.Token, `{}`},
		{"sessions", "POST", sp("/api/sessions/%d/next-step"), teacher.Token, `{}`},
		{"sessions", "POST", sp("/api/sessions/%d/pause"), teacher.Token, `{}`},
		{"sessions", "POST", sp("/api/sessions/%d/resume"), teacher.Token, `{}`},
		{"participants", "POST", sp("/api/sessions/%d/join"), student.Token, fmt.Sprintf(`{"user_id":%d}`, student.ID)},
		{"progress", "POST", "/api/progress/update", student.Token, fmt.Sprintf(`{"subtask_id":%d,"status":"IN_PROGRESS"}`, subtask)},
		{"help", "POST", "/api/help/request", student.Token, fmt.Sprintf(`{"subtask_id":%d,"stuck_duration_seconds":120}`, subtask)},
		{"help", "POST", fmt.Sprintf("/api/help/request/%d/respond", help), teacher.Token, `{"help_content":"화면 아무 곳이나 천천히 눌러 보세요.","voice_guide_text":"천천히 눌러 보세요"}`},
		{"help", "POST", "/api/help/feedback", student.Token, `{"help_response_id":1,"rating":5,"feedback_text":"매우 도움이 되었습니다"}`},
		{"logs", "POST", "/api/logs/activity", student.Token, fmt.Sprintf(`{"user_id":%d,"subtask_id":%d,"event_type":"CLICK","event_data":{"x":150,"y":300},"timestamp":"2026-12-04T09:00:00Z"}`, student.ID, subtask)},
		{"logs", "POST", "/api/logs/batch", student.Token, fmt.Sprintf(`{"logs":[{"user_id":%d,"subtask_id":%d,"event_type":"SCROLL","event_data":{},"timestamp":"2026-12-04T09:00:00Z"}]}`, student.ID, subtask)},
		{"admin", "PATCH", fmt.Sprintf("/api/admin/users/%d", target.ID), admin.Token, `{"role":"STUDENT"}`},
	}
	for i, r := range routes {
		for _, body := range []string{r.seed, `{}`, `null`, `[]`, `{"title":"\u0000"}`, `{"id":-1,"order_index":99999999999}`, `{`} {
			f.Add(uint8(i), []byte(body))
		}
	}

	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		r := routes[int(which)%len(routes)]
		resp := s.Do(t, apptest.Request{Method: r.method, Path: r.path, Token: r.token, Body: body, Unchecked: true})
		where := fmt.Sprintf("%s %s %s (%s) with %q", r.family, r.method, r.path, http.StatusText(resp.Status), body)
		if resp.Status >= 500 {
			t.Fatalf("%s: %d %s", where, resp.Status, resp.Body)
		}
		if resp.Status < 400 {
			return
		}
		var e struct {
			Error *struct {
				Code    string          `json:"code"`
				Message string          `json:"message"`
				Details json.RawMessage `json:"details"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Body, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s: %d %s is not the contract's error shape", where, resp.Status, resp.Body)
		}
		if resp.Status == http.StatusBadRequest && e.Error.Code != "INVALID_REQUEST" {
			t.Fatalf("%s: 400 with code %s", where, e.Error.Code)
		}
	})
}
