package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore/postgres"
)

// helpClass is a lecture with two subtasks and an enrolled student: "click"
// (a CLICK on a named element: the rules answer it) and "vague" (OTHER,
// title only: the rules escalate it).
type helpClass struct {
	srv        *apptest.Server
	instructor apptest.User
	student    apptest.User
	lectureID  int64
	clickID    int64
	vagueID    int64
}

func newHelpClass(t testing.TB, srv *apptest.Server) *helpClass {
	t.Helper()
	c := &helpClass{srv: srv, instructor: srv.NewUser(t, "INSTRUCTOR", "박강사"), student: srv.NewUser(t, "STUDENT", "김학생")}
	c.lectureID = apptest.ID(t, apptest.Must(t, srv.Post(t, "/api/lectures", c.instructor.Token, map[string]any{"title": "카카오톡 기초"}), 201), "id")
	task := apptest.ID(t, apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", c.lectureID), c.instructor.Token, map[string]any{"title": "친구에게 메시지 보내기", "order_index": 1}), 201), "id")
	c.clickID = apptest.ID(t, apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), c.instructor.Token, map[string]any{
		"title": "친구 선택하기", "order_index": 1, "target_action": "CLICK", "target_element_hint": "친구 탭",
		"guide_text": "화면 위쪽의 친구 탭을 눌러 보세요.",
	}), 201), "id")
	c.vagueID = apptest.ID(t, apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), c.instructor.Token, map[string]any{
		"title": "자유롭게 둘러보기", "order_index": 2, "target_action": "OTHER",
	}), 201), "id")
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", c.lectureID), c.student.Token, nil), 201)
	return c
}

// ask asks for help on subtaskID with nothing that signals what went wrong
// (the lecture's app open, 30 s without progress): the analyzer escalates.
func (c *helpClass) ask(t testing.TB, subtaskID int64) int64 {
	t.Helper()
	return c.askStuck(t, subtaskID, 30)
}

// askStuck asks for help after stuckSeconds without progress: from 60 s on
// the analyzer sees LONG_IDLE and answers a step it can explain.
func (c *helpClass) askStuck(t testing.TB, subtaskID int64, stuckSeconds int) int64 {
	t.Helper()
	r := apptest.Must(t, c.srv.Post(t, "/api/help/request", c.student.Token, map[string]any{
		"user_id": c.student.ID, "subtask_id": subtaskID, "request_type": "MANUAL",
		"context_data": map[string]any{"current_screen": "com.kakao.talk.MainActivity", "recent_actions": []string{"CLICK", "SCROLL"}, "stuck_duration_seconds": stuckSeconds},
	}), 201)
	body := r.JSON(t)
	if body["status"] != "ANALYZING" || body["message"] != commands.AnalyzingMessage {
		t.Fatalf("answer %s", r.Body)
	}
	return apptest.ID(t, r, "help_request_id")
}

// helpView is GET /api/help/request/{id}.
type helpView struct {
	HelpRequestID int64  `json:"help_request_id"`
	Status        string `json:"status"`
	UserID        int64  `json:"user_id"`
	HelpResponse  *struct {
		ID             int64  `json:"id"`
		HelpType       string `json:"help_type"`
		HelpContent    string `json:"help_content"`
		VoiceGuideText string `json:"voice_guide_text"`
		Responder      string `json:"responder"`
		Feedback       *struct {
			Rating       int    `json:"rating"`
			FeedbackText string `json:"feedback_text"`
		} `json:"feedback"`
	} `json:"help_response"`
	Analysis *struct {
		ProblemDiagnosis string  `json:"problem_diagnosis"`
		ConfidenceScore  float64 `json:"confidence_score"`
	} `json:"analysis"`
	EscalationReason *string `json:"escalation_reason"`
}

