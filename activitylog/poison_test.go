package activitylog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// ordinaryLogStored has user send an ordinary log and waits until the
// app's writer stored it: proof that nothing before it stopped storage.
func ordinaryLogStored(t *testing.T, s *apptest.Server, user apptest.User, subtask int64) {
	t.Helper()
	resp := s.Post(t, activitylog.ActivityPath, user.Token, map[string]any{"event_type": "CLICK", "subtask_id": subtask,
		"event_data": map[string]any{"text": "확인"}, "timestamp": time.Now().UTC().Format(time.RFC3339Nano)})
	if resp.Status != http.StatusCreated {
		t.Fatalf("ordinary log: %d %s", resp.Status, resp.Body)
	}
	id := int64(resp.JSON(t)["log_id"].(float64))
	apptest.Eventually(t, "the next ordinary log stored", 20*time.Second, func() bool {
		return countRows(t, s.DB.Pool, "log_id = $1", id) == 1
	})
}

// TestPoisonRequestsAreRefusedAndStorageGoesOn sends issue 16's requests
// (each used to answer 201 and then stop every later log from being stored,
// or 503) and then an ordinary log from another student, which must be
// stored by the running writer.
func TestPoisonRequestsAreRefusedAndStorageGoesOn(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t)
	kim, lee := s.NewUser(t, "STUDENT", "Kim"), s.NewUser(t, "STUDENT", "Lee")
	_, subtask := newLecture(t, s, s.NewUser(t, "INSTRUCTOR", "Park"), kim, lee)
	_, foreign := newLecture(t, s, s.NewUser(t, "INSTRUCTOR", "Choi"))
	analyst := s.NewUser(t, "STUDENT", "Jung")
	if r := s.Patch(t, fmt.Sprintf("/api/admin/users/%d", analyst.ID), s.Admin(t).Token, map[string]any{"role": "ANALYST"}); r.Status != http.StatusOK {
		t.Fatalf("make analyst: %d %s", r.Status, r.Body)
	}
	analyst = s.Login(t, analyst.Email, "password-123")

	cases := []struct {
		name, path, token, body string
		status                  int
		field                   string
	}{
		{"lone_surrogate", activitylog.ActivityPath, kim.Token, `{"event_type":"CLICK","event_data":{"text":"\ud800"}}`, 400, "event_data"},
		{"surrogate_in_key_in_batch", activitylog.BatchPath, kim.Token, `{"logs":[{"event_type":"CLICK"},{"event_type":"CLICK","event_data":{"a\udfffb":"x"}}]}`, 400, "logs[1].event_data"},
		{"invalid_utf8_in_screen_info", activitylog.ActivityPath, kim.Token, "{\"event_type\":\"CLICK\",\"screen_info\":{\"package_name\":\"com.\xc0\xaf\"}}", 400, "screen_info"},
		{"number_jsonb_refuses", activitylog.ActivityPath, kim.Token, `{"event_type":"CLICK","event_data":{"n":1e400000}}`, 400, "event_data"},
		{"year_1", activitylog.ActivityPath, kim.Token, `{"event_type":"CLICK","timestamp":"0001-01-01T00:00:00Z"}`, 400, "timestamp"},
		{"year_9999", activitylog.BatchPath, kim.Token, `{"logs":[{"event_type":"CLICK","timestamp":"9999-12-31T23:59:59Z"}]}`, 400, "logs[0].timestamp"},
		{"unknown_subtask", activitylog.ActivityPath, kim.Token, `{"event_type":"CLICK","subtask_id":987654321}`, 400, "subtask_id"},
		{"subtask_of_another_lecture", activitylog.BatchPath, kim.Token, fmt.Sprintf(`{"logs":[{"event_type":"CLICK","subtask_id":%d},{"event_type":"CLICK","subtask_id":%d}]}`, subtask, foreign), 400, "logs[1].subtask_id"},
		{"analyst", activitylog.ActivityPath, analyst.Token, `{"event_type":"CLICK"}`, 403, ""},
		{"analyst_batch", activitylog.BatchPath, analyst.Token, `{"logs":[{"event_type":"CLICK"}]}`, 403, ""},
	}
	for _, tc := range cases {
		resp := s.Post(t, tc.path, tc.token, tc.body)
		if resp.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.Status, resp.Body, tc.status)
			continue
		}
		if tc.field != "" {
			var e struct {
				Error struct{ Details map[string]any } `json:"error"`
			}
			resp.Decode(t, &e)
			if e.Error.Details[tc.field] == nil {
				t.Errorf("%s: details %v do not name %s", tc.name, e.Error.Details, tc.field)
			}
		}
	}
	ordinaryLogStored(t, s, lee, subtask)
	if n := countRows(t, s.DB.Pool, "user_id IN ($1, $2)", kim.ID, analyst.ID); n != 0 {
		t.Errorf("%d logs of refused requests stored", n)
	}
}

