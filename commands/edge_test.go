package commands_test

// Issue 16: one careless request must not answer 500, nor be accepted and
// then stop a projector. Every test sends the bad request through the HTTP
// API of the whole app (projectors running), then proves the next ordinary
// request is served and readable.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// edgeReadable creates a lecture and reads it back: the lectures projector
// is running (a parked one leaves the new lecture 404 forever).
func edgeReadable(t *testing.T, s *apptest.Server, owner apptest.User) {
	t.Helper()
	r := s.Post(t, "/api/lectures", owner.Token, map[string]any{"title": "다음 강의"})
	apptest.MustError(t, r, http.StatusCreated, "")
	id := apptest.ID(t, r, "id")
	g := s.Get(t, fmt.Sprintf("/api/lectures/%d", id), owner.Token)
	apptest.MustError(t, g, http.StatusOK, "")
	if g.JSON(t)["title"] != "다음 강의" {
		t.Fatalf("the next lecture reads %s", g.Body)
	}
}

// edgeFields fails unless r is a 400 INVALID_REQUEST whose details name field.
func edgeFields(t *testing.T, r *apptest.Response, field string) {
	t.Helper()
	apptest.MustError(t, r, http.StatusBadRequest, "INVALID_REQUEST")
	if d := lecDetails(t, r); d[field] == nil {
		t.Fatalf("details %v do not name %q", d, field)
	}
}

func TestOutOfRangeIntegersAreRefusedAndParkNothing(t *testing.T) {
	s := apptest.Start(t)
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	lectureID, taskIDs, subtaskIDs := lecPlan(t, s, owner)
	tasks := fmt.Sprintf("/api/lectures/%d/tasks", lectureID)
	for _, n := range []int64{2147483648, 9_000_000_000, domain.MaxOrderIndex + 1, -2147483648, 0} {
		t.Run(fmt.Sprint("order_index_", n), func(t *testing.T) {
			edgeFields(t, s.Post(t, tasks, owner.Token, map[string]any{"title": "x", "order_index": n}), "order_index")
			edgeFields(t, s.Put(t, fmt.Sprintf("/api/tasks/%d", taskIDs[0]), owner.Token, map[string]any{"order_index": n}), "order_index")
			edgeFields(t, s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", taskIDs[0]), owner.Token,
				map[string]any{"title": "x", "target_action": "CLICK", "order_index": n}), "order_index")
			edgeFields(t, s.Put(t, fmt.Sprintf("/api/subtasks/%d", subtaskIDs[0]), owner.Token, map[string]any{"order_index": n}), "order_index")
		})
	}
	// The largest accepted order_index is stored and read back.
	r := s.Post(t, tasks, owner.Token, map[string]any{"title": "마지막", "order_index": domain.MaxOrderIndex})
	apptest.MustError(t, r, http.StatusCreated, "")
	g := s.Get(t, fmt.Sprintf("/api/tasks/%d", apptest.ID(t, r, "id")), owner.Token)
	apptest.MustError(t, g, http.StatusOK, "")
	if g.JSON(t)["order_index"] != float64(domain.MaxOrderIndex) {
		t.Fatalf("task reads %s", g.Body)
	}
	edgeReadable(t, s, owner)

	t.Run("help_stuck_duration_seconds", func(t *testing.T) {
		c := newHelpClass(t, s)
		edgeFields(t, s.Post(t, "/api/help/request", c.student.Token, map[string]any{
			"subtask_id": c.clickID, "stuck_duration_seconds": int64(2147483648),
		}), "stuck_duration_seconds")
		// Inside context_data the value is the client's; the request is
		// accepted with no stuck time taken from it, and readable.
		r := s.Post(t, "/api/help/request", c.student.Token, map[string]any{
			"subtask_id": c.clickID, "context_data": map[string]any{"stuck_duration_seconds": int64(2147483648)},
		})
		apptest.MustError(t, r, http.StatusCreated, "")
		// No stuck signal: the analyzer escalates it to the instructor.
		v := c.awaitStatus(t, apptest.ID(t, r, "help_request_id"), "ESCALATED")
		if v.UserID != c.student.ID {
			t.Fatalf("help request reads %+v", v)
		}
		edgeReadable(t, s, c.instructor)
	})
}

