package commands_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
)

// user makes a user without registration's password hashing (slow under
// -race): a row inserted directly and a token signed with the test key.
func user(t *testing.T, srv *apptest.Server, role domain.Role, name string) apptest.User {
	t.Helper()
	tokens, err := auth.NewTokens(auth.Config{Secret: []byte(apptest.Secret)})
	if err != nil {
		t.Fatal(err)
	}
	u := apptest.User{Name: name, Role: string(role), Email: fmt.Sprintf("%s-%d@lockstep.test", strings.ToLower(string(role)), time.Now().UnixNano())}
	if err := srv.DB.Pool.QueryRow(context.Background(), `INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', $2, $3) RETURNING id`,
		u.Email, name, string(role)).Scan(&u.ID); err != nil {
		t.Fatal(err)
	}
	if u.Token, err = tokens.Issue(domain.Actor{UserID: u.ID, Role: role}); err != nil {
		t.Fatal(err)
	}
	return u
}

type fixture struct {
	srv        *apptest.Server
	instructor apptest.User
	lectureID  int64
	subtasks   []int64
}

func newFixture(t *testing.T, srv *apptest.Server, subtasks int) fixture {
	t.Helper()
	f := fixture{srv: srv, instructor: user(t, srv, domain.RoleInstructor, "박강사")}
	f.lectureID = f.lecture(t, subtasks)
	return f
}

// lecture makes a lecture of f's instructor with one task of n subtasks.
func (f *fixture) lecture(t *testing.T, n int) int64 {
	t.Helper()
	var lec, task struct {
		ID int64 `json:"id"`
	}
	apptest.MustError(t, f.srv.Post(t, "/api/lectures", f.instructor.Token, map[string]any{"title": "카카오톡 기초", "description": "기초"}), 201, "").Decode(t, &lec)
	apptest.MustError(t, f.srv.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lec.ID), f.instructor.Token, map[string]any{"title": "과제", "order_index": 1}), 201, "").Decode(t, &task)
	for i := range n {
		var st struct {
			ID int64 `json:"id"`
		}
		apptest.MustError(t, f.srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task.ID), f.instructor.Token, map[string]any{
			"title": fmt.Sprintf("단계 %d", i+1), "order_index": i + 1, "target_action": "CLICK", "guide_text": "안내",
		}), 201, "").Decode(t, &st)
		if lec.ID == f.lectureID || f.lectureID == 0 {
			f.subtasks = append(f.subtasks, st.ID)
		}
	}
	return lec.ID
}

