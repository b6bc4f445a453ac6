package readapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

type stepChanged struct {
	PreviousSubtaskID int64   `json:"previous_subtask_id"`
	CurrentSubtask    subtask `json:"current_subtask"`
	InstructorMessage string  `json:"instructor_message"`
	Timestamp         string  `json:"timestamp"`
}

// studentEvent is the data of the instructor socket's messages about one
// student (student_joined, student_progress, student_disconnected); each
// message carries some of these fields.
type studentEvent struct {
	UserID       int64   `json:"user_id"`
	Name         string  `json:"name"`
	Email        string  `json:"email"`
	Total        int     `json:"total_participants"`
	Active       int     `json:"active_participants"`
	LastActiveAt string  `json:"last_active_at"`
	SubtaskID    int64   `json:"subtask_id"`
	Status       string  `json:"status"`
	CompletedAt  *string `json:"completed_at"`
}

// TestWholeClass runs a class: an instructor opens a session, 30 students
// join and connect, the class starts, moves three steps, pauses and resumes,
// students report progress, and it ends. Every student receives every
// message once, in order, and the REST state matches after each step.
func TestWholeClass(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 2, 2)
	sess := cl.open(t)
	if sess.Status != "WAITING" || len(sess.SessionCode) != 6 || sess.Lecture.ID != cl.lectureID || sess.Lecture.Title != "카카오톡 기초" {
		t.Fatalf("created: %+v", sess)
	}
	if want := srv.URL + "/qr/" + sess.SessionCode + ".png"; sess.QRCodeURL != want {
		t.Fatalf("qr_code_url %q, want %q", sess.QRCodeURL, want)
	}
	base := fmt.Sprintf("/api/sessions/%d", sess.SessionID)

	teacher := mustDial(t, srv, fmt.Sprintf("/ws/session/%d/instructor/", sess.SessionID), cl.instructor.Token)
	var snap participants
	teacher.Expect(t, "participants").Decode(t, &snap)
	if snap.SessionID != sess.SessionID || snap.TotalCount != 0 || len(snap.Participants) != 0 {
		t.Fatalf("instructor snapshot: %+v", snap)
	}

	const n = 30
	students := srv.FastUsers(t, domain.RoleStudent, "학생", n)
	sockets := make([]*socket, n)
	// Everyone looks the session up by its code and joins at once.
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			r := srv.Get(t, "/api/sessions/"+sess.SessionCode, students[i].Token)
			if r.Status != 200 {
				errs <- fmt.Sprintf("by code: %d %s", r.Status, r.Body)
				return
			}
			r = srv.Post(t, base+"/join", students[i].Token, map[string]any{"user_id": students[i].ID})
			if r.Status != 201 {
				errs <- fmt.Sprintf("join: %d %s", r.Status, r.Body)
				return
			}
			var j struct {
				UserID int64  `json:"user_id"`
				Status string `json:"status"`
			}
			_ = json.Unmarshal(r.Body, &j)
			if j.UserID != students[i].ID || j.Status != "WAITING" {
				errs <- fmt.Sprintf("join answer: %s", r.Body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	var lastPos uint64
	joined := map[int64]bool{}
	for i := range n {
		var d studentEvent
		f := teacher.Expect(t, "student_joined")
		f.Decode(t, &d)
		if f.Position <= lastPos || d.Total != i+1 || d.Name == "" || d.Email == "" || joined[d.UserID] {
			t.Fatalf("student_joined #%d (after position %d): %s", i, lastPos, f.Raw)
		}
		joined[d.UserID], lastPos = true, f.Position
	}
	for i := range n {
		sockets[i] = mustDial(t, srv, fmt.Sprintf("/ws/session/%d/student", sess.SessionID), students[i].Token)
	}
	for i := range n {
		f := sockets[i].Expect(t, "session_state")
		var c current
		f.Decode(t, &c)
		if c.Status != "WAITING" || c.CurrentSubtask != nil || f.Position == 0 {
			t.Fatalf("student %d snapshot: %s", i, f.Raw)
		}
	}
	p := getParticipants(t, srv, sess.SessionID, cl.instructor.Token)
	if p.TotalCount != n || statusOf(p, students[0].ID) != "WAITING" {
		t.Fatalf("participants before start: %+v", p)
	}

	// received checks that every student gets typ next, with a position
	// above their previous one, and returns the messages.
	lastSeen := make([]uint64, n)
	received := func(typ string) []frame {
		t.Helper()
		out := make([]frame, n)
		for i := range n {
			f := sockets[i].Expect(t, typ)
			if f.Position <= lastSeen[i] {
				t.Fatalf("student %d: %s at position %d after %d", i, typ, f.Position, lastSeen[i])
			}
			lastSeen[i] = f.Position
			if i > 0 && !bytes.Equal(f.Raw, out[0].Raw) {
				t.Fatalf("students got different %s: %s vs %s", typ, f.Raw, out[0].Raw)
			}
			out[i] = f
		}
		return out
	}

	// Start at the lecture's first subtask.
	var started struct {
		Status         string  `json:"status"`
		StartedAt      string  `json:"started_at"`
		CurrentSubtask subtask `json:"current_subtask"`
		Active         int     `json:"active_participants"`
	}
	apptest.Must(t, srv.Post(t, base+"/start", cl.instructor.Token, map[string]any{"message": "수업을 시작하겠습니다"}), 200).Decode(t, &started)
	if started.Status != "IN_PROGRESS" || started.CurrentSubtask.ID != cl.subtasks[0].ID || started.Active != n {
		t.Fatalf("start: %+v", started)
	}
	f := received("session_started")[0]
	var ss struct {
		SessionID         int64   `json:"session_id"`
		StartedAt         string  `json:"started_at"`
		CurrentSubtask    subtask `json:"current_subtask"`
		InstructorMessage string  `json:"instructor_message"`
	}
	f.Decode(t, &ss)
	if ss.SessionID != sess.SessionID || ss.CurrentSubtask != cl.subtasks[0] || ss.InstructorMessage != "수업을 시작하겠습니다" || ss.StartedAt != started.StartedAt {
		t.Fatalf("session_started: %s (start answered %+v)", f.Raw, started)
	}
	cur := getCurrent(t, srv, sess.SessionID, students[3].Token)
	if cur.Status != "IN_PROGRESS" || *cur.CurrentSubtask != cl.subtasks[0] || cur.Active != n || cur.Message != "수업을 시작하겠습니다" || *cur.StartedAt != started.StartedAt {
		t.Fatalf("current after start: %+v", cur)
	}
	if p := getParticipants(t, srv, sess.SessionID, cl.instructor.Token); statusOf(p, students[0].ID) != "ACTIVE" {
		t.Fatalf("participants after start: %+v", p)
	}

	// Three steps; students complete each step as it comes.
	for step := 1; step <= 3; step++ {
		msg := fmt.Sprintf("단계 %d로 넘어갑니다", step)
		var next struct {
			Previous subtask `json:"previous_subtask"`
			Current  subtask `json:"current_subtask"`
		}
		apptest.Must(t, srv.Post(t, base+"/next-step", cl.instructor.Token, map[string]any{"message": msg}), 200).Decode(t, &next)
		if next.Previous.ID != cl.subtasks[step-1].ID || next.Previous.Title != cl.subtasks[step-1].Title || next.Current.ID != cl.subtasks[step].ID {
			t.Fatalf("next-step %d: %+v", step, next)
		}
		var sc stepChanged
		received("step_changed")[0].Decode(t, &sc)
		if sc.PreviousSubtaskID != cl.subtasks[step-1].ID || sc.CurrentSubtask != cl.subtasks[step] || sc.InstructorMessage != msg {
			t.Fatalf("step_changed %d: %+v", step, sc)
		}
		cur := getCurrent(t, srv, sess.SessionID, students[step].Token)
		if *cur.CurrentSubtask != cl.subtasks[step] || cur.Message != msg {
			t.Fatalf("current after step %d: %+v", step, cur)
		}
		// Before moving on, students 0..9 had completed the previous step.
		for i := range 10 {
			apptest.Must(t, srv.Post(t, "/api/progress/update", students[i].Token, map[string]any{"subtask_id": cl.subtasks[step-1].ID, "status": "COMPLETED"}), 200)
		}
	}
	// Nothing follows the last subtask.
	if r := srv.Post(t, base+"/next-step", cl.instructor.Token, nil); r.Status != 409 || r.ErrorCode() != "INVALID_STATE" {
		t.Fatalf("next-step after the last: %d %s", r.Status, r.Body)
	}
	// The instructor saw the 30 progress reports, each naming its student.
	for range 30 {
		var d studentEvent
		f := teacher.Expect(t, "student_progress")
		f.Decode(t, &d)
		if d.Status != "COMPLETED" || d.Name == "" || d.CompletedAt == nil || f.Position <= lastPos {
			t.Fatalf("student_progress: %s", f.Raw)
		}
		lastPos = f.Position
	}

	apptest.Must(t, srv.Post(t, base+"/pause", cl.instructor.Token, map[string]any{"message": "잠시 쉬는 시간입니다"}), 200)
	var pd struct {
		SessionID int64  `json:"session_id"`
		Message   string `json:"instructor_message"`
		Timestamp string `json:"timestamp"`
	}
	received("session_paused")[0].Decode(t, &pd)
	if pd.SessionID != sess.SessionID || pd.Message != "잠시 쉬는 시간입니다" || pd.Timestamp == "" {
		t.Fatalf("session_paused: %+v", pd)
	}
	if cur := getCurrent(t, srv, sess.SessionID, students[0].Token); cur.Status != "PAUSED" {
		t.Fatalf("current after pause: %+v", cur)
	}
	var resumed struct {
		Action  string  `json:"action"`
		Current subtask `json:"current_subtask"`
	}
	apptest.Must(t, srv.Post(t, base+"/resume", cl.instructor.Token, map[string]any{"message": "다시 시작하겠습니다"}), 200).Decode(t, &resumed)
	if resumed.Action != "RESUME" || resumed.Current.ID != cl.subtasks[3].ID {
		t.Fatalf("resume: %+v", resumed)
	}
	received("session_resumed")
	if cur := getCurrent(t, srv, sess.SessionID, students[0].Token); cur.Status != "IN_PROGRESS" || cur.Message != "다시 시작하겠습니다" {
		t.Fatalf("current after resume: %+v", cur)
	}

	// Students 0..4 also complete the last step: they completed every step shown.
	for i := range 5 {
		apptest.Must(t, srv.Post(t, "/api/progress/update", students[i].Token, map[string]any{"subtask_id": cl.subtasks[3].ID, "status": "COMPLETED"}), 200)
	}
	var ended struct {
		Status    string `json:"status"`
		EndedAt   string `json:"ended_at"`
		Completed int    `json:"completed_participants"`
		Total     int    `json:"total_participants"`
		Message   string `json:"message"`
	}
	apptest.Must(t, srv.Post(t, base+"/end", cl.instructor.Token, map[string]any{"message": "수고하셨습니다!"}), 200).Decode(t, &ended)
	if ended.Status != "REVIEW_MODE" || ended.Completed != 5 || ended.Total != n {
		t.Fatalf("end: %+v", ended)
	}
	var se struct {
		EndedAt    string `json:"ended_at"`
		ReviewMode bool   `json:"review_mode_enabled"`
	}
	received("session_ended")[0].Decode(t, &se)
	if !se.ReviewMode || se.EndedAt != ended.EndedAt {
		t.Fatalf("session_ended: %+v, end answered %+v", se, ended)
	}
	if cur := getCurrent(t, srv, sess.SessionID, students[0].Token); cur.Status != "REVIEW_MODE" || *cur.CurrentSubtask != cl.subtasks[3] {
		t.Fatalf("current after end: %+v", cur)
	}
	for i := range n {
		sockets[i].Quiet(t, 50*time.Millisecond)
	}
	// my-active: the session ended, so nothing is active.
	r := srv.Get(t, "/api/sessions/my-active", students[0].Token)
	if r.Status != 404 || !strings.Contains(string(r.Body), `"active_session":null`) {
		t.Fatalf("my-active after end: %d %s", r.Status, r.Body)
	}
}

// TestResumeWithAfter kills a student's socket mid-class; the instructor
// moves two steps; the student reconnects with ?after= and gets both, in
// order, without a snapshot, then live messages.
func TestResumeWithAfter(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 4)
	sess := cl.open(t)
	base := fmt.Sprintf("/api/sessions/%d", sess.SessionID)
	student := srv.FastUsers(t, domain.RoleStudent, "김학생", 1)[0]
	apptest.Must(t, srv.Post(t, base+"/join", student.Token, map[string]any{"session_code": sess.SessionCode}), 201)
	path := fmt.Sprintf("/ws/session/%d/student/", sess.SessionID)
	s := mustDial(t, srv, path, student.Token)
	s.Expect(t, "session_state")
	apptest.Must(t, srv.Post(t, base+"/start", cl.instructor.Token, nil), 200)
	last := s.Expect(t, "session_started").Position
	s.Close()

	apptest.Must(t, srv.Post(t, base+"/next-step", cl.instructor.Token, map[string]any{"message": "둘"}), 200)
	apptest.Must(t, srv.Post(t, base+"/next-step", cl.instructor.Token, map[string]any{"message": "셋"}), 200)

	s = mustDial(t, srv, fmt.Sprintf("%s?after=%d", path, last), student.Token)
	var a, b stepChanged
	fa := s.Expect(t, "step_changed")
	fa.Decode(t, &a)
	fb := s.Expect(t, "step_changed")
	fb.Decode(t, &b)
	if a.CurrentSubtask.ID != cl.subtasks[1].ID || b.CurrentSubtask.ID != cl.subtasks[2].ID || a.InstructorMessage != "둘" || !(last < fa.Position && fa.Position < fb.Position) {
		t.Fatalf("missed steps: %s then %s", fa.Raw, fb.Raw)
	}
	apptest.Must(t, srv.Post(t, base+"/next-step", cl.instructor.Token, nil), 200)
	var c stepChanged
	fc := s.Expect(t, "step_changed")
	fc.Decode(t, &c)
	if c.CurrentSubtask.ID != cl.subtasks[3].ID || fc.Position <= fb.Position {
		t.Fatalf("live step after resuming: %s", fc.Raw)
	}
}

