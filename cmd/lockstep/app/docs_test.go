package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/apidocs"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// undocumentedRoutes are engine routes the documents leave out on purpose
// (method and gin path).
var undocumentedRoutes = map[string]string{
	// The console's pages answer HEAD as GET does; openapi.yaml lists their GETs.
	"HEAD /":           "console page",
	"HEAD /join/:code": "console page",
	"HEAD /replay":     "console page",
	// /replay/… is the same page as /replay (client-side routes).
	"GET /replay/*rest":  "console page (client-side routes)",
	"HEAD /replay/*rest": "console page (client-side routes)",
	// Static files of the console and of /docs: not API.
	"GET /static/*filepath":     "console static files",
	"HEAD /static/*filepath":    "console static files",
	"GET " + apidocs.VendorPath: "the /docs page's scripts and styles",
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z_]+)`)

// openapiPath turns a gin path into the document's form (:id and *path → {id}).
func openapiPath(ginPath string) string { return ginParam.ReplaceAllString(ginPath, "{$1}") }

// TestRoutesMatchDocuments: every route of the gin engine is in openapi.yaml
// (its sockets in asyncapi.yaml) or in the commented list above, and every
// documented path, method and channel is a route of the engine.
func TestRoutesMatchDocuments(t *testing.T) {
	s := apptest.Start(t)
	doc, err := openapi3.NewLoader().LoadFromData(apidocs.OpenAPIYAML())
	if err != nil {
		t.Fatal(err)
	}
	var async struct {
		Channels map[string]struct {
			Address string `json:"address"`
		} `json:"channels"`
	}
	if err := json.Unmarshal(apidocs.AsyncAPIJSON(), &async); err != nil {
		t.Fatal(err)
	}
	channels := map[string]bool{}
	for _, ch := range async.Channels {
		channels[strings.TrimSuffix(ch.Address, "/")] = true
	}

	engine := map[string]bool{} // "METHOD /openapi/{path}"
	sockets := map[string]bool{}
	for _, r := range s.App.Routes() {
		key := r.Method + " " + r.Path
		if _, ok := undocumentedRoutes[key]; ok {
			continue
		}
		p := openapiPath(r.Path)
		if strings.HasPrefix(p, "/ws/") {
			p = strings.TrimSuffix(p, "/")
			sockets[p] = true
			if r.Method != http.MethodGet || !channels[p] {
				t.Errorf("socket route %s is not a channel of asyncapi.yaml", key)
			}
			continue
		}
		engine[r.Method+" "+p] = true
		item := doc.Paths.Value(p)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("route %s (%s %s) is not in openapi.yaml", key, r.Method, p)
		}
	}
	for _, p := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(p).Operations() {
			if !engine[method+" "+p] {
				t.Errorf("openapi.yaml documents %s %s, which the engine does not serve", method, p)
			}
		}
	}
	for addr := range channels {
		if !sockets[addr] {
			t.Errorf("asyncapi.yaml documents the socket %s, which the engine does not serve", addr)
		}
	}
	for key := range undocumentedRoutes {
		method, path, _ := strings.Cut(key, " ")
		if !slices.ContainsFunc(s.App.Routes(), func(r gin.RouteInfo) bool { return r.Method == method && r.Path == path }) {
			t.Errorf("the exclusion %q names no route of the engine: remove it", key)
		}
	}
	// The documents are served, public.
	for _, p := range apidocs.Paths {
		if resp := s.Get(t, p, ""); resp.Status != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.Status)
		}
	}
}

// TestSocketMessagesMatchAsyncAPI runs a class with every socket open and
// checks each message they push against asyncapi.yaml (apptest.Socket does),
// and that each documented message type of the class was seen.
func TestSocketMessagesMatchAsyncAPI(t *testing.T) {
	s := apptest.Start(t)
	inst := s.NewUser(t, "INSTRUCTOR", "박강사")
	stu := s.NewUser(t, "STUDENT", "김학생")

	lecture := mustCreate(t, s.Post(t, "/api/lectures", inst.Token, map[string]any{"title": "카카오톡 기초", "description": "카카오톡 사용법을 배웁니다"}))["id"]
	task := mustCreate(t, s.Post(t, fmt.Sprintf("/api/lectures/%v/tasks", lecture), inst.Token, map[string]any{"title": "메시지 보내기", "order_index": 1}))["id"]
	var subtasks []any
	for i, title := range []string{"카카오톡 앱 열기", "친구 선택하기"} {
		st := mustCreate(t, s.Post(t, fmt.Sprintf("/api/tasks/%v/subtasks", task), inst.Token, map[string]any{
			"title": title, "order_index": i + 1, "target_action": "CLICK", "guide_text": title + "를 해보세요",
		}))
		subtasks = append(subtasks, st["id"])
	}
	sess := mustCreate(t, s.Post(t, fmt.Sprintf("/api/lectures/%v/sessions", lecture), inst.Token, map[string]any{"title": "오전반"}))
	sid, code := sess["session_id"], sess["session_code"].(string)
	if r := s.Get(t, "/api/sessions/"+code, stu.Token); r.Status != http.StatusOK {
		t.Fatalf("look up: %d %s", r.Status, r.Body)
	}
	if r := s.Post(t, fmt.Sprintf("/api/sessions/%v/join", sid), stu.Token, map[string]any{}); r.Status != http.StatusCreated {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}

	dial := func(path, token string) *apptest.Socket {
		ws, _, err := s.Dial(t, path, token)
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		return ws
	}
	student := dial(fmt.Sprintf("/ws/session/%v/student/", sid), stu.Token)
	instructor := dial(fmt.Sprintf("/ws/session/%v/instructor", sid), inst.Token)
	dashboard := dial(fmt.Sprintf("/ws/dashboard/lecture/%v/?batch=20", lecture), inst.Token)
	helpDesk := dial("/ws/dashboard/help-requests/", inst.Token)
	studentHelp := dial(fmt.Sprintf("/ws/help/%d", stu.ID), stu.Token)
	expect(t, student, "session_state")
	expect(t, instructor, "participants")
	expect(t, dashboard, "dashboard_state")
	expect(t, helpDesk, "help_requests")
	expect(t, studentHelp, "help_status")

	post := func(path, token string, body any, want int) map[string]any {
		t.Helper()
		r := s.Post(t, path, token, body)
		if r.Status != want {
			t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
		}
		return r.JSON(t)
	}
	post(fmt.Sprintf("/api/sessions/%v/start", sid), inst.Token, map[string]any{"message": "시작합니다"}, http.StatusOK)
	expect(t, student, "session_started")
	post("/api/progress/update", stu.Token, map[string]any{"subtask_id": subtasks[0], "status": "COMPLETED"}, http.StatusOK)
	expect(t, instructor, "student_progress")
	expect(t, dashboard, "progress_update")
	post(fmt.Sprintf("/api/sessions/%v/next-step", sid), inst.Token, map[string]any{"message": "다음 단계"}, http.StatusOK)
	expect(t, student, "step_changed")
	help := post("/api/help/request", stu.Token, map[string]any{"subtask_id": subtasks[1], "request_type": "MANUAL", "stuck_duration_seconds": 45}, http.StatusCreated)
	expect(t, instructor, "student_help_request")
	expect(t, dashboard, "help_request")
	expect(t, helpDesk, "new_help_request")
	post(fmt.Sprintf("/api/help/request/%v/respond", help["help_request_id"]), inst.Token, map[string]any{"help_content": "위쪽의 친구 탭을 눌러보세요", "voice_guide_text": "위쪽의 친구 탭을 눌러보세요"}, http.StatusOK)
	expect(t, studentHelp, "HELP_AVAILABLE")
	expect(t, helpDesk, "help_request_updated")
	post(fmt.Sprintf("/api/sessions/%v/pause", sid), inst.Token, map[string]any{"message": "쉬는 시간"}, http.StatusOK)
	expect(t, student, "session_paused")
	post(fmt.Sprintf("/api/sessions/%v/resume", sid), inst.Token, map[string]any{}, http.StatusOK)
	expect(t, student, "session_resumed")
	post(fmt.Sprintf("/api/sessions/%v/end", sid), inst.Token, map[string]any{}, http.StatusOK)
	expect(t, student, "session_ended")

	// A resumed socket (?after=) gets the missed messages, no snapshot.
	again := dial(fmt.Sprintf("/ws/session/%v/student/?after=0", sid), stu.Token)
	expect(t, again, "session_started")
	history := dial(fmt.Sprintf("/ws/dashboard/lecture/%v/?after=0", lecture), inst.Token)
	expect(t, history, "student_activity") // STARTED_LEARNING, from before the dashboard opened

	// The replay socket re-emits the classroom's messages, then replay_finished.
	replay := dial(fmt.Sprintf("/ws/replay/session/%v/?speed=0", sid), inst.Token)
	expect(t, replay, "replay_finished")

	// Close codes of asyncapi.yaml.
	for _, c := range []struct {
		path, token string
		code        int
	}{
		{fmt.Sprintf("/ws/session/%v/student/", sid), "not-a-token", 4401},
		{fmt.Sprintf("/ws/session/%v/instructor/", sid), stu.Token, 4403},
		{"/ws/session/999999/student/", stu.Token, 4404},
		{"/ws/dashboard/lecture/999999/", inst.Token, 4404},
		{fmt.Sprintf("/ws/help/%d", inst.ID), stu.Token, 4403},
	} {
		ws, resp, err := s.Dial(t, c.path, c.token)
		if err != nil {
			t.Errorf("dial %s: %v (%v)", c.path, err, resp)
			continue
		}
		if got := ws.CloseCode(t); got != c.code {
			t.Errorf("%s: close code %d, want %d", c.path, got, c.code)
		}
	}
}

// expect reads messages (each checked against asyncapi.yaml) until one of
// type typ arrives, alone or in a batch frame.
func expect(t *testing.T, ws *apptest.Socket, typ string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var seen []string
	for time.Now().Before(deadline) {
		var m map[string]any
		if err := json.Unmarshal(ws.Next(t).Raw, &m); err != nil {
			t.Fatal(err)
		}
		msgs := []map[string]any{m}
		if m["type"] == "batch" {
			msgs = nil
			for _, x := range m["messages"].([]any) {
				msgs = append(msgs, x.(map[string]any))
			}
		}
		for _, x := range msgs {
			if x["type"] == typ {
				return x
			}
			seen = append(seen, fmt.Sprint(x["type"]))
		}
	}
	t.Fatalf("no %s message (saw %v)", typ, seen)
	return nil
}

func mustCreate(t *testing.T, r *apptest.Response) map[string]any {
	t.Helper()
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}