func TestHelpContextDataPostgresCannotStoreIsRefused(t *testing.T) {
	s := apptest.Start(t)
	c := newHelpClass(t, s)
	for name, raw := range map[string]string{
		"lone_surrogate": `{"text":"\ud800"}`,
		"nul":            `{"text":"a\u0000b"}`,
		"invalid_utf8":   "{\"text\":\"a\xffb\"}",
		"huge_number":    `{"text":1e400000}`,
		"surrogate_key":  `{"\udc00":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			body := fmt.Sprintf(`{"subtask_id":%d,"context_data":%s}`, c.clickID, raw)
			r := s.Post(t, "/api/help/request", c.student.Token, body)
			apptest.MustError(t, r, http.StatusBadRequest, "INVALID_REQUEST")
			d := lecDetails(t, r)
			named := false
			for k := range d {
				named = named || strings.HasPrefix(k, "context_data")
			}
			if !named {
				t.Fatalf("details %v do not name context_data", d)
			}
		})
	}
	// The next ordinary request is stored and readable.
	id := c.askStuck(t, c.clickID, 120)
	c.awaitStatus(t, id, "RESOLVED")
	edgeReadable(t, s, c.instructor)
}

// edgeSeq numbers the X-Request-IDs of the text table.
var edgeSeq atomic.Int64

// TestTextPostgresCannotStoreIsRefusedEverywhere sends a NUL, invalid UTF-8
// and a lone surrogate into every text field of every write endpoint: each
// answers 400 naming the field, and appends no event (none carries the
// request's X-Request-ID) or creates no user.
func TestTextPostgresCannotStoreIsRefusedEverywhere(t *testing.T) {
	s := apptest.Start(t)
	c := newHelpClass(t, s)
	admin := s.Admin(t)
	lec := c.lectureID
	task := apptest.ID(t, apptest.Must(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lec), c.instructor.Token, map[string]any{"title": "두 번째"}), 201), "id")
	resolved := c.askStuck(t, c.clickID, 120)
	v := c.awaitStatus(t, resolved, "RESOLVED")
	escalated := c.ask(t, c.vagueID)
	c.awaitStatus(t, escalated, "ESCALATED")
	session := apptest.ID(t, apptest.Must(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", lec), c.instructor.Token, map[string]any{"title": "오전반"}), 201), "session_id")
	sess := func(action string) string { return fmt.Sprintf("/api/sessions/%d/%s", session, action) }

	type endpoint struct {
		method, path, token string
		base                map[string]any
		fields              []string
	}
	subtaskFields := []string{"title", "description", "target_action", "target_element_hint", "guide_text", "voice_guide_text"}
	register := map[string]any{"email": "new-user@lockstep.test", "password": "password-123", "name": "새사용자", "phone": "01012345678", "role": "STUDENT", "digital_level": "BEGINNER"}
	endpoints := []endpoint{
		{"POST", "/api/lectures", c.instructor.Token, map[string]any{"title": "t"}, []string{"title", "description", "thumbnail_url"}},
		{"PUT", fmt.Sprintf("/api/lectures/%d", lec), c.instructor.Token, map[string]any{}, []string{"title", "description", "thumbnail_url"}},
		{"POST", fmt.Sprintf("/api/lectures/%d/tasks", lec), c.instructor.Token, map[string]any{"title": "t"}, []string{"title", "description"}},
		{"PUT", fmt.Sprintf("/api/tasks/%d", task), c.instructor.Token, map[string]any{}, []string{"title", "description"}},
		{"POST", fmt.Sprintf("/api/tasks/%d/subtasks", task), c.instructor.Token, map[string]any{"title": "t", "target_action": "CLICK"}, subtaskFields},
		{"PUT", fmt.Sprintf("/api/subtasks/%d", c.clickID), c.instructor.Token, map[string]any{}, subtaskFields},
		{"POST", fmt.Sprintf("/api/lectures/%d/sessions", lec), c.instructor.Token, map[string]any{}, []string{"title", "scheduled_at"}},
		{"POST", sess("start"), c.instructor.Token, map[string]any{}, []string{"message"}},
		{"POST", sess("next-step"), c.instructor.Token, map[string]any{}, []string{"message"}},
		{"POST", sess("pause"), c.instructor.Token, map[string]any{}, []string{"message"}},
		{"POST", sess("resume"), c.instructor.Token, map[string]any{}, []string{"message"}},
		{"POST", sess("end"), c.instructor.Token, map[string]any{}, []string{"message"}},
		{"POST", sess("join"), c.student.Token, map[string]any{}, []string{"session_code"}},
		{"POST", "/api/progress/update", c.student.Token, map[string]any{"subtask_id": c.clickID, "status": "IN_PROGRESS"}, []string{"status"}},
		{"POST", "/api/help/request", c.student.Token, map[string]any{"subtask_id": c.clickID}, []string{"request_type", "context_data.note"}},
		{"POST", fmt.Sprintf("/api/help/request/%d/respond", escalated), c.instructor.Token, map[string]any{"help_content": "눌러 보세요"}, []string{"help_type", "help_content", "voice_guide_text"}},
		{"POST", "/api/help/feedback", c.student.Token, map[string]any{"help_response_id": v.HelpResponse.ID, "rating": 5}, []string{"feedback_text"}},
		{"POST", "/api/auth/register", "", register, []string{"email", "password", "name", "phone"}},
		{"POST", "/api/auth/login", "", map[string]any{"email": c.student.Email, "password": "password-123"}, []string{"email", "password"}},
		{"POST", "/api/auth/refresh", "", map[string]any{}, []string{"refresh_token"}},
		{"PATCH", fmt.Sprintf("/api/admin/users/%d", c.student.ID), admin.Token, map[string]any{}, []string{"role"}},
	}
	values := map[string]string{
		"nul":            `"a\u0000b"`,
		"invalid_utf8":   "\"a\xffb\"",
		"lone_surrogate": `"a\ud800b"`,
	}
	ctx := context.Background()
	for _, ep := range endpoints {
		for _, field := range ep.fields {
			for vname, lit := range values {
				t.Run(strings.ReplaceAll(ep.method+ep.path, "/", "_")+"."+field+"."+vname, func(t *testing.T) {
					body := edgeBody(t, ep.base, field, lit)
					reqID := fmt.Sprintf("edge-%d", edgeSeq.Add(1))
					r := s.Do(t, apptest.Request{Method: ep.method, Path: ep.path, Token: ep.token, Body: body, Header: map[string]string{"X-Request-ID": reqID}})
					edgeFields(t, r, field)
					var n int
					if err := s.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE metadata->>'correlation_id' = $1`, reqID).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n != 0 {
						t.Fatalf("%d events appended by a refused request", n)
					}
					if err := s.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = $1`, register["email"]).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n != 0 {
						t.Fatalf("a refused registration created a user")
					}
				})
			}
		}
	}
	// Nothing is stuck: the next ordinary commands are served and readable.
	edgeReadable(t, s, c.instructor)
	apptest.Must(t, s.Post(t, "/api/auth/register", "", register), 201)
	s.Login(t, c.student.Email, "password-123")
}

// edgeBody is base as JSON with field (a dotted path of at most two names)
// set to the raw JSON literal lit.
func edgeBody(t *testing.T, base map[string]any, field, lit string) []byte {
	t.Helper()
	name, inner, nested := strings.Cut(field, ".")
	if nested {
		lit = fmt.Sprintf(`{%q:%s}`, inner, lit)
	}
	rest := map[string]any{}
	for k, v := range base {
		if k != name {
			rest[k] = v
		}
	}
	data, err := json.Marshal(rest)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf(`{%q:%s`, name, lit)
	if len(rest) > 0 {
		out += "," + string(data[1:])
	} else {
		out += "}"
	}
	return []byte(out)
}

func TestHugePageNumbersAreRefused(t *testing.T) {
	s := apptest.Start(t)
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	admin := s.Admin(t)
	lectureID, _, _ := lecPlan(t, s, owner)
	lists := []struct{ path, token string }{
		{"/api/lectures", owner.Token},
		{"/api/notifications", owner.Token},
		{fmt.Sprintf("/api/dashboard/lectures/%d/students", lectureID), owner.Token},
		{"/api/dashboard/help-requests/pending", owner.Token},
		{"/api/admin/users", admin.Token},
	}
	for _, l := range lists {
		t.Run(strings.ReplaceAll(l.path, "/", "_"), func(t *testing.T) {
			for _, q := range []struct{ query, field string }{
				{"page=9223372036854775807", "page"},
				{"page=1000001", "page"},
				{"page=99999999999999999999", "page"},
				{"page_size=9223372036854775807", "page_size"},
				{"page=9223372036854775807&page_size=100", "page"},
			} {
				edgeFields(t, s.Get(t, l.path+"?"+q.query, l.token), q.field)
			}
			r := s.Get(t, l.path+"?page=1000000&page_size=100", l.token)
			apptest.MustError(t, r, http.StatusOK, "")
			p, _ := r.JSON(t)["pagination"].(map[string]any)
			if p["page"] != float64(1000000) {
				t.Fatalf("pagination %s", r.Body)
			}
		})
	}
	edgeReadable(t, s, owner)
}

// TestRequestIDIsBounded: X-Request-ID becomes the correlation id of every
// event a command appends; one rule for all commands keeps a plain id of up
// to 128 characters and replaces anything else with a generated one.
func TestRequestIDIsBounded(t *testing.T) {
	s := apptest.Start(t)
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	lectureID, _, _ := lecPlan(t, s, owner)
	corr := func(t *testing.T, stream string) string {
		t.Helper()
		var id string
		if err := s.DB.Pool.QueryRow(context.Background(),
			`SELECT metadata->>'correlation_id' FROM events WHERE stream = $1 ORDER BY version DESC LIMIT 1`, stream).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, tc := range []struct {
		name, header string
		kept         bool
	}{
		{"plain", "req-1.2_3:abc", true},
		{"max_len", strings.Repeat("a", 128), true},
		{"too_long", strings.Repeat("a", 129), false},
		{"huge", strings.Repeat("x", 64<<10), false},
		{"space", "a b", false},
		{"quote", `a"b`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"X-Request-ID": tc.header}
			check := func(t *testing.T, stream string) {
				t.Helper()
				got := corr(t, stream)
				if tc.kept && got != tc.header {
					t.Fatalf("correlation id %q, want the header", got)
				}
				if !tc.kept && (got == tc.header || len(got) > 128 || got == "") {
					t.Fatalf("correlation id of %d bytes kept; want a generated one", len(got))
				}
			}
			// A lecture command and a session command follow the same rule.
			r := s.Do(t, apptest.Request{Method: "PUT", Path: fmt.Sprintf("/api/lectures/%d", lectureID), Token: owner.Token,
				Body: map[string]any{"description": tc.name}, Header: h})
			apptest.MustError(t, r, http.StatusOK, "")
			check(t, domain.LectureStream(lectureID))
			r = s.Do(t, apptest.Request{Method: "POST", Path: fmt.Sprintf("/api/lectures/%d/sessions", lectureID), Token: owner.Token,
				Body: map[string]any{}, Header: h})
			apptest.MustError(t, r, http.StatusCreated, "")
			check(t, domain.SessionStream(apptest.ID(t, r, "session_id")))
		})
	}
}

