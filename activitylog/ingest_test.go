package activitylog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/pgtest"
)

type ingestFixture struct {
	db      *pgtest.DB
	pub     *recorder
	handler http.Handler
	student string // user 7
	other   string // user 8, a student too
	admin   string // user 1
	analyst string // user 2
	now     time.Time
}

func newIngest(t *testing.T) *ingestFixture {
	t.Helper()
	db := pgtest.New(t)
	tok := newTokens(t)
	f := &ingestFixture{db: db, pub: &recorder{}, now: time.Date(2025, 10, 28, 10, 5, 30, 0, time.UTC)}
	h := activitylog.NewHandler(activitylog.HandlerConfig{
		Bus:      f.pub,
		IDs:      activitylog.NewIDs(db.Pool),
		Sessions: activitylog.NewReadModelSessions(db.Pool, 0),
		Logger:   apptest.QuietLogger(),
		Now:      func() time.Time { return f.now },
	})
	f.handler = newRouter(tok, h)
	f.student = token(t, tok, 7, domain.RoleStudent)
	f.other = token(t, tok, 8, domain.RoleStudent)
	f.admin = token(t, tok, 1, domain.RoleAdmin)
	f.analyst = token(t, tok, 2, domain.RoleAnalyst)
	addSubtask(t, db.Pool, 1000, 1) // lecture 1: the lecture of joinSession's sessions
	addSubtask(t, db.Pool, 2000, 2) // another lecture
	return f
}