// TestSocketRefusals: a bad token closes with 4401; a student who is not a
// participant, another instructor, and a student on the instructor socket
// close with 4403.
func TestSocketRefusals(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 1)
	sess := cl.open(t)
	member := srv.FastUsers(t, domain.RoleStudent, "참가자", 1)[0]
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/sessions/%d/join", sess.SessionID), member.Token, map[string]any{"session_code": sess.SessionCode}), 201)
	stranger := srv.FastUsers(t, domain.RoleStudent, "외부인", 1)[0]
	other := srv.FastUsers(t, domain.RoleInstructor, "다른강사", 1)[0]
	studentPath := fmt.Sprintf("/ws/session/%d/student/", sess.SessionID)
	teacherPath := fmt.Sprintf("/ws/session/%d/instructor/", sess.SessionID)
	cases := []struct {
		name, path, token string
		code              int
	}{
		{"bad_token", studentPath, "not-a-token", 4401},
		{"no_token", teacherPath, "", 4401},
		{"student_not_a_participant", studentPath, stranger.Token, 4403},
		{"student_on_instructor_socket", teacherPath, member.Token, 4403},
		{"another_instructor", teacherPath, other.Token, 4403},
		{"unknown_session", "/ws/session/999999/student/", member.Token, 4404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, resp, err := dial(t, srv, tc.path, tc.token)
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			if code := s.CloseCode(t); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
	// The Authorization header works as well as ?token=, and the admin may watch.
	admin := srv.Admin(t)
	for _, tok := range []string{member.Token, admin.Token} {
		s, _, err := dialHeader(srv, studentPath, tok)
		if err != nil {
			t.Fatal(err)
		}
		s.Expect(t, "session_state")
		s.Close()
	}
	mustDial(t, srv, teacherPath, admin.Token).Expect(t, "participants")
}

func dialHeader(srv *apptest.Server, path, token string) (*socket, *http.Response, error) {
	return dialWith(srv.WSURL(path), http.Header{"Authorization": {"Bearer " + token}})
}

// TestDisconnectAndReconnect: a participant with no socket for the
// (shortened) timeout during a live class becomes DISCONNECTED and the
// instructor hears of it; a new socket makes them ACTIVE again.
func TestDisconnectAndReconnect(t *testing.T) {
	prev := app.SessionPresenceTimeout
	app.SessionPresenceTimeout = time.Second
	t.Cleanup(func() { app.SessionPresenceTimeout = prev })
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 2)
	sess := cl.open(t)
	base := fmt.Sprintf("/api/sessions/%d", sess.SessionID)
	stays := srv.FastUsers(t, domain.RoleStudent, "남는학생", 1)[0]
	leaves := srv.FastUsers(t, domain.RoleStudent, "나가는학생", 1)[0]
	for _, u := range []apptest.User{stays, leaves} {
		apptest.Must(t, srv.Post(t, base+"/join", u.Token, map[string]any{"session_code": sess.SessionCode}), 201)
	}
	teacher := mustDial(t, srv, fmt.Sprintf("/ws/session/%d/instructor/", sess.SessionID), cl.instructor.Token)
	teacher.Expect(t, "participants")
	path := fmt.Sprintf("/ws/session/%d/student/", sess.SessionID)
	staySock := mustDial(t, srv, path, stays.Token)
	staySock.Expect(t, "session_state")
	leaveSock := mustDial(t, srv, path, leaves.Token)
	leaveSock.Expect(t, "session_state")

	// Before the start nobody is disconnected, socket or not.
	apptest.Must(t, srv.Post(t, base+"/start", cl.instructor.Token, nil), 200)
	leaveSock.Expect(t, "session_started")
	leaveSock.Close()

	var d studentEvent
	f := teacher.Expect(t, "student_disconnected")
	f.Decode(t, &d)
	if d.UserID != leaves.ID || d.Name != leaves.Name || d.Active != 1 || d.LastActiveAt == "" {
		t.Fatalf("student_disconnected: %s", f.Raw)
	}
	p := getParticipants(t, srv, sess.SessionID, cl.instructor.Token)
	if statusOf(p, leaves.ID) != "DISCONNECTED" || statusOf(p, stays.ID) != "ACTIVE" {
		t.Fatalf("participants after the timeout: %+v", p)
	}

	back := mustDial(t, srv, path, leaves.Token)
	back.Expect(t, "session_state")
	eventually(t, "the participant to be ACTIVE again", func() bool {
		return statusOf(getParticipants(t, srv, sess.SessionID, cl.instructor.Token), leaves.ID) == "ACTIVE"
	})
	// The one who stayed never disconnected.
	teacher.Quiet(t, 1500*time.Millisecond)
}