// TestPoisonOnTheBusIsSetAside injects, straight onto the bus (as if stored
// before the edge checked, or by another producer), a log jsonb refuses in a
// message with good logs, and a message that is not even JSON. The writer
// stores the good logs, sets the rest aside, and goes on; the admin endpoint
// and /metrics show the dead letters.
func TestPoisonOnTheBusIsSetAside(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.Bus = bus.BackendPostgres }))
	lee := s.NewUser(t, "STUDENT", "Lee")
	_, subtask := newLecture(t, s, s.NewUser(t, "INSTRUCTOR", "Park"), lee)

	other := apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: s.DB.Pool})
	now := time.Now().UTC()
	logs := make([]activitylog.Log, 5)
	for i := range logs {
		logs[i] = activitylog.Log{LogID: int64(9_000_000 + i), UserID: 424242, EventType: "CLICK",
			EventData: json.RawMessage(`{"i": ` + fmt.Sprint(i) + `}`), OccurredAt: now, ReceivedAt: now}
	}
	logs[1].EventData = json.RawMessage(`{"text": "\ud800"}`)
	logs[3].ScreenInfo = json.RawMessage(`{"\udc00": 1}`)
	msgs, err := activitylog.NewMessages(logs)
	if err != nil {
		t.Fatal(err)
	}
	garbage := message.NewMessage("not-json", []byte("\x00\xffnot json"))
	if err := other.Publish(context.Background(), bus.TopicActivityLogs, append(msgs, garbage)...); err != nil {
		t.Fatal(err)
	}

	ordinaryLogStored(t, s, lee, subtask)
	if n := countRows(t, s.DB.Pool, "log_id IN (9000000, 9000002, 9000004)"); n != 3 {
		t.Errorf("%d of the 3 good logs next to the poisoned ones stored", n)
	}
	if n := countRows(t, s.DB.Pool, "log_id IN (9000001, 9000003)"); n != 0 {
		t.Errorf("%d poisoned logs stored", n)
	}

	admin := s.Admin(t)
	type deadLetter struct {
		LogID     *int64  `json:"log_id"`
		MessageID string  `json:"message_id"`
		Topic     string  `json:"topic"`
		Payload   *string `json:"payload"`
		Base64    []byte  `json:"payload_base64"`
		Error     string  `json:"error"`
		Attempts  int     `json:"attempts"`
	}
	var all []deadLetter
	for page := 1; page <= 2; page++ {
		resp := s.Get(t, fmt.Sprintf("%s?page=%d&page_size=2", activitylog.DeadLettersPath, page), admin.Token)
		var body struct {
			DeadLetters []deadLetter       `json:"dead_letters"`
			Pagination  apptest.Pagination `json:"pagination"`
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("dead letters: %d %s", resp.Status, resp.Body)
		}
		resp.Decode(t, &body)
		if p := body.Pagination; p.Page != page || p.TotalCount != 3 || p.TotalPages != 2 || p.PageSize != 2 || len(body.DeadLetters) != 3-page {
			t.Fatalf("dead letters page %d: %s", page, resp.Body)
		}
		all = append(all, body.DeadLetters...)
	}
	byLog := map[int64]bool{}
	for _, d := range all {
		if d.Topic != bus.TopicActivityLogs || d.Attempts != 1 || d.Error == "" {
			t.Errorf("dead letter: %+v", d)
		}
		if d.LogID == nil {
			if d.MessageID != "not-json" || string(d.Base64) != "\x00\xffnot json" || d.Payload != nil {
				t.Errorf("message dead letter: %+v", d)
			}
			continue
		}
		if d.Payload == nil || !strings.Contains(*d.Payload, fmt.Sprint(*d.LogID)) || !strings.Contains(d.Error, "SQLSTATE 22") {
			t.Errorf("log dead letter: %+v", d)
		}
		byLog[*d.LogID] = true
	}
	if !byLog[9000001] || !byLog[9000003] {
		t.Errorf("dead letters for logs %v, want 9000001 and 9000003", byLog)
	}

	if r := s.Get(t, activitylog.DeadLettersPath, lee.Token); r.Status != http.StatusForbidden {
		t.Errorf("a student reads dead letters: %d", r.Status)
	}
	metrics, err := http.Get(s.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer metrics.Body.Close()
	text, _ := io.ReadAll(metrics.Body)
	if !strings.Contains(string(text), "\nlockstep_activity_log_dead_letters 3\n") {
		t.Errorf("/metrics has no lockstep_activity_log_dead_letters 3")
	}
}