// TestBadIDsNeverAnswer500: an id in a path or query that is not a positive
// int64 answers 404 (path) or 400 (query), never 500.
func TestBadIDsNeverAnswer500(t *testing.T) {
	s := apptest.Start(t)
	admin := s.Admin(t)
	for _, id := range []string{"abc", "0", "-1", "1e3", "99999999999999999999", "9223372036854775807", "%00"} {
		for _, p := range []struct{ method, path string }{
			{"GET", "/api/lectures/%s"}, {"GET", "/api/tasks/%s"}, {"GET", "/api/help/request/%s"},
			{"GET", "/api/progress/users/%s/lectures/%[1]s"}, {"GET", "/api/sessions/%s/participants"},
			{"GET", "/api/sessions/%s/current"}, {"GET", "/api/sessions/%s"},
			{"GET", "/api/dashboard/lectures/%s/students"}, {"GET", "/api/dashboard/statistics/lecture/%s"},
			{"GET", "/api/lectures?instructor_id=%s"}, {"GET", "/api/progress/me?lecture_id=%s"},
			{"GET", "/api/dashboard/chart-data/progress-trend?lecture_id=%s"},
			{"POST", "/api/notifications/%s/read"},
			{"PUT", "/api/lectures/%s"}, {"DELETE", "/api/lectures/%s"}, {"POST", "/api/lectures/%s/enroll"},
			{"POST", "/api/lectures/%s/tasks"}, {"PUT", "/api/tasks/%s"}, {"POST", "/api/tasks/%s/subtasks"},
			{"PUT", "/api/subtasks/%s"}, {"DELETE", "/api/subtasks/%s"}, {"POST", "/api/lectures/%s/sessions"},
			{"POST", "/api/sessions/%s/join"}, {"POST", "/api/sessions/%s/start"}, {"POST", "/api/help/request/%s/respond"},
			{"PATCH", "/api/admin/users/%s"},
		} {
			path := fmt.Sprintf(p.path, id)
			r := s.Do(t, apptest.Request{Method: p.method, Path: path, Token: admin.Token, Body: map[string]any{"title": "t", "help_content": "x", "role": "STUDENT"}})
			ok := r.Status == http.StatusNotFound || r.Status == http.StatusBadRequest
			// A well-formed id that names nothing filters a list down to nothing.
			ok = ok || (r.Status == http.StatusOK && id == "9223372036854775807" && strings.Contains(p.path, "?"))
			if !ok {
				t.Errorf("%s %s = %d %s, want 404 or 400", p.method, path, r.Status, r.Body)
			}
		}
	}
	// An on-behalf user_id must name a user.
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	lectureID, _, _ := lecPlan(t, s, owner)
	edgeFields(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lectureID), admin.Token, map[string]any{"user_id": 987654321}), "user_id")
}
