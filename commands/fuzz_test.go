package commands

// Fuzz targets for the edge of the lecture, task, subtask and help request
// commands: the JSON body is decoded and validated exactly as the handlers
// do (web.Bind, the request's command builder, the handler's domain
// command, the decider). Properties:
// nothing panics; a refusal is a 400 INVALID_REQUEST in the contract's shape
// naming at least one field; an accepted command decides only events that
// PostgreSQL can store (text without NUL and in valid UTF-8, jsonb-storable
// data, every Go int within the int4 columns those fields land in). The
// committed corpus in testdata/fuzz holds issue 16's inputs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/web"
)

var (
	fuzzAt         = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	fuzzInstructor = domain.Actor{UserID: 10, Role: domain.RoleInstructor}
	fuzzStudent    = domain.Actor{UserID: 20, Role: domain.RoleStudent}
	fuzzMeta       = eventstore.Metadata{CorrelationID: "fuzz"}
	// fuzzLecture is lecture 1 of fuzzInstructor with task 100 and its subtask 1000.
	fuzzLecture = domain.LectureDecider.Fold([]domain.Event{
		domain.LectureCreated{LectureID: 1, InstructorID: 10, Title: "카카오톡 기초", CreatedAt: fuzzAt},
		domain.TaskAdded{LectureID: 1, TaskID: 100, Title: "메시지 보내기", OrderIndex: 1, AddedAt: fuzzAt},
		domain.SubtaskAdded{LectureID: 1, TaskID: 100, SubtaskID: 1000, Title: "앱 열기", OrderIndex: 1, TargetAction: domain.ActionClick, AddedAt: fuzzAt},
	})
)

func init() { gin.SetMode(gin.TestMode) }

// fuzzBind decodes body into dst as a handler does. On refusal it checks
// the answer is the contract's 400 naming a field, and returns false.
func fuzzBind(t *testing.T, body []byte, dst any) bool {
	t.Helper()
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if web.Bind(c, dst) {
		return true
	}
	fuzzCheckAnswer(t, w.Code, w.Body.Bytes())
	return false
}