func (f *fixture) open(t *testing.T) int64 {
	t.Helper()
	var out struct {
		SessionID int64 `json:"session_id"`
	}
	apptest.MustError(t, f.srv.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", f.lectureID), f.instructor.Token, nil), 201, "").Decode(t, &out)
	return out.SessionID
}

func path(id int64, action string) string { return fmt.Sprintf("/api/sessions/%d/%s", id, action) }

// TestSessionRefusals covers every refusal of CONTRACT.md's Sessions bullets.
func TestSessionRefusals(t *testing.T) {
	srv := apptest.Start(t)
	f := newFixture(t, srv, 3)
	other := user(t, srv, domain.RoleInstructor, "다른강사")
	student := user(t, srv, domain.RoleStudent, "김학생")
	admin := srv.Admin(t)

	t.Run("create", func(t *testing.T) {
		lec := fmt.Sprintf("/api/lectures/%d/sessions", f.lectureID)
		apptest.MustError(t, srv.Post(t, lec, "", nil), 401, "UNAUTHORIZED")
		apptest.MustError(t, srv.Post(t, "/api/lectures/999999/sessions", f.instructor.Token, nil), 404, "NOT_FOUND")
		apptest.MustError(t, srv.Post(t, lec, student.Token, nil), 403, "FORBIDDEN")
		apptest.MustError(t, srv.Post(t, lec, other.Token, nil), 403, "FORBIDDEN")
		r := apptest.MustError(t, srv.Post(t, lec, f.instructor.Token, map[string]any{"scheduled_at": "tomorrow"}), 400, "INVALID_REQUEST")
		if !strings.Contains(string(r.Body), "scheduled_at") {
			t.Fatalf("details do not name scheduled_at: %s", r.Body)
		}
		apptest.MustError(t, srv.Post(t, lec, f.instructor.Token, map[string]any{"title": strings.Repeat("가", 201)}), 400, "INVALID_REQUEST")
		apptest.MustError(t, srv.Post(t, lec, f.instructor.Token, "{not json"), 400, "INVALID_REQUEST")
		// An inactive lecture takes no new session.
		inactive := f.lecture(t, 1)
		apptest.MustError(t, srv.Delete(t, fmt.Sprintf("/api/lectures/%d", inactive), f.instructor.Token), 204, "")
		apptest.MustError(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", inactive), f.instructor.Token, nil), 409, "INVALID_STATE")
		// The admin may open one of anyone's lectures.
		apptest.MustError(t, srv.Post(t, lec, admin.Token, nil), 201, "")
	})

	t.Run("by_code", func(t *testing.T) {
		id := f.open(t)
		var code string
		if err := srv.DB.Pool.QueryRow(context.Background(), `SELECT code FROM session_codes WHERE session_id = $1`, id).Scan(&code); err != nil {
			t.Fatal(err)
		}
		// No enrollment needed.
		r := apptest.MustError(t, srv.Get(t, "/api/sessions/"+code, student.Token), 200, "")
		m := r.JSON(t)
		if m["session_id"].(float64) != float64(id) || m["status"] != "WAITING" || m["instructor"].(map[string]any)["name"] != "박강사" ||
			m["lecture"].(map[string]any)["description"] != "기초" || m["participant_count"].(float64) != 0 {
			t.Fatalf("by code: %s", r.Body)
		}
		unknown := "ZZZZZZ"
		if code == unknown {
			unknown = "YYYYYY"
		}
		apptest.MustError(t, srv.Get(t, "/api/sessions/"+unknown, student.Token), 404, "NOT_FOUND")
		apptest.MustError(t, srv.Get(t, "/api/sessions/abc", student.Token), 404, "NOT_FOUND")
		apptest.MustError(t, srv.Get(t, "/api/sessions/"+code, ""), 401, "UNAUTHORIZED")
	})

	t.Run("join", func(t *testing.T) {
		id := f.open(t)
		code := map[string]any{"session_code": sessionCode(t, srv, id)} // admits (CONTRACT "Admission")
		apptest.MustError(t, srv.Post(t, path(999999, "join"), student.Token, nil), 404, "NOT_FOUND")
		apptest.MustError(t, srv.Post(t, path(id, "join"), f.instructor.Token, nil), 403, "FORBIDDEN")
		apptest.MustError(t, srv.Post(t, path(id, "join"), student.Token, map[string]any{"user_id": other.ID}), 403, "FORBIDDEN")
		apptest.MustError(t, srv.Post(t, path(id, "join"), student.Token, map[string]any{"user_id": "me"}), 400, "INVALID_REQUEST")
		first := apptest.MustError(t, srv.Post(t, path(id, "join"), student.Token, map[string]any{"user_id": student.ID, "session_code": code["session_code"]}), 201, "").JSON(t)
		if first["status"] != "WAITING" || first["user_id"].(float64) != float64(student.ID) || first["participant_id"].(float64) <= 0 {
			t.Fatalf("first join: %v", first)
		}
		again := apptest.MustError(t, srv.Post(t, path(id, "join"), student.Token, nil), 200, "").JSON(t)
		if again["participant_id"] != first["participant_id"] || again["joined_at"] != first["joined_at"] {
			t.Fatalf("second join %v, first %v", again, first)
		}
		// Joining enrolled the student: they may record progress.
		apptest.MustError(t, srv.Post(t, "/api/progress/update", student.Token, map[string]any{"subtask_id": f.subtasks[0], "status": "IN_PROGRESS"}), 200, "")

		// A late joiner is ACTIVE at once, in IN_PROGRESS and in PAUSED.
		apptest.MustError(t, srv.Post(t, path(id, "start"), f.instructor.Token, nil), 200, "")
		late := user(t, srv, domain.RoleStudent, "늦은학생")
		if m := apptest.MustError(t, srv.Post(t, path(id, "join"), late.Token, code), 201, "").JSON(t); m["status"] != "ACTIVE" {
			t.Fatalf("late join: %v", m)
		}
		apptest.MustError(t, srv.Post(t, path(id, "pause"), f.instructor.Token, nil), 200, "")
		paused := user(t, srv, domain.RoleStudent, "쉬는시간학생")
		if m := apptest.MustError(t, srv.Post(t, path(id, "join"), paused.Token, code), 201, "").JSON(t); m["status"] != "ACTIVE" {
			t.Fatalf("join while paused: %v", m)
		}
		// The admin may join a student.
		byAdmin := user(t, srv, domain.RoleStudent, "대리학생")
		if m := apptest.MustError(t, srv.Post(t, path(id, "join"), admin.Token, map[string]any{"user_id": byAdmin.ID}), 201, "").JSON(t); m["user_id"].(float64) != float64(byAdmin.ID) {
			t.Fatalf("join by admin: %v", m)
		}

		// In REVIEW_MODE: a first join is refused, a participant comes back.
		apptest.MustError(t, srv.Post(t, path(id, "end"), f.instructor.Token, nil), 200, "")
		newcomer := user(t, srv, domain.RoleStudent, "새학생")
		apptest.MustError(t, srv.Post(t, path(id, "join"), newcomer.Token, code), 409, "INVALID_STATE")
		back := apptest.MustError(t, srv.Post(t, path(id, "join"), student.Token, nil), 200, "").JSON(t)
		if back["participant_id"] != first["participant_id"] {
			t.Fatalf("join in review mode: %v", back)
		}
	})

	t.Run("state_machine", func(t *testing.T) {
		id := f.open(t)
		tok := f.instructor.Token
		// WAITING: only start and end.
		apptest.MustError(t, srv.Post(t, path(id, "next-step"), tok, nil), 409, "INVALID_STATE")
		apptest.MustError(t, srv.Post(t, path(id, "pause"), tok, nil), 409, "INVALID_STATE")
		apptest.MustError(t, srv.Post(t, path(id, "resume"), tok, nil), 409, "INVALID_STATE")
		// Not the owner.
		for _, u := range []apptest.User{student, other} {
			for _, a := range []string{"start", "next-step", "pause", "resume", "end"} {
				apptest.MustError(t, srv.Post(t, path(id, a), u.Token, nil), 403, "FORBIDDEN")
			}
		}
		for _, a := range []string{"start", "next-step", "pause", "resume", "end"} {
			apptest.MustError(t, srv.Post(t, path(999999, a), tok, nil), 404, "NOT_FOUND")
		}
		// first_subtask_id must be the lecture's.
		foreign := f.lecture(t, 1)
		var foreignSub int64
		if err := srv.DB.Pool.QueryRow(context.Background(), `SELECT subtask_id FROM lecture_subtask_ids WHERE lecture_id = $1`, foreign).Scan(&foreignSub); err != nil {
			t.Fatal(err)
		}
		r := apptest.MustError(t, srv.Post(t, path(id, "start"), tok, map[string]any{"first_subtask_id": foreignSub}), 400, "INVALID_REQUEST")
		if !strings.Contains(string(r.Body), "first_subtask_id") {
			t.Fatalf("details do not name first_subtask_id: %s", r.Body)
		}
		apptest.MustError(t, srv.Post(t, path(id, "start"), tok, map[string]any{"message": strings.Repeat("가", 501)}), 400, "INVALID_REQUEST")
		// Start at the second subtask; starting again is refused.
		m := apptest.MustError(t, srv.Post(t, path(id, "start"), tok, map[string]any{"first_subtask_id": f.subtasks[1]}), 200, "").JSON(t)
		if m["current_subtask"].(map[string]any)["id"].(float64) != float64(f.subtasks[1]) {
			t.Fatalf("start: %v", m)
		}
		apptest.MustError(t, srv.Post(t, path(id, "start"), tok, nil), 409, "INVALID_STATE")
		// IN_PROGRESS: no resume; next_subtask_id must be the lecture's.
		apptest.MustError(t, srv.Post(t, path(id, "resume"), tok, nil), 409, "INVALID_STATE")
		apptest.MustError(t, srv.Post(t, path(id, "next-step"), tok, map[string]any{"next_subtask_id": foreignSub}), 400, "INVALID_REQUEST")
		// Jump back to the first subtask, then default to the next one.
		m = apptest.MustError(t, srv.Post(t, path(id, "next-step"), tok, map[string]any{"next_subtask_id": f.subtasks[0]}), 200, "").JSON(t)
		if m["previous_subtask"].(map[string]any)["id"].(float64) != float64(f.subtasks[1]) || m["current_subtask"].(map[string]any)["id"].(float64) != float64(f.subtasks[0]) {
			t.Fatalf("jump: %v", m)
		}
		m = apptest.MustError(t, srv.Post(t, path(id, "next-step"), tok, nil), 200, "").JSON(t)
		if m["current_subtask"].(map[string]any)["id"].(float64) != float64(f.subtasks[1]) {
			t.Fatalf("default next: %v", m)
		}
		// PAUSED: no next-step, no second pause.
		m = apptest.MustError(t, srv.Post(t, path(id, "pause"), tok, nil), 200, "").JSON(t)
		if m["action"] != "PAUSE" {
			t.Fatalf("pause: %v", m)
		}
		apptest.MustError(t, srv.Post(t, path(id, "pause"), tok, nil), 409, "INVALID_STATE")
		apptest.MustError(t, srv.Post(t, path(id, "next-step"), tok, nil), 409, "INVALID_STATE")
		// End from PAUSED, then nothing more.
		apptest.MustError(t, srv.Post(t, path(id, "end"), tok, nil), 200, "")
		for _, a := range []string{"start", "next-step", "pause", "resume", "end"} {
			apptest.MustError(t, srv.Post(t, path(id, a), tok, nil), 409, "INVALID_STATE")
		}
	})

	t.Run("end_from_waiting_releases_the_code", func(t *testing.T) {
		id := f.open(t)
		var n int
		count := func() int {
			if err := srv.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM session_codes WHERE session_id = $1`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if count() != 1 {
			t.Fatal("an open session has no reserved code")
		}
		m := apptest.MustError(t, srv.Post(t, path(id, "end"), admin.Token, nil), 200, "").JSON(t)
		if m["status"] != "REVIEW_MODE" || m["duration_minutes"].(float64) != 0 || m["completed_participants"].(float64) != 0 {
			t.Fatalf("end from waiting: %v", m)
		}
		if count() != 0 {
			t.Fatal("an ended session still holds its code")
		}
	})

	t.Run("queries", func(t *testing.T) {
		id := f.open(t)
		for _, u := range []apptest.User{student, other} {
			apptest.MustError(t, srv.Get(t, path(id, "participants"), u.Token), 403, "FORBIDDEN")
			apptest.MustError(t, srv.Get(t, path(id, "current"), u.Token), 403, "FORBIDDEN")
		}
		apptest.MustError(t, srv.Get(t, path(999999, "participants"), admin.Token), 404, "NOT_FOUND")
		apptest.MustError(t, srv.Get(t, path(999999, "current"), admin.Token), 404, "NOT_FOUND")
		apptest.MustError(t, srv.Get(t, path(id, "participants"), admin.Token), 200, "")

		loner := user(t, srv, domain.RoleStudent, "혼자")
		r := srv.Get(t, "/api/sessions/my-active", loner.Token)
		if r.Status != 404 || r.JSON(t)["message"] == nil || string(r.Body) == "" || !strings.Contains(string(r.Body), `"active_session":null`) {
			t.Fatalf("my-active with none: %d %s", r.Status, r.Body)
		}
		apptest.MustError(t, srv.Post(t, path(id, "join"), loner.Token, map[string]any{"session_code": sessionCode(t, srv, id)}), 201, "")
		cur := apptest.MustError(t, srv.Get(t, path(id, "current"), loner.Token), 200, "").JSON(t)
		if cur["status"] != "WAITING" || cur["current_subtask"] != nil {
			t.Fatalf("current: %v", cur)
		}
		active := apptest.MustError(t, srv.Get(t, "/api/sessions/my-active", loner.Token), 200, "").JSON(t)["active_session"].(map[string]any)
		if active["session_id"].(float64) != float64(id) || active["my_status"] != "WAITING" || active["lecture"].(map[string]any)["title"] != "카카오톡 기초" {
			t.Fatalf("my-active: %v", active)
		}
	})

	t.Run("idempotent_join", func(t *testing.T) {
		id := f.open(t)
		u := user(t, srv, domain.RoleStudent, "재시도학생")
		req := apptest.Request{Method: "POST", Path: path(id, "join"), Token: u.Token, Body: map[string]any{"session_code": sessionCode(t, srv, id)}, Header: map[string]string{"Idempotency-Key": "join-1"}}
		a := srv.Do(t, req)
		b := srv.Do(t, req)
		if a.Status != 201 || b.Status != 201 || string(a.Body) != string(b.Body) {
			t.Fatalf("retried join: %d %s / %d %s", a.Status, a.Body, b.Status, b.Body)
		}
	})
}

func TestNewSessionCode(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := commands.NewSessionCode()
		if !domain.ValidSessionCode(c) {
			t.Fatalf("invalid code %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 990 {
		t.Fatalf("only %d distinct codes in 1000", len(seen))
	}
}