// TestQRImage: the QR image is a real PNG, different per code, and 404 for an unknown code.
func TestQRImage(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 1)
	a, b := cl.open(t), cl.open(t)
	if a.SessionCode == b.SessionCode {
		t.Fatalf("two open sessions share code %s", a.SessionCode)
	}
	var imgs [][]byte
	for _, s := range []created{a, b} {
		r := srv.Get(t, strings.TrimPrefix(s.QRCodeURL, srv.URL), "")
		if r.Status != 200 || r.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("qr: %d %s", r.Status, r.Header)
		}
		img, err := png.Decode(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatalf("qr is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() < 100 || b.Dx() != b.Dy() {
			t.Fatalf("qr image is %v", b)
		}
		imgs = append(imgs, r.Body)
	}
	if bytes.Equal(imgs[0], imgs[1]) {
		t.Fatal("two codes gave the same image")
	}
	unknown := "ZZZZZZ"
	if a.SessionCode == unknown || b.SessionCode == unknown {
		unknown = "YYYYYY"
	}
	for _, path := range []string{"/qr/" + unknown + ".png", "/qr/" + a.SessionCode + ".gif", "/qr/abc.png"} {
		if r := srv.Get(t, path, ""); r.Status != 404 {
			t.Fatalf("%s: %d", path, r.Status)
		}
	}
}