// fuzzCheckAnswer fails unless an answer is a 400 INVALID_REQUEST in the
// contract's shape with at least one named field.
func fuzzCheckAnswer(t *testing.T, status int, body []byte) {
	t.Helper()
	var e struct {
		Error *struct {
			Code    domain.Code       `json:"code"`
			Message string            `json:"message"`
			Details map[string]string `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Fatalf("refusal is not the contract's shape: %d %s", status, body)
	}
	if status != http.StatusBadRequest || e.Error.Code != domain.CodeInvalidRequest || e.Error.Message == "" || len(e.Error.Details) == 0 {
		t.Fatalf("refusal %d %s, want 400 INVALID_REQUEST naming a field", status, body)
	}
}

// fuzzCheckRefusal fails unless a decider's refusal answers the client's
// fault in the contract's shape: 400 naming a field, or another 4xx (a
// student asking for someone else is 403).
func fuzzCheckRefusal(t *testing.T, err error) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("refusal is not a domain error (would answer 500): %v", err)
	}
	status, body := web.Body(err)
	data, _ := json.Marshal(body)
	if status == http.StatusBadRequest {
		fuzzCheckAnswer(t, status, data)
		return
	}
	if status < 400 || status >= 500 || body.Error.Message == "" {
		t.Fatalf("refusal %d %s, want a 4xx in the contract's shape", status, data)
	}
}

// fuzzDecide runs the decider and checks its outcome.
func fuzzDecide[S, C any](t *testing.T, d domain.Decider[S, C], s S, cmd C) {
	t.Helper()
	events, err := d.Decide(s, cmd)
	if err != nil {
		fuzzCheckRefusal(t, err)
		return
	}
	for _, e := range events {
		fuzzStorable(t, reflect.ValueOf(e), e.EventType())
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("encode %s: %v", e.EventType(), err)
		}
		if why := domain.JSONProblem(data); why != "" {
			t.Fatalf("%s is not storable in jsonb: %s\n%s", e.EventType(), why, data)
		}
	}
}

// fuzzStorable walks an event: every string is storable text, every
// json.RawMessage storable jsonb, every int fits an int4 column.
func fuzzStorable(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if raw, ok := v.Interface().(json.RawMessage); ok {
		if len(raw) > 0 {
			if why := domain.JSONProblem(raw); why != "" {
				t.Fatalf("%s: %s", path, why)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		if why := domain.TextProblem(v.String()); why != "" {
			t.Fatalf("%s %s", path, why)
		}
	case reflect.Int:
		if n := v.Int(); n < math.MinInt32 || n > math.MaxInt32 {
			t.Fatalf("%s = %d does not fit an int4 column", path, n)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			fuzzStorable(t, v.Elem(), path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fuzzStorable(t, v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			fuzzStorable(t, v.Index(i), path)
		}
	}
}

func FuzzCreateLectureRequest(f *testing.F) {
	f.Add([]byte(`{"title":"카카오톡 기초","description":"","thumbnail_url":"https://cdn.example.com/t.png"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in createLectureRequest
		if fuzzBind(t, body, &in) {
			fuzzDecide(t, domain.LectureDecider, domain.Lecture{}, domain.LectureCommand(in.command(0, fuzzInstructor, fuzzMeta).toDomain(fuzzAt, 2)))
		}
		var up updateLectureRequest
		if fuzzBind(t, body, &up) {
			fuzzDecide(t, domain.LectureDecider, fuzzLecture, domain.LectureCommand(up.command(1, fuzzInstructor, fuzzMeta).toDomain(fuzzAt)))
		}
	})
}

func FuzzTaskRequest(f *testing.F) {
	f.Add([]byte(`{"title":"메시지 보내기","order_index":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in taskRequest
		if !fuzzBind(t, body, &in) {
			return
		}
		fuzzDecide(t, orderingDecider, fuzzLecture, domain.LectureCommand(in.addTask(1, fuzzInstructor, fuzzMeta).toDomain(fuzzAt, 101)))
		fuzzDecide(t, domain.LectureDecider, fuzzLecture, domain.LectureCommand(in.updateTask(100, fuzzInstructor, fuzzMeta).toDomain(fuzzAt)))
	})
}

func FuzzSubtaskRequest(f *testing.F) {
	f.Add([]byte(`{"title":"친구 선택하기","order_index":2,"target_action":"CLICK","guide_text":"눌러 보세요"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in subtaskRequest
		if !fuzzBind(t, body, &in) {
			return
		}
		fuzzDecide(t, orderingDecider, fuzzLecture, domain.LectureCommand(in.addSubtask(100, fuzzInstructor, fuzzMeta).toDomain(fuzzAt, 1001)))
		fuzzDecide(t, domain.LectureDecider, fuzzLecture, domain.LectureCommand(in.updateSubtask(1000, fuzzInstructor, fuzzMeta).toDomain(fuzzAt)))
	})
}

func FuzzHelpRequest(f *testing.F) {
	f.Add([]byte(`{"subtask_id":1000,"request_type":"MANUAL","context_data":{"current_screen":"Main","stuck_duration_seconds":30}}`))
	st, _ := fuzzLecture.Subtask(1000)
	f.Fuzz(func(t *testing.T, body []byte) {
		var in helpRequestBody
		if !fuzzBind(t, body, &in) {
			return
		}
		user := fuzzStudent.UserID
		if in.UserID != nil {
			user = *in.UserID
		}
		cmd := in.command(0, fuzzStudent, fuzzMeta)
		fuzzDecide(t, domain.HelpDecider, domain.HelpRequest{}, domain.HelpCommand(cmd.HelpRequestInput.command(fuzzStudent, fuzzAt, 5000, user, st.Ref(), 10, 0)))
	})
}