// awaitStatus polls GET /api/help/request/{id} until status (15 s at most).
func (c *helpClass) awaitStatus(t testing.TB, id int64, status string) helpView {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var v helpView
		apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/help/request/%d", id), c.student.Token), 200).Decode(t, &v)
		if v.Status == status {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("help request %d is %s, want %s", id, v.Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sockets opens the student's help socket on studentPath and the
// instructor's help-request dashboard on instructorPath, and reads their
// first messages.
func (c *helpClass) sockets(t testing.TB, studentPath, instructorPath string) (student, instructor *apptest.Socket) {
	t.Helper()
	student = c.srv.MustDial(t, studentPath, c.student.Token)
	student.Expect(t, "help_status")
	instructor = c.srv.MustDial(t, instructorPath, c.instructor.Token)
	instructor.Expect(t, "help_requests")
	return student, instructor
}

// askEscalated asks for help on subtaskID (c.ask) and waits for the request
// to be ESCALATED: on the instructor's socket (new_help_request, then the
// update) and in its view, which it returns.
func (c *helpClass) askEscalated(t testing.TB, instructorWS *apptest.Socket, subtaskID int64) (int64, helpView) {
	t.Helper()
	id := c.ask(t, subtaskID)
	instructorWS.Expect(t, "new_help_request")
	if f := instructorWS.Expect(t, "help_request_updated"); !strings.Contains(string(f.Data), `"status":"ESCALATED"`) {
		t.Fatalf("instructor update %s", f.Raw)
	}
	return id, c.awaitStatus(t, id, "ESCALATED")
}

// helpResponse is the help_response a HELP_AVAILABLE message carries
// beside its data.
func helpResponse(t testing.TB, f apptest.Frame) string {
	t.Helper()
	var m struct {
		HelpResponse json.RawMessage `json:"help_response"`
	}
	if err := json.Unmarshal(f.Raw, &m); err != nil {
		t.Fatalf("decode %s: %v", f.Raw, err)
	}
	return string(m.HelpResponse)
}

type notification struct {
	ID          int64  `json:"id"`
	Type        string `json:"type"`
	Message     string `json:"message"`
	RelatedUser *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"related_user"`
	IsRead bool `json:"is_read"`
}

func notifications(t testing.TB, srv *apptest.Server, token string) []notification {
	t.Helper()
	var out struct {
		Notifications []notification `json:"notifications"`
	}
	apptest.Must(t, srv.Get(t, "/api/notifications", token), 200).Decode(t, &out)
	return out.Notifications
}

func TestHelpRequestRefusals(t *testing.T) {
	srv := apptest.Start(t)
	c := newHelpClass(t, srv)
	other := srv.NewUser(t, "STUDENT", "이학생")
	valid := map[string]any{"subtask_id": c.clickID}
	cases := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
		field  string
	}{
		{"no_token", "", valid, 401, "UNAUTHORIZED", ""},
		{"missing_subtask", c.student.Token, map[string]any{}, 400, "INVALID_REQUEST", "subtask_id"},
		{"unknown_request_type", c.student.Token, map[string]any{"subtask_id": c.clickID, "request_type": "URGENT"}, 400, "INVALID_REQUEST", "request_type"},
		{"context_not_an_object", c.student.Token, map[string]any{"subtask_id": c.clickID, "context_data": []int{1}}, 400, "INVALID_REQUEST", "context_data"},
		{"negative_stuck_duration", c.student.Token, map[string]any{"subtask_id": c.clickID, "stuck_duration_seconds": -1}, 400, "INVALID_REQUEST", "stuck_duration_seconds"},
		{"malformed_json", c.student.Token, "{", 400, "INVALID_REQUEST", ""},
		{"unknown_subtask", c.student.Token, map[string]any{"subtask_id": 987654}, 404, "NOT_FOUND", ""},
		{"someone_elses_user_id", other.Token, map[string]any{"subtask_id": c.clickID, "user_id": c.student.ID}, 403, "FORBIDDEN", ""},
		{"not_enrolled", other.Token, valid, 403, "FORBIDDEN", ""},
		{"instructor", c.instructor.Token, valid, 403, "FORBIDDEN", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := srv.Post(t, "/api/help/request", tc.token, tc.body)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
			if tc.field != "" {
				details, _ := r.JSON(t)["error"].(map[string]any)["details"].(map[string]any)
				if _, ok := details[tc.field]; !ok {
					t.Fatalf("details do not name %s: %s", tc.field, r.Body)
				}
			}
		})
	}
	t.Run("admin_for_the_student", func(t *testing.T) {
		r := apptest.Must(t, srv.Post(t, "/api/help/request", srv.Admin(t).Token, map[string]any{"subtask_id": c.clickID, "user_id": c.student.ID}), 201)
		var v helpView
		apptest.Must(t, srv.Get(t, fmt.Sprintf("/api/help/request/%d", apptest.ID(t, r, "help_request_id")), c.student.Token), 200).Decode(t, &v)
		if v.UserID != c.student.ID {
			t.Fatalf("request made for user %d", v.UserID)
		}
	})
	t.Run("idempotency_key_appends_once", func(t *testing.T) {
		req := apptest.Request{Method: http.MethodPost, Path: "/api/help/request", Token: c.student.Token, Body: valid, Header: map[string]string{"Idempotency-Key": "help-once"}}
		a, b := apptest.Must(t, srv.Do(t, req), 201), apptest.Must(t, srv.Do(t, req), 201)
		if apptest.ID(t, a, "help_request_id") != apptest.ID(t, b, "help_request_id") {
			t.Fatalf("two requests: %s / %s", a.Body, b.Body)
		}
	})
}

// The full manual loop answered by the analyzer: request → analysis →
// HELP_AVAILABLE on the student's socket → feedback.
func TestHelpLoopResolvedByTheAnalyzer(t *testing.T) {
	srv := apptest.Start(t)
	c := newHelpClass(t, srv)
	studentWS, instructorWS := c.sockets(t, fmt.Sprintf("/ws/help/%d", c.student.ID), "/ws/dashboard/help-requests/")

	id := c.askStuck(t, c.clickID, 120)

	var nhr struct {
		HelpRequestID int64 `json:"help_request_id"`
		Lecture       struct {
			ID    int64
			Title string
		} `json:"lecture"`
		User struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Subtask struct {
			ID    int64  `json:"id"`
			Title string `json:"title"`
		} `json:"subtask"`
		Priority    string `json:"priority"`
		RequestType string `json:"request_type"`
	}
	instructorWS.Expect(t, "new_help_request").Decode(t, &nhr)
	if nhr.HelpRequestID != id || nhr.Lecture.ID != c.lectureID || nhr.Lecture.Title != "카카오톡 기초" || nhr.User.ID != c.student.ID ||
		nhr.User.Name != "김학생" || nhr.Subtask.ID != c.clickID || nhr.Subtask.Title != "친구 선택하기" || nhr.Priority != "HIGH" || nhr.RequestType != "MANUAL" {
		t.Fatalf("new_help_request %+v", nhr)
	}

	avail := studentWS.Expect(t, "HELP_AVAILABLE")
	var resp struct {
		ID             int64  `json:"id"`
		HelpRequestID  int64  `json:"help_request_id"`
		HelpContent    string `json:"help_content"`
		VoiceGuideText string `json:"voice_guide_text"`
		Responder      string `json:"responder"`
	}
	if err := json.Unmarshal([]byte(helpResponse(t, avail)), &resp); err != nil {
		t.Fatalf("decode help_response of %s: %v", avail.Raw, err)
	}
	if resp.HelpRequestID != id || resp.Responder != "ANALYZER" || !strings.Contains(resp.HelpContent, "'친구 탭'을") || resp.VoiceGuideText == "" || avail.Position == 0 {
		t.Fatalf("HELP_AVAILABLE %s", avail.Raw)
	}
	if f := instructorWS.Expect(t, "help_request_updated"); !strings.Contains(string(f.Data), `"status":"RESOLVED"`) {
		t.Fatalf("instructor update %s", f.Raw)
	}

	v := c.awaitStatus(t, id, "RESOLVED")
	if v.HelpResponse == nil || v.HelpResponse.ID != resp.ID || v.HelpResponse.Responder != "ANALYZER" || v.HelpResponse.HelpType != "TEXT" ||
		v.Analysis == nil || v.Analysis.ConfidenceScore < 0.6 || v.Analysis.ProblemDiagnosis == "" {
		t.Fatalf("resolved view %+v", v)
	}

	ns := notifications(t, srv, c.instructor.Token)
	if len(ns) != 1 || ns[0].Type != "HELP_REQUEST" || ns[0].Message != "김학생님이 도움을 요청했습니다" || ns[0].RelatedUser == nil || ns[0].RelatedUser.ID != c.student.ID {
		t.Fatalf("instructor notifications %+v", ns)
	}
	if ns := notifications(t, srv, c.student.Token); len(ns) != 1 || ns[0].Type != "HELP_AVAILABLE" || ns[0].RelatedUser != nil {
		t.Fatalf("student notifications %+v", ns)
	}

	other := srv.NewUser(t, "STUDENT", "이학생")
	feedback := map[string]any{"help_response_id": resp.ID, "rating": 5, "feedback_text": "매우 도움이 되었습니다"}
	for _, tc := range []struct {
		name   string
		token  string
		body   map[string]any
		status int
		code   string
	}{
		{"other_student", other.Token, feedback, 403, "FORBIDDEN"},
		{"instructor", c.instructor.Token, feedback, 403, "FORBIDDEN"},
		{"rating_too_high", c.student.Token, map[string]any{"help_response_id": resp.ID, "rating": 6}, 400, "INVALID_REQUEST"},
		{"rating_missing", c.student.Token, map[string]any{"help_response_id": resp.ID}, 400, "INVALID_REQUEST"},
		{"unknown_response", c.student.Token, map[string]any{"help_response_id": 99999, "rating": 3}, 404, "NOT_FOUND"},
	} {
		if r := srv.Post(t, "/api/help/feedback", tc.token, tc.body); r.Status != tc.status || r.ErrorCode() != tc.code {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
		}
	}
	// CONTRACT: a POST that creates answers the created resource with its id;
	// a feedback is the one rating of one response, identified by it.
	if m := apptest.Must(t, srv.Post(t, "/api/help/feedback", c.student.Token, feedback), 201).JSON(t); m["id"] != float64(resp.ID) ||
		m["help_response_id"] != float64(resp.ID) || m["rating"] != float64(5) {
		t.Fatalf("feedback answer %v, want id %d", m, resp.ID)
	}
	if r := srv.Post(t, "/api/help/feedback", c.student.Token, feedback); r.Status != 409 || r.ErrorCode() != "CONFLICT" {
		t.Fatalf("second feedback: %d %s", r.Status, r.Body)
	}
	apptest.Must(t, srv.Get(t, fmt.Sprintf("/api/help/request/%d", id), c.student.Token), 200).Decode(t, &v)
	if v.HelpResponse.Feedback == nil || v.HelpResponse.Feedback.Rating != 5 || v.HelpResponse.Feedback.FeedbackText != "매우 도움이 되었습니다" {
		t.Fatalf("feedback not shown: %+v", v.HelpResponse)
	}

	// A redelivered analysis request appends nothing (the decider ignores a
	// late analysis once the request is no longer ANALYZING).
	store := postgres.New(srv.DB.Pool, postgres.Config{})
	before, err := store.ReadStream(context.Background(), domain.HelpStream(id), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := commands.NewHelp(commands.HelpConfig{Store: store, Pool: srv.DB.Pool})
	if err := h.HandleAnalysisRequest(context.Background(), commands.EncodeAnalysisRequest(id)); err != nil {
		t.Fatal(err)
	}
	after, err := store.ReadStream(context.Background(), domain.HelpStream(id), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("redelivered analysis appended %d events", len(after)-len(before))
	}
	var types []string
	for _, e := range after {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "HelpRequested,HelpAnalyzed,HelpProvided,HelpFeedbackGiven" {
		t.Fatalf("stream %s", got)
	}

	// The request is RESOLVED by the analyzer, yet the person in the room
	// may still answer it: the answer supersedes the analyzer's and the
	// student is notified again.
	answer := map[string]any{"help_content": "제가 옆으로 가서 도와드릴게요. 잠시만 기다려 주세요.", "voice_guide_text": "제가 옆으로 가서 도와드릴게요"}
	r := apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/help/request/%d/respond", id), c.instructor.Token, answer), 200).JSON(t)
	hr, _ := r["help_response"].(map[string]any)
	if r["status"] != "RESOLVED" || hr["responder"] != "INSTRUCTOR" || hr["help_content"] != answer["help_content"] || int64(hr["id"].(float64)) == resp.ID {
		t.Fatalf("respond to a resolved request: %v", r)
	}
	again := studentWS.Expect(t, "HELP_AVAILABLE")
	if !strings.Contains(helpResponse(t, again), `"responder":"INSTRUCTOR"`) || !strings.Contains(helpResponse(t, again), "옆으로 가서") || again.Position <= avail.Position {
		t.Fatalf("second HELP_AVAILABLE %s", again.Raw)
	}
	if f := instructorWS.Expect(t, "help_request_updated"); !strings.Contains(string(f.Data), `"responder":"INSTRUCTOR"`) {
		t.Fatalf("instructor update %s", f.Raw)
	}
	apptest.Must(t, srv.Get(t, fmt.Sprintf("/api/help/request/%d", id), c.student.Token), 200).Decode(t, &v)
	if v.Status != "RESOLVED" || v.HelpResponse == nil || v.HelpResponse.Responder != "INSTRUCTOR" || v.HelpResponse.HelpContent != answer["help_content"] {
		t.Fatalf("the instructor's answer does not supersede the analyzer's: %+v", v.HelpResponse)
	}
	ns = notifications(t, srv, c.student.Token)
	if len(ns) != 2 || ns[0].Type != "HELP_AVAILABLE" || ns[1].Type != "HELP_AVAILABLE" {
		t.Fatalf("student notifications after the instructor's answer %+v", ns)
	}
	if named := ns[0].RelatedUser != nil && ns[0].RelatedUser.ID == c.instructor.ID || ns[1].RelatedUser != nil && ns[1].RelatedUser.ID == c.instructor.ID; !named {
		t.Fatalf("no notification names the instructor: %+v", ns)
	}
	// The student rates the instructor's answer too.
	apptest.Must(t, srv.Post(t, "/api/help/feedback", c.student.Token, map[string]any{"help_response_id": int64(hr["id"].(float64)), "rating": 5}), 201)
}

// A MANUAL request with no stuck signal (the lecture's app open, not idle
// long, no BACKs or taps) is not "resolved" by repeating the step: it is
// ESCALATED; the instructor answers it, the student is notified, and the
// instructor may answer once more (the newest answer is shown).
func TestHelpWithoutASignalIsEscalatedToTheInstructor(t *testing.T) {
	srv := apptest.Start(t)
	c := newHelpClass(t, srv)
	studentWS, instructorWS := c.sockets(t, fmt.Sprintf("/ws/help/%d", c.student.ID), "/ws/dashboard/help-requests/")

	id, v := c.askEscalated(t, instructorWS, c.clickID)
	if v.HelpResponse != nil || v.Analysis == nil || v.EscalationReason == nil || *v.EscalationReason == "" {
		t.Fatalf("escalated view %+v", v)
	}
	if ns := notifications(t, srv, c.instructor.Token); len(ns) != 1 || ns[0].Type != "HELP_REQUEST" {
		t.Fatalf("instructor notifications %+v", ns)
	}
	if ns := notifications(t, srv, c.student.Token); len(ns) != 0 {
		t.Fatalf("the student was told help arrived before anyone answered: %+v", ns)
	}

	path := fmt.Sprintf("/api/help/request/%d/respond", id)
	for i, content := range []string{"친구 탭은 화면 맨 위에 있어요. 사람 모양 그림을 눌러 보세요.", "제가 옆으로 가겠습니다."} {
		r := apptest.Must(t, srv.Post(t, path, c.instructor.Token, map[string]any{"help_content": content}), 200).JSON(t)
		hr, _ := r["help_response"].(map[string]any)
		if r["status"] != "RESOLVED" || hr["responder"] != "INSTRUCTOR" || hr["help_content"] != content {
			t.Fatalf("answer %d: %v", i, r)
		}
		avail := studentWS.Expect(t, "HELP_AVAILABLE")
		if !strings.Contains(helpResponse(t, avail), `"responder":"INSTRUCTOR"`) || !strings.Contains(helpResponse(t, avail), content) {
			t.Fatalf("HELP_AVAILABLE %d: %s", i, avail.Raw)
		}
		// No voice_guide_text in the answer: the phone speaks the answer
		// itself (CONTRACT "Voice guide"), never an empty text.
		if !strings.Contains(helpResponse(t, avail), `"voice_guide_text":"`+content+`"`) {
			t.Fatalf("HELP_AVAILABLE %d without a voice guide: %s", i, avail.Raw)
		}
		apptest.Must(t, srv.Get(t, fmt.Sprintf("/api/help/request/%d", id), c.student.Token), 200).Decode(t, &v)
		if v.Status != "RESOLVED" || v.HelpResponse == nil || v.HelpResponse.HelpContent != content || v.HelpResponse.Responder != "INSTRUCTOR" {
			t.Fatalf("view after answer %d: %+v", i, v)
		}
		if ns := notifications(t, srv, c.student.Token); len(ns) != i+1 {
			t.Fatalf("student notifications after answer %d: %+v", i, ns)
		}
	}
}

// The loop through the instructor: the analyzer is not confident and
// escalates, the lecture's instructor answers, HELP_AVAILABLE reaches the student.
func TestHelpLoopEscalatedThenAnsweredByTheInstructor(t *testing.T) {
	srv := apptest.Start(t)
	c := newHelpClass(t, srv)
	studentWS, instructorWS := c.sockets(t, fmt.Sprintf("/ws/help/%d/", c.student.ID), "/ws/dashboard/help-requests")

	id, v := c.askEscalated(t, instructorWS, c.vagueID)
	if v.HelpResponse != nil || v.Analysis == nil || v.Analysis.ConfidenceScore >= 0.6 || v.EscalationReason == nil {
		t.Fatalf("escalated view %+v", v)
	}

	path := fmt.Sprintf("/api/help/request/%d/respond", id)
	answer := map[string]any{"help_content": "화면 아무 곳이나 천천히 눌러 보세요.", "voice_guide_text": "화면 아무 곳이나 천천히 눌러 보세요"}
	otherInstructor := srv.NewUser(t, "INSTRUCTOR", "최강사")
	for _, tc := range []struct {
		name   string
		path   string
		token  string
		body   any
		status int
		code   string
	}{
		{"other_instructor", path, otherInstructor.Token, answer, 403, "FORBIDDEN"},
		{"student", path, c.student.Token, answer, 403, "FORBIDDEN"},
		{"no_content", path, c.instructor.Token, map[string]any{"voice_guide_text": "x"}, 400, "INVALID_REQUEST"},
		{"bad_help_type", path, c.instructor.Token, map[string]any{"help_content": "x", "help_type": "VIDEO"}, 400, "INVALID_REQUEST"},
		{"unknown_request", "/api/help/request/999999/respond", c.instructor.Token, answer, 404, "NOT_FOUND"},
		{"no_token", path, "", answer, 401, "UNAUTHORIZED"},
	} {
		if r := srv.Post(t, tc.path, tc.token, tc.body); r.Status != tc.status || r.ErrorCode() != tc.code {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
		}
	}
	r := apptest.Must(t, srv.Post(t, path, c.instructor.Token, answer), 200).JSON(t)
	hr, _ := r["help_response"].(map[string]any)
	if r["status"] != "RESOLVED" || hr["responder"] != "INSTRUCTOR" || hr["help_content"] != answer["help_content"] {
		t.Fatalf("respond answer %v", r)
	}
	avail := studentWS.Expect(t, "HELP_AVAILABLE")
	if !strings.Contains(helpResponse(t, avail), `"responder":"INSTRUCTOR"`) || !strings.Contains(helpResponse(t, avail), "천천히 눌러") {
		t.Fatalf("HELP_AVAILABLE %s", avail.Raw)
	}
	ns := notifications(t, srv, c.student.Token)
	if len(ns) != 1 || ns[0].Type != "HELP_AVAILABLE" || ns[0].RelatedUser == nil || ns[0].RelatedUser.ID != c.instructor.ID || ns[0].RelatedUser.Name != "박강사" {
		t.Fatalf("student notifications %+v", ns)
	}
	// The student rates the instructor's answer.
	apptest.Must(t, srv.Post(t, "/api/help/feedback", c.student.Token, map[string]any{"help_response_id": int64(hr["id"].(float64)), "rating": 4}), 201)
}

func TestAnalyzerWorkerDropsUnreadableMessages(t *testing.T) {
	srv := apptest.Start(t)
	h := commands.NewHelp(commands.HelpConfig{Store: postgres.New(srv.DB.Pool, postgres.Config{}), Pool: srv.DB.Pool})
	for _, payload := range []string{"not json", `{"help_request_id":0}`} {
		if err := h.HandleAnalysisRequest(context.Background(), []byte(payload)); err != nil {
			t.Fatalf("%q: %v", payload, err)
		}
	}
	// A request that does not exist is acknowledged, not retried forever.
	if err := h.Analyze(context.Background(), 424242); err != nil {
		t.Fatal(err)
	}
	if err := h.Analyze(canceled(), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled analysis: %v", err)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// With ANALYZER=llm the analyzer worker asks the configured
// chat-completions endpoint, and its answer reaches the student.
func TestHelpAnsweredByTheLLMAnalyzer(t *testing.T) {
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer test-key" {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		content := `{"diagnosis":"친구 탭 위치를 모름","confidence":0.9,"help_content":"화면 맨 위 왼쪽의 사람 모양 그림을 눌러 주세요.","voice_guide_text":"화면 맨 위 왼쪽의 사람 모양 그림을 눌러 주세요","escalate":false}`
		_ = json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": content}}}})
	}))
	defer llm.Close()
	srv := apptest.Start(t, apptest.WithConfig(func(c *app.Config) {
		c.Analyzer, c.LLMBaseURL, c.LLMModel, c.LLMAPIKey = "llm", llm.URL+"/v1", "test-model", "test-key"
	}))
	c := newHelpClass(t, srv)
	v := c.awaitStatus(t, c.askStuck(t, c.clickID, 120), "RESOLVED")
	if v.HelpResponse == nil || v.HelpResponse.HelpContent != "화면 맨 위 왼쪽의 사람 모양 그림을 눌러 주세요." || v.Analysis == nil || v.Analysis.ProblemDiagnosis != "친구 탭 위치를 모름" {
		t.Fatalf("%+v", v)
	}
}

func TestHelpConfigValidation(t *testing.T) {
	base := func() app.Config {
		return app.Config{DatabaseURL: "postgres://x", EventStore: "postgres", Bus: "memory", Env: "development",
			AccessTTL: time.Minute, RefreshTTL: time.Hour, LogLevel: "info"}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := base()
	c.Analyzer = "llm"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "LLM_BASE_URL") || !strings.Contains(err.Error(), "LLM_MODEL") {
		t.Fatalf("llm without endpoint: %v", err)
	}
	c = base()
	c.Analyzer, c.StuckInterval = "gpt", -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ANALYZER must be rule or llm") || !strings.Contains(err.Error(), "STUCK_INTERVAL") {
		t.Fatalf("bad analyzer: %v", err)
	}
}