func TestActivityPublishesOneLogWithItsSession(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	joinSession(t, f.db.Pool, 41, 7, "REVIEW_MODE") // an older, finished session
	joinSession(t, f.db.Pool, 42, 7, "IN_PROGRESS")
	resp := post(t, f.handler, activitylog.ActivityPath, f.student, `{
		"user_id": 7, "subtask_id": 1000, "event_type": "CLICK",
		"event_data": {"x": 150, "y": 300, "element": "Button", "text": "확인"},
		"screen_info": {"package_name": "com.kakao.talk"},
		"timestamp": "2025-10-28T19:05:30+09:00"}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	body := resp.json(t)
	if body["message"] != "Log saved successfully" {
		t.Errorf("message %v", body["message"])
	}
	logs := f.pub.logs(t)
	if len(logs) != 1 {
		t.Fatalf("published %d logs, want 1", len(logs))
	}
	l := logs[0]
	if id, _ := body["log_id"].(float64); int64(id) != l.LogID || l.LogID <= 0 {
		t.Errorf("answered log_id %v, published %d", body["log_id"], l.LogID)
	}
	if l.UserID != 7 || l.EventType != "CLICK" || l.SubtaskID == nil || *l.SubtaskID != 1000 {
		t.Errorf("published %+v", l)
	}
	if l.SessionID == nil || *l.SessionID != 42 {
		t.Errorf("session %v, want the live session 42", l.SessionID)
	}
	if want := time.Date(2025, 10, 28, 10, 5, 30, 0, time.UTC); !l.OccurredAt.Equal(want) || l.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at %v, want %v in UTC", l.OccurredAt, want)
	}
	var data map[string]any
	if err := json.Unmarshal(l.EventData, &data); err != nil || data["text"] != "확인" {
		t.Errorf("event_data %s", l.EventData)
	}
}

func TestActivityDefaultsUserTimestampAndNoSession(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	joinSession(t, f.db.Pool, 43, 7, "REVIEW_MODE") // ended: not live
	resp := post(t, f.handler, activitylog.ActivityPath, f.student, `{"event_type": "BACK"}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	l := f.pub.logs(t)[0]
	if l.UserID != 7 || !l.OccurredAt.Equal(f.now) || !l.ReceivedAt.Equal(f.now) || l.SessionID != nil ||
		l.SubtaskID != nil || l.EventData != nil || l.ScreenInfo != nil {
		t.Errorf("published %+v", l)
	}
}

func TestExplicitSessionMustBeJoined(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	joinSession(t, f.db.Pool, 50, 7, "REVIEW_MODE")
	joinSession(t, f.db.Pool, 51, 8, "IN_PROGRESS")
	resp := post(t, f.handler, activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "session_id": 50}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("own ended session: status %d: %s", resp.Status, resp.Body)
	}
	if l := f.pub.logs(t)[0]; l.SessionID == nil || *l.SessionID != 50 {
		t.Errorf("session %v, want 50", l.SessionID)
	}
	resp = post(t, f.handler, activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK"}, {"event_type": "CLICK", "session_id": 51}]}`)
	code, details := resp.errorDetails(t)
	if resp.Status != http.StatusForbidden || code != "FORBIDDEN" || details["logs[1].session_id"] == nil {
		t.Fatalf("someone else's session: %d %s", resp.Status, resp.Body)
	}
	if n := len(f.pub.logs(t)); n != 1 {
		t.Errorf("a refused batch published: %d logs in all", n)
	}
}

func TestBatchPublishesEveryLogInOrderWithDistinctIDs(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	var entries []string
	for i := range activitylog.MaxBatch {
		entries = append(entries, fmt.Sprintf(`{"event_type": "SCROLL", "event_data": {"i": %d}, "timestamp": "2025-10-28T10:%02d:00Z"}`, i, i%60))
	}
	resp := post(t, f.handler, activitylog.BatchPath, f.student, `{"logs": [`+strings.Join(entries, ",")+`]}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if got := resp.json(t)["accepted"]; got != float64(activitylog.MaxBatch) {
		t.Errorf("accepted %v", got)
	}
	logs := f.pub.logs(t)
	if len(logs) != activitylog.MaxBatch {
		t.Fatalf("published %d logs", len(logs))
	}
	seen := map[int64]bool{}
	for i, l := range logs {
		var d struct{ I int }
		_ = json.Unmarshal(l.EventData, &d)
		if d.I != i || l.UserID != 7 || l.OccurredAt.Minute() != i%60 {
			t.Fatalf("log %d is %+v", i, l)
		}
		if seen[l.LogID] || l.LogID <= 0 {
			t.Fatalf("log id %d repeated or not positive", l.LogID)
		}
		seen[l.LogID] = true
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	big := `{"event_type": "CLICK", "event_data": {"pad": "` + strings.Repeat("x", 1<<20) + `"}}`
	var batch1001 []string
	for range activitylog.MaxBatch + 1 {
		batch1001 = append(batch1001, `{"event_type": "CLICK"}`)
	}
	// 6 MiB: 1000 logs of 6 KiB each.
	var tooBig []string
	for range activitylog.MaxBatch {
		tooBig = append(tooBig, `{"event_type": "CLICK", "event_data": {"pad": "`+strings.Repeat("y", 6<<10)+`"}}`)
	}
	cases := []struct {
		name   string
		path   string
		token  string
		body   string
		status int
		code   string
		field  string // a key details must have
	}{
		{"no_token", activitylog.ActivityPath, "", `{"event_type": "CLICK"}`, 401, "UNAUTHORIZED", ""},
		{"bad_token", activitylog.BatchPath, "nope", `{"logs": [{"event_type": "CLICK"}]}`, 401, "UNAUTHORIZED", ""},
		{"malformed_json", activitylog.ActivityPath, f.student, `{"event_type": `, 400, "INVALID_REQUEST", "body"},
		{"not_an_object", activitylog.ActivityPath, f.student, `["CLICK"]`, 400, "INVALID_REQUEST", "body"},
		{"event_type_missing", activitylog.ActivityPath, f.student, `{"subtask_id": 3}`, 400, "INVALID_REQUEST", "event_type"},
		{"event_type_lowercase", activitylog.ActivityPath, f.student, `{"event_type": "click"}`, 400, "INVALID_REQUEST", "event_type"},
		{"event_type_digit", activitylog.ActivityPath, f.student, `{"event_type": "CLICK2"}`, 400, "INVALID_REQUEST", "event_type"},
		{"event_type_leading_underscore", activitylog.ActivityPath, f.student, `{"event_type": "_CLICK"}`, 400, "INVALID_REQUEST", "event_type"},
		{"event_type_65_chars", activitylog.ActivityPath, f.student, `{"event_type": "` + strings.Repeat("A", 65) + `"}`, 400, "INVALID_REQUEST", "event_type"},
		{"event_type_not_string", activitylog.ActivityPath, f.student, `{"event_type": 5}`, 400, "INVALID_REQUEST", "event_type"},
		{"timestamp_not_rfc3339", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "timestamp": "28/10/2025"}`, 400, "INVALID_REQUEST", "timestamp"},
		{"subtask_zero", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "subtask_id": 0}`, 400, "INVALID_REQUEST", "subtask_id"},
		{"subtask_negative", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "subtask_id": -4}`, 400, "INVALID_REQUEST", "subtask_id"},
		{"session_zero", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "session_id": 0}`, 400, "INVALID_REQUEST", "session_id"},
		{"event_data_array", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "event_data": [1]}`, 400, "INVALID_REQUEST", "event_data"},
		{"event_data_nul", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "event_data": {"t": "a\u0000b"}}`, 400, "INVALID_REQUEST", "event_data"},
		{"screen_info_string", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "screen_info": "home"}`, 400, "INVALID_REQUEST", "screen_info"},
		{"user_id_zero", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "user_id": 0}`, 400, "INVALID_REQUEST", "user_id"},
		{"user_id_other", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "user_id": 8}`, 403, "FORBIDDEN", "user_id"},
		{"activity_over_1mib", activitylog.ActivityPath, f.student, big, 413, "PAYLOAD_TOO_LARGE", ""},
		{"batch_logs_missing", activitylog.BatchPath, f.student, `{}`, 400, "INVALID_REQUEST", "logs"},
		{"batch_logs_empty", activitylog.BatchPath, f.student, `{"logs": []}`, 400, "INVALID_REQUEST", "logs"},
		{"batch_logs_not_array", activitylog.BatchPath, f.student, `{"logs": {"event_type": "CLICK"}}`, 400, "INVALID_REQUEST", "logs"},
		{"batch_1001", activitylog.BatchPath, f.student, `{"logs": [` + strings.Join(batch1001, ",") + `]}`, 400, "INVALID_REQUEST", "logs"},
		{"batch_bad_entry_named_by_index", activitylog.BatchPath, f.student,
			`{"logs": [{"event_type": "CLICK"}, {"event_type": "CLICK"}, {"event_type": "CLICK"}, {"event_type": "click"}]}`, 400, "INVALID_REQUEST", "logs[3].event_type"},
		{"batch_entry_wrong_type", activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK"}, {"event_type": "CLICK", "subtask_id": "x"}]}`, 400, "INVALID_REQUEST", "logs[1].subtask_id"},
		{"batch_entry_not_object", activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK"}, 7]}`, 400, "INVALID_REQUEST", "logs[1]"},
		{"batch_entry_bad_timestamp", activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK", "timestamp": "yesterday"}]}`, 400, "INVALID_REQUEST", "logs[0].timestamp"},
		{"batch_other_user", activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK"}, {"event_type": "CLICK", "user_id": 8}]}`, 403, "FORBIDDEN", "logs[1].user_id"},
		// Issue 16: what PostgreSQL cannot store, refused at the edge.
		{"event_data_lone_surrogate", activitylog.ActivityPath, f.student, `{"event_type":"CLICK","event_data":{"text":"\ud800"}}`, 400, "INVALID_REQUEST", "event_data"},
		{"event_data_low_surrogate", activitylog.ActivityPath, f.student, `{"event_type":"CLICK","event_data":{"text":"a\udc00"}}`, 400, "INVALID_REQUEST", "event_data"},
		{"batch_surrogate_in_key", activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK"}, {"event_type":"CLICK","event_data":{"\ud83d":1}}]}`, 400, "INVALID_REQUEST", "logs[1].event_data"},
		{"screen_info_invalid_utf8", activitylog.ActivityPath, f.student, "{\"event_type\":\"CLICK\",\"screen_info\":{\"title\":\"\xff\xfe\"}}", 400, "INVALID_REQUEST", "screen_info"},
		{"screen_info_invalid_utf8_key", activitylog.ActivityPath, f.student, "{\"event_type\":\"CLICK\",\"screen_info\":{\"\xc3\":1}}", 400, "INVALID_REQUEST", "screen_info"},
		{"event_data_huge_number", activitylog.ActivityPath, f.student, `{"event_type":"CLICK","event_data":{"n":1e400000}}`, 400, "INVALID_REQUEST", "event_data"},
		{"event_data_nul_in_key", activitylog.ActivityPath, f.student, `{"event_type":"CLICK","event_data":{"a\u0000":1}}`, 400, "INVALID_REQUEST", "event_data"},
		{"timestamp_year_1", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "timestamp": "0001-01-01T00:00:00Z"}`, 400, "INVALID_REQUEST", "timestamp"},
		{"timestamp_year_9999", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "timestamp": "9999-12-31T23:59:59Z"}`, 400, "INVALID_REQUEST", "timestamp"},
		{"batch_timestamp_year_9999", activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK"}, {"event_type": "CLICK", "timestamp": "9999-01-01T00:00:00Z"}]}`, 400, "INVALID_REQUEST", "logs[1].timestamp"},
		{"subtask_unknown", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "subtask_id": 999999}`, 400, "INVALID_REQUEST", "subtask_id"},
		{"subtask_of_a_lecture_not_mine", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "subtask_id": 2000}`, 400, "INVALID_REQUEST", "subtask_id"},
		{"batch_subtask_unknown", activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK"}, {"event_type": "CLICK", "subtask_id": 424242}]}`, 400, "INVALID_REQUEST", "logs[1].subtask_id"},
		{"session_unknown", activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "session_id": 777777}`, 400, "INVALID_REQUEST", "session_id"},
		{"analyst_activity", activitylog.ActivityPath, f.analyst, `{"event_type": "CLICK"}`, 403, "FORBIDDEN", ""},
		{"analyst_batch", activitylog.BatchPath, f.analyst, `{"logs": [{"event_type": "CLICK"}]}`, 403, "FORBIDDEN", ""},
		{"batch_over_5mib", activitylog.BatchPath, f.student, `{"logs": [` + strings.Join(tooBig, ",") + `]}`, 413, "PAYLOAD_TOO_LARGE", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, f.handler, tc.path, tc.token, tc.body)
			code, details := resp.errorDetails(t)
			if resp.Status != tc.status || code != tc.code {
				t.Fatalf("got %d %s, want %d %s: %.300s", resp.Status, code, tc.status, tc.code, resp.Body)
			}
			if tc.field != "" {
				if _, ok := details[tc.field]; !ok {
					t.Errorf("details %v do not name %s", details, tc.field)
				}
			}
		})
	}
	if n := len(f.pub.logs(t)); n != 0 {
		t.Errorf("refused requests published %d logs", n)
	}
}

func TestBatchUpTo5MiBIsAccepted(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	// About 4 MiB: over the engine's 1 MiB, under the batch route's 5 MiB.
	var entries []string
	for range activitylog.MaxBatch {
		entries = append(entries, `{"event_type": "CLICK", "event_data": {"pad": "`+strings.Repeat("z", 4<<10)+`"}}`)
	}
	resp := post(t, f.handler, activitylog.BatchPath, f.student, `{"logs": [`+strings.Join(entries, ",")+`]}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("status %d: %.300s", resp.Status, resp.Body)
	}
	if len(f.pub.logs(t)) != activitylog.MaxBatch {
		t.Fatal("not every log was published")
	}
	if n := len(f.pub.msgs); n < 2 {
		t.Errorf("a 4 MiB batch went out as %d message(s); want it split under the bus message limit", n)
	}
}

func TestAdminMayLogForAnyone(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	joinSession(t, f.db.Pool, 60, 8, "IN_PROGRESS")
	resp := post(t, f.handler, activitylog.BatchPath, f.admin, `{"logs": [
		{"event_type": "CLICK", "user_id": 8}, {"event_type": "CLICK", "user_id": 9, "session_id": 60}, {"event_type": "CLICK"}]}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	logs := f.pub.logs(t)
	if len(logs) != 3 || logs[0].UserID != 8 || logs[1].UserID != 9 || logs[2].UserID != 1 {
		t.Fatalf("published %+v", logs)
	}
	if logs[0].SessionID == nil || *logs[0].SessionID != 60 || logs[1].SessionID == nil || *logs[1].SessionID != 60 || logs[2].SessionID != nil {
		t.Errorf("sessions %v %v %v", logs[0].SessionID, logs[1].SessionID, logs[2].SessionID)
	}
	if len(f.pub.msgs) != 3 {
		t.Errorf("%d messages; want one per user run (partition key per user)", len(f.pub.msgs))
	}
	for i, m := range f.pub.msgs {
		if got, want := m.Metadata.Get(bus.MetadataPartitionKey), fmt.Sprintf("user-%d", logs[i].UserID); got != want {
			t.Errorf("message %d partition key %q, want %q", i, got, want)
		}
	}
}

func TestPublishFailureIsNot201(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	f.pub.fail = errors.New("broker down")
	resp := post(t, f.handler, activitylog.ActivityPath, f.student, `{"event_type": "CLICK"}`)
	if code, _ := resp.errorDetails(t); resp.Status != http.StatusServiceUnavailable || code != "UNAVAILABLE" {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
	if strings.Contains(string(resp.Body), "broker down") {
		t.Error("internal error text reached the client")
	}
}

func TestIDsAreUniqueAcrossInstancesAndMatchTheSequence(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var inc int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT increment_by FROM pg_sequences WHERE sequencename = 'activity_log_ids'`).Scan(&inc); err != nil {
		t.Fatal(err)
	}
	if inc != activitylog.IDBlockSize {
		t.Fatalf("sequence increments by %d, IDBlockSize is %d", inc, activitylog.IDBlockSize)
	}
	a, b := activitylog.NewIDs(db.Pool), activitylog.NewIDs(db.Pool)
	type res struct {
		ids []int64
		err error
	}
	out := make(chan res)
	for _, alloc := range []*activitylog.IDs{a, b, a, b} {
		go func() {
			var all []int64
			for _, n := range []int{1, 999, 7000, 25000, 3} { // crosses blocks, and more than one block at once
				ids, err := alloc.Take(context.Background(), n)
				if err != nil {
					out <- res{err: err}
					return
				}
				if len(ids) != n {
					out <- res{err: fmt.Errorf("asked %d ids, got %d", n, len(ids))}
					return
				}
				for i := 1; i < len(ids); i++ {
					if ids[i] <= ids[i-1] {
						out <- res{err: fmt.Errorf("ids not increasing: %d then %d", ids[i-1], ids[i])}
						return
					}
				}
				all = append(all, ids...)
			}
			out <- res{ids: all}
		}()
	}
	seen := map[int64]bool{}
	for range 4 {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, id := range r.ids {
			if seen[id] || id <= 0 {
				t.Fatalf("id %d handed out twice (or not positive)", id)
			}
			seen[id] = true
		}
	}
}

func TestSubtaskMustBelongToTheLogsLecture(t *testing.T) {
	t.Parallel()
	f := newIngest(t)
	ctx := context.Background()
	joinSession(t, f.db.Pool, 70, 7, "IN_PROGRESS") // lecture 1 (subtask 1000)
	// An explicit session of lecture 1 with a subtask of lecture 2.
	resp := post(t, f.handler, activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK", "subtask_id": 1000}, {"event_type": "CLICK", "session_id": 70, "subtask_id": 2000}]}`)
	if code, details := resp.errorDetails(t); resp.Status != http.StatusBadRequest || code != "INVALID_REQUEST" || details["logs[1].subtask_id"] == nil {
		t.Fatalf("subtask of another lecture than the session's: %d %s", resp.Status, resp.Body)
	}
	// Not enrolled in lecture 2, and the active session teaches lecture 1.
	resp = post(t, f.handler, activitylog.ActivityPath, f.student, `{"event_type": "CLICK", "subtask_id": 2000}`)
	if code, details := resp.errorDetails(t); resp.Status != http.StatusBadRequest || code != "INVALID_REQUEST" || details["subtask_id"] == nil {
		t.Fatalf("subtask of a lecture the student is not in: %d %s", resp.Status, resp.Body)
	}
	if n := len(f.pub.logs(t)); n != 0 {
		t.Fatalf("refused requests published %d logs", n)
	}
	// Enrolled in lecture 2: accepted, without the session of lecture 1.
	if _, err := f.db.Pool.Exec(ctx, `INSERT INTO rm_enrollments (enrollment_id, lecture_id, user_id, enrolled_at, last_activity) VALUES (1, 2, 7, now(), now())`); err != nil {
		t.Fatal(err)
	}
	resp = post(t, f.handler, activitylog.BatchPath, f.student, `{"logs": [{"event_type": "CLICK", "subtask_id": 2000}, {"event_type": "CLICK", "subtask_id": 1000}, {"event_type": "CLICK", "session_id": 70, "subtask_id": 1000}]}`)
	if resp.Status != http.StatusCreated {
		t.Fatalf("enrolled: %d %s", resp.Status, resp.Body)
	}
	logs := f.pub.logs(t)
	if len(logs) != 3 || logs[0].SessionID != nil || logs[1].SessionID == nil || *logs[1].SessionID != 70 || logs[2].SessionID == nil || *logs[2].SessionID != 70 {
		t.Fatalf("published %+v", logs)
	}
}
