package analytics_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockstep/lockstep/analytics"
	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
)

type subtask struct {
	ID             int64  `json:"id"`
	Title          string `json:"title"`
	GuideText      string `json:"guide_text"`
	VoiceGuideText string `json:"voice_guide_text"`
}

type class struct {
	srv        *apptest.Server
	instructor apptest.User
	analyst    apptest.User
	students   []apptest.User
	lectureID  int64
	sessionID  int64
	subtasks   []subtask
	marks      []time.Time
	teacher    *socket
	pupil      *socket
}

type event struct {
	Position   uint64          `json:"position"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   map[string]any  `json:"metadata"`
	OccurredAt time.Time       `json:"occurred_at"`
}

type eventsPage struct {
	SessionID int64   `json:"session_id"`
	Events    []event `json:"events"`
	NextAfter *uint64 `json:"next_after"`
}

type state struct {
	SessionID      int64    `json:"session_id"`
	At             string   `json:"at"`
	Position       uint64   `json:"position"`
	Status         *string  `json:"status"`
	CurrentSubtask *subtask `json:"current_subtask"`
	Participants   []struct {
		UserID    int64   `json:"user_id"`
		Name      string  `json:"name"`
		Status    string  `json:"status"`
		Completed []int64 `json:"completed_subtask_ids"`
	} `json:"participants"`
	Open []struct {
		HelpRequestID int64  `json:"help_request_id"`
		UserID        int64  `json:"user_id"`
		SubtaskID     int64  `json:"subtask_id"`
		Status        string `json:"status"`
	} `json:"open_help_requests"`
}

func (c *class) mark() { c.marks = append(c.marks, time.Now().UTC()) }

func (c *class) post(t *testing.T, path, token string, body any, status int) *apptest.Response {
	t.Helper()
	return apptest.Must(t, c.srv.Post(t, path, token, body), status)
}

// runClass builds a lecture of three subtasks (task 1: two, task 2: one)
// and runs a class with three students through the real API and sockets,
// taking an instant (mark) after each step.
func runClass(t *testing.T) *class {
	srv := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.Workers = false })) // no analyzer: help stays ANALYZING
	c := &class{srv: srv, instructor: srv.FastUsers(t, domain.RoleInstructor, "강사", 1)[0], analyst: srv.FastUsers(t, domain.RoleAnalyst, "분석가", 1)[0]}
	var lec struct{ ID int64 }
	c.post(t, "/api/lectures", c.instructor.Token, map[string]any{"title": "카카오톡 기초", "description": "메시지 보내기"}, 201).Decode(t, &lec)
	c.lectureID = lec.ID
	for ti, n := range []int{2, 1} {
		var task struct{ ID int64 }
		c.post(t, fmt.Sprintf("/api/lectures/%d/tasks", lec.ID), c.instructor.Token, map[string]any{"title": fmt.Sprintf("과제 %d", ti+1), "order_index": ti + 1}, 201).Decode(t, &task)
		for si := range n {
			st := subtask{Title: fmt.Sprintf("단계 %d-%d", ti+1, si+1), GuideText: fmt.Sprintf("안내 %d-%d", ti+1, si+1), VoiceGuideText: fmt.Sprintf("음성 %d-%d", ti+1, si+1)}
			var out struct{ ID int64 }
			c.post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task.ID), c.instructor.Token, map[string]any{
				"title": st.Title, "order_index": si + 1, "target_action": "CLICK", "guide_text": st.GuideText, "voice_guide_text": st.VoiceGuideText,
			}, 201).Decode(t, &out)
			st.ID = out.ID
			c.subtasks = append(c.subtasks, st)
		}
	}
	c.students = srv.FastUsers(t, domain.RoleStudent, "학생", 3)

	c.mark() // 0: before the session
	var sess struct {
		SessionID   int64  `json:"session_id"`
		SessionCode string `json:"session_code"`
	}
	c.post(t, fmt.Sprintf("/api/lectures/%d/sessions", lec.ID), c.instructor.Token, map[string]any{"title": "오전반"}, 201).Decode(t, &sess)
	c.sessionID = sess.SessionID
	base := fmt.Sprintf("/api/sessions/%d", c.sessionID)
	c.teacher = mustDial(t, srv, fmt.Sprintf("/ws/session/%d/instructor/", c.sessionID), c.instructor.Token)
	c.teacher.Expect(t, "participants")
	c.mark() // 1: opened
	var participantIDs []int64
	for _, s := range c.students {
		var j struct {
			ParticipantID int64 `json:"participant_id"`
		}
		c.post(t, base+"/join", s.Token, map[string]any{"session_code": sess.SessionCode}, 201).Decode(t, &j)
		participantIDs = append(participantIDs, j.ParticipantID)
	}
	c.pupil = mustDial(t, srv, fmt.Sprintf("/ws/session/%d/student/", c.sessionID), c.students[0].Token)
	c.pupil.Expect(t, "session_state")
	c.mark() // 2: joined
	c.post(t, base+"/start", c.instructor.Token, map[string]any{"message": "시작합니다"}, 200)
	c.mark() // 3: started at subtask 0
	c.post(t, "/api/progress/update", c.students[0].Token, map[string]any{"subtask_id": c.subtasks[0].ID, "status": "COMPLETED"}, 200)
	c.post(t, "/api/progress/update", c.students[1].Token, map[string]any{"subtask_id": c.subtasks[0].ID, "status": "IN_PROGRESS"}, 200)
	c.mark() // 4: student 0 completed subtask 0
	c.post(t, "/api/help/request", c.students[2].Token, map[string]any{"subtask_id": c.subtasks[0].ID}, 201)
	c.mark() // 5: student 2 asked for help
	c.post(t, base+"/next-step", c.instructor.Token, map[string]any{"message": "다음"}, 200)
	c.mark() // 6: subtask 1
	c.post(t, base+"/pause", c.instructor.Token, map[string]any{}, 200)
	c.mark() // 7: paused
	c.post(t, base+"/resume", c.instructor.Token, map[string]any{}, 200)
	c.mark() // 8: resumed
	c.post(t, "/api/progress/update", c.students[0].Token, map[string]any{"subtask_id": c.subtasks[1].ID, "status": "COMPLETED"}, 200)
	c.post(t, base+"/next-step", c.instructor.Token, map[string]any{}, 200)
	c.mark() // 9: subtask 2, student 0 completed subtask 1

	// Student 1's phone is gone: append what the presence tracker would
	// (it only names the session in metadata), and wait for the projector.
	store := postgres.New(srv.DB.Pool, postgres.Config{})
	defer store.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	data, err := commands.Encode([]domain.Event{domain.ParticipantDisconnected{
		ParticipantID: participantIDs[1], SessionID: c.sessionID, LectureID: c.lectureID, UserID: c.students[1].ID,
		LastActiveAt: now.Add(-time.Minute), DisconnectedAt: now,
	}}, eventstore.Metadata{SessionID: c.sessionID, CorrelationID: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), domain.ParticipantStream(c.sessionID, c.students[1].ID), eventstore.Exactly(1), data...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var st string
		if err := srv.DB.Pool.QueryRow(context.Background(), `SELECT status FROM session_participants WHERE session_id = $1 AND user_id = $2`,
			c.sessionID, c.students[1].ID).Scan(&st); err != nil {
			t.Fatal(err)
		}
		if st == "DISCONNECTED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the disconnection was not projected within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mark() // 10: student 1 disconnected
	c.post(t, base+"/end", c.instructor.Token, map[string]any{"message": "끝"}, 200)
	c.mark() // 11: ended
	return c
}

func (c *class) state(t *testing.T, at time.Time) state {
	t.Helper()
	var s state
	apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/analytics/sessions/%d/state?at=%s", c.sessionID, url.QueryEscape(at.Format(time.RFC3339Nano))), c.analyst.Token), 200).Decode(t, &s)
	return s
}

func (c *class) allEvents(t *testing.T) []event {
	t.Helper()
	var p eventsPage
	apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/analytics/sessions/%d/events?limit=1000", c.sessionID), c.analyst.Token), 200).Decode(t, &p)
	if p.NextAfter != nil || p.SessionID != c.sessionID {
		t.Fatalf("one page of 1000: session %d next_after %v", p.SessionID, *p.NextAfter)
	}
	return p.Events
}

// liveFrames reads what the instructor socket and student 0's socket
// received during the class (after their snapshots), merged in position order.
func (c *class) liveFrames(t *testing.T) [][]byte {
	t.Helper()
	var teacher, pupil []frame
	for _, typ := range []string{"student_joined", "student_joined", "student_joined", "student_progress", "student_progress", "student_help_request", "student_progress", "student_disconnected"} {
		teacher = append(teacher, c.teacher.Expect(t, typ))
	}
	for _, typ := range []string{"session_started", "step_changed", "session_paused", "session_resumed", "step_changed", "session_ended"} {
		pupil = append(pupil, c.pupil.Expect(t, typ))
	}
	all := append(teacher, pupil...)
	slices.SortFunc(all, func(a, b frame) int { return int(int64(a.Position) - int64(b.Position)) })
	out := make([][]byte, len(all))
	for i, f := range all {
		out[i] = f.Raw
	}
	return out
}

func replayed(t *testing.T, c *class, query string) [][]byte {
	t.Helper()
	s := mustDial(t, c.srv, fmt.Sprintf("/ws/replay/session/%d/?%s", c.sessionID, query), c.analyst.Token)
	var out [][]byte
	for _, f := range untilFinished(t, s) {
		out = append(out, f.Raw)
	}
	return out
}

func sameFrames(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: message %d is\n%s\nwant\n%s", what, i, got[i], want[i])
		}
	}
}

func TestClassroom(t *testing.T) {
	t.Parallel()
	c := runClass(t)
	events := c.allEvents(t)
	live := c.liveFrames(t)
	st0, st1, st2 := c.subtasks[0], c.subtasks[1], c.subtasks[2]
	s := c.students

	t.Run("export_order_and_content", func(t *testing.T) {
		count := map[string]int{}
		for i, e := range events {
			if i > 0 && e.Position <= events[i-1].Position {
				t.Fatalf("event %d at %d after %d", i, e.Position, events[i-1].Position)
			}
			if e.Metadata["event_id"] == nil || e.Version < 1 || e.OccurredAt.IsZero() || len(e.Data) == 0 {
				t.Fatalf("incomplete event: %+v", e)
			}
			ok := false
			for _, p := range []string{"session-", "participant-", "progress-", "help-"} {
				ok = ok || strings.HasPrefix(e.Stream, p)
			}
			if !ok {
				t.Fatalf("event of stream %s in a classroom", e.Stream)
			}
			count[e.Type]++
		}
		want := map[string]int{
			"SessionOpened": 1, "ParticipantJoined": 3, "StudentEnrolled": 3, "SessionStarted": 1, "SubtaskCompleted": 2,
			"SubtaskStarted": 1, "HelpRequested": 1, "StepChanged": 2, "SessionPaused": 1, "SessionResumed": 1,
			"ParticipantDisconnected": 1, "SessionEnded": 1,
		}
		for typ, n := range want {
			if count[typ] != n {
				t.Errorf("%d %s, want %d (all: %v)", count[typ], typ, n, count)
			}
		}
		if len(events) != 18 {
			t.Errorf("%d events, want 18: %v", len(events), count)
		}
	})

	t.Run("paging", func(t *testing.T) {
		var got []event
		after := uint64(0)
		pages := 0
		for {
			var p eventsPage
			apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/analytics/sessions/%d/events?after=%d&limit=4", c.sessionID, after), c.instructor.Token), 200).Decode(t, &p)
			pages++
			if len(p.Events) > 4 {
				t.Fatalf("page of %d events with limit 4", len(p.Events))
			}
			got = append(got, p.Events...)
			if p.NextAfter == nil {
				break
			}
			if *p.NextAfter != p.Events[len(p.Events)-1].Position {
				t.Fatalf("next_after %d, last position %d", *p.NextAfter, p.Events[len(p.Events)-1].Position)
			}
			after = *p.NextAfter
		}
		if pages != (len(events)+3)/4+boolInt(len(events)%4 == 0) || len(got) != len(events) {
			t.Fatalf("%d pages, %d events; want %d events", pages, len(got), len(events))
		}
		for i := range events {
			if got[i].Position != events[i].Position || !bytes.Equal(got[i].Data, events[i].Data) {
				t.Fatalf("paged event %d differs: %+v vs %+v", i, got[i], events[i])
			}
		}
	})

	t.Run("ndjson", func(t *testing.T) {
		r := c.srv.Do(t, apptest.Request{Method: "GET", Path: fmt.Sprintf("/api/analytics/sessions/%d/events?after=%d", c.sessionID, events[2].Position),
			Token: c.analyst.Token, Header: map[string]string{"Accept": "application/x-ndjson"}})
		apptest.Must(t, r, 200)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") {
			t.Fatalf("content type %q", ct)
		}
		sc := bufio.NewScanner(bytes.NewReader(r.Body))
		n := 0
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
			if want := events[3+n]; e.Position != want.Position || e.Type != want.Type {
				t.Fatalf("line %d: %s at %d, want %s at %d", n, e.Type, e.Position, want.Type, want.Position)
			}
			n++
		}
		if n != len(events)-3 {
			t.Fatalf("%d lines, want %d", n, len(events)-3)
		}
	})

	t.Run("lecture_history", func(t *testing.T) {
		var p struct {
			Events    []event `json:"events"`
			NextAfter *uint64 `json:"next_after"`
		}
		apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/analytics/lectures/%d/events?limit=1000", c.lectureID), c.instructor.Token), 200).Decode(t, &p)
		pos := map[uint64]bool{}
		content := 0
		for i, e := range p.Events {
			if i > 0 && e.Position <= p.Events[i-1].Position {
				t.Fatal("lecture history out of order")
			}
			pos[e.Position] = true
			if strings.HasPrefix(e.Stream, "lecture-") {
				content++
			}
		}
		for _, e := range events {
			if !pos[e.Position] {
				t.Fatalf("classroom event %s at %d missing from the lecture history", e.Type, e.Position)
			}
		}
		if content != 6 { // LectureCreated, 2 TaskAdded, 3 SubtaskAdded
			t.Fatalf("%d lecture content events, want 6", content)
		}
		var before struct{ Events []event }
		apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/analytics/lectures/%d/events?until=%s", c.lectureID, url.QueryEscape(c.marks[0].Format(time.RFC3339Nano))), c.analyst.Token), 200).Decode(t, &before)
		if len(before.Events) != 6 {
			t.Fatalf("until before the session: %d events, want the 6 content events", len(before.Events))
		}
	})

	// state at the instants between steps
	wantStatus := []string{"", "WAITING", "WAITING", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "PAUSED", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "REVIEW_MODE"}
	wantCurrent := []*subtask{nil, nil, nil, &st0, &st0, &st0, &st1, &st1, &st1, &st2, &st2, &st2}
	checkStates := func(t *testing.T) {
		var lastPos uint64
		for i, m := range c.marks {
			got := c.state(t, m)
			if got.At != m.Format(time.RFC3339Nano) || got.SessionID != c.sessionID {
				t.Fatalf("mark %d: at %q session %d", i, got.At, got.SessionID)
			}
			var wantPos uint64
			for _, e := range events {
				if !e.OccurredAt.After(m) {
					wantPos = e.Position
				}
			}
			if got.Position != wantPos || (i > 1 && got.Position <= lastPos) {
				t.Fatalf("mark %d: position %d, want %d (previous %d)", i, got.Position, wantPos, lastPos)
			}
			lastPos = got.Position
			if (got.Status == nil) != (wantStatus[i] == "") || (got.Status != nil && *got.Status != wantStatus[i]) {
				t.Fatalf("mark %d: status %v, want %q", i, got.Status, wantStatus[i])
			}
			if (got.CurrentSubtask == nil) != (wantCurrent[i] == nil) || (got.CurrentSubtask != nil && *got.CurrentSubtask != *wantCurrent[i]) {
				t.Fatalf("mark %d: current %+v, want %+v", i, got.CurrentSubtask, wantCurrent[i])
			}
			wantParts := 0
			if i >= 2 {
				wantParts = 3
			}
			if len(got.Participants) != wantParts {
				t.Fatalf("mark %d: %d participants, want %d", i, len(got.Participants), wantParts)
			}
			for j, p := range got.Participants {
				if p.UserID != s[j].ID || p.Name != s[j].Name {
					t.Fatalf("mark %d: participant %d is %+v, want %d %s", i, j, p, s[j].ID, s[j].Name)
				}
				status := map[bool]string{true: "WAITING", false: "ACTIVE"}[i < 3]
				if j == 1 && i >= 10 {
					status = "DISCONNECTED"
				}
				var done []int64
				if j == 0 && i >= 4 {
					done = append(done, st0.ID)
				}
				if j == 0 && i >= 9 {
					done = append(done, st1.ID)
				}
				if p.Status != status || !slices.Equal(p.Completed, done) || p.Completed == nil {
					t.Fatalf("mark %d: participant %d is %s with %v, want %s with %v", i, j, p.Status, p.Completed, status, done)
				}
			}
			if wantOpen := i >= 5; (len(got.Open) == 1) != wantOpen || len(got.Open) > 1 {
				t.Fatalf("mark %d: open help requests %+v", i, got.Open)
			} else if wantOpen && (got.Open[0].UserID != s[2].ID || got.Open[0].SubtaskID != st0.ID || got.Open[0].Status != "ANALYZING") {
				t.Fatalf("mark %d: open help request %+v", i, got.Open[0])
			}
		}
	}
	t.Run("state_at_each_instant", checkStates)

	t.Run("state_refusals", func(t *testing.T) {
		for _, q := range []string{"", "?at=yesterday", "?at=2025-10-28T10:00:00"} {
			if r := c.srv.Get(t, fmt.Sprintf("/api/analytics/sessions/%d/state%s", c.sessionID, q), c.analyst.Token); r.Status != 400 || r.ErrorCode() != "INVALID_REQUEST" {
				t.Fatalf("state%s: %d %s", q, r.Status, r.Body)
			}
		}
	})

	t.Run("replay_equals_live", func(t *testing.T) {
		sameFrames(t, "replay at speed 0", replayed(t, c, "speed=0"), live)
	})

	t.Run("replay_keeps_the_gaps", func(t *testing.T) {
		first, last := time.Time{}, time.Time{}
		byPos := map[uint64]time.Time{}
		for _, e := range events {
			byPos[e.Position] = e.OccurredAt
		}
		for _, raw := range live {
			var f frame
			_ = json.Unmarshal(raw, &f)
			if first.IsZero() {
				first = byPos[f.Position]
			}
			last = byPos[f.Position]
		}
		span := last.Sub(first)
		// Played at a speed that makes the whole class last 400 ms.
		speed := float64(span) / float64(400*time.Millisecond)
		start := time.Now()
		got := replayed(t, c, fmt.Sprintf("speed=%g", speed))
		if elapsed := time.Since(start); elapsed < 350*time.Millisecond {
			t.Fatalf("a class of %s at speed %g replayed in %s: the gaps were not kept", span, speed, elapsed)
		}
		sameFrames(t, "timed replay", got, live)
	})

	t.Run("replay_seek_pause_resume", func(t *testing.T) {
		sock := mustDial(t, c.srv, fmt.Sprintf("/ws/replay/session/%d/?speed=0", c.sessionID), c.analyst.Token)
		untilFinished(t, sock)
		var f3 frame
		_ = json.Unmarshal(live[3], &f3)
		sock.Send(t, map[string]any{"type": "seek", "position": f3.Position})
		var again [][]byte
		for _, f := range untilFinished(t, sock) {
			again = append(again, f.Raw)
		}
		sameFrames(t, "after seek", again, live[3:])
		// Nearly frozen: the first message, then the gaps last for ages.
		slow := mustDial(t, c.srv, fmt.Sprintf("/ws/replay/session/%d/?speed=0.000001", c.sessionID), c.analyst.Token)
		if f := slow.Next(t); !bytes.Equal(f.Raw, live[0]) {
			t.Fatalf("first message %s", f.Raw)
		}
		slow.Send(t, map[string]any{"type": "pause"})
		slow.Send(t, map[string]any{"type": "speed", "speed": 0})
		slow.Quiet(t, 200*time.Millisecond) // paused: nothing
		slow.Send(t, map[string]any{"type": "resume"})
		var rest [][]byte
		for _, f := range untilFinished(t, slow) {
			rest = append(rest, f.Raw)
		}
		sameFrames(t, "after resume", rest, live[1:])
	})

	xapiOf := func(t *testing.T) ([]byte, []map[string]any) {
		r := apptest.Must(t, c.srv.Get(t, fmt.Sprintf("/api/analytics/sessions/%d/xapi", c.sessionID), c.analyst.Token), 200)
		var out struct {
			Statements []map[string]any `json:"statements"`
		}
		r.Decode(t, &out)
		return r.Body, out.Statements
	}
	body1, statements := xapiOf(t)
	t.Run("xapi", func(t *testing.T) {
		reg := analytics.Registration(c.sessionID).String()
		byPos := map[float64]event{}
		for _, e := range events {
			byPos[float64(e.Position)] = e
		}
		if problems := lrsValidate(t, statements); len(problems) > 0 {
			t.Fatalf("Learning Locker's xAPI validator refuses the export:\n%s", strings.Join(problems, "\n"))
		}
		verbs := map[string]int{}
		ids := map[string]bool{}
		for i, st := range statements {
			if errs := validateStatement(st); len(errs) > 0 {
				b, _ := json.MarshalIndent(st, "", "  ")
				t.Fatalf("statement %d is not valid xAPI 1.0.3:\n%s\n%s", i, strings.Join(errs, "\n"), b)
			}
			ctx := st["context"].(map[string]any)
			if ctx["registration"] != reg {
				t.Fatalf("statement %d registration %v, want %s", i, ctx["registration"], reg)
			}
			acc := st["actor"].(map[string]any)["account"].(map[string]any)
			if acc["homePage"] != c.srv.URL {
				t.Fatalf("actor homePage %v, want %s", acc["homePage"], c.srv.URL)
			}
			if !strings.HasPrefix(st["object"].(map[string]any)["id"].(string), c.srv.URL+"/xapi/activities/") {
				t.Fatalf("object id %v", st["object"])
			}
			e := byPos[ctx["extensions"].(map[string]any)[c.srv.URL+"/xapi/extensions/event-position"].(float64)]
			evID := uuid.MustParse(e.Metadata["event_id"].(string))
			if st["id"] != analytics.StatementID(evID).String() || ids[st["id"].(string)] {
				t.Fatalf("statement %d id %v for event %s", i, st["id"], evID)
			}
			ids[st["id"].(string)] = true
			verb := strings.TrimPrefix(st["verb"].(map[string]any)["id"].(string), "http://adlnet.gov/expapi/verbs/")
			verbs[verb]++
			if ts, _ := time.Parse(time.RFC3339Nano, st["timestamp"].(string)); !ts.Equal(e.OccurredAt) {
				t.Fatalf("statement %d timestamp %v, event at %v", i, st["timestamp"], e.OccurredAt)
			}
		}
		if strings.Contains(string(body1), "@") {
			t.Fatal("the xAPI export contains an email address")
		}
		want := map[string]int{"initialized": 1, "attended": 3, "registered": 3, "completed": 2, "attempted": 1, "asked": 1, "launched": 2, "suspended": 1, "resumed": 1, "exited": 1, "terminated": 1}
		for v, n := range want {
			if verbs[v] != n {
				t.Errorf("%d statements %s, want %d (%v)", verbs[v], v, n, verbs)
			}
		}
		if len(statements) != 17 { // every event but SessionOpened
			t.Fatalf("%d statements, want 17", len(statements))
		}
	})

	// Editing the lecture afterwards changes neither the replay nor the past.
	apptest.Must(t, c.srv.Put(t, fmt.Sprintf("/api/subtasks/%d", st0.ID), c.instructor.Token, map[string]any{"title": "바뀐 제목", "guide_text": "바뀐 안내"}), 200)
	t.Run("edit_changes_nothing", func(t *testing.T) {
		checkStates(t)
		sameFrames(t, "replay after the edit", replayed(t, c, "speed=0"), live)
		if body2, _ := xapiOf(t); !bytes.Equal(body1, body2) {
			t.Fatal("the xAPI export changed after the lecture was edited")
		}
	})

	t.Run("access", func(t *testing.T) {
		other := c.srv.FastUsers(t, domain.RoleInstructor, "남강사", 1)[0]
		admin := c.srv.Admin(t)
		paths := []string{
			fmt.Sprintf("/api/analytics/sessions/%d/events", c.sessionID),
			fmt.Sprintf("/api/analytics/sessions/%d/state?at=%s", c.sessionID, url.QueryEscape(c.marks[5].Format(time.RFC3339))),
			fmt.Sprintf("/api/analytics/sessions/%d/xapi", c.sessionID),
			fmt.Sprintf("/api/analytics/lectures/%d/events", c.lectureID),
		}
		for _, p := range paths {
			for _, tc := range []struct {
				who    string
				token  string
				status int
			}{{"owner", c.instructor.Token, 200}, {"analyst", c.analyst.Token, 200}, {"admin", admin.Token, 200},
				{"student", s[0].Token, 403}, {"other_instructor", other.Token, 403}, {"nobody", "", 401}} {
				if r := c.srv.Get(t, p, tc.token); r.Status != tc.status {
					t.Errorf("%s %s: %d, want %d: %s", tc.who, p, r.Status, tc.status, r.Body)
				}
			}
		}
		for _, p := range []string{"/api/analytics/sessions/999999/events", "/api/analytics/sessions/999999/xapi", "/api/analytics/lectures/999999/events"} {
			if r := c.srv.Get(t, p, c.analyst.Token); r.Status != 404 || r.ErrorCode() != "NOT_FOUND" {
				t.Errorf("%s: %d %s", p, r.Status, r.Body)
			}
		}
		for _, q := range []string{"limit=0", "limit=1001", "after=-1", "include=everything"} {
			if r := c.srv.Get(t, fmt.Sprintf("/api/analytics/sessions/%d/events?%s", c.sessionID, q), c.analyst.Token); r.Status != 400 {
				t.Errorf("events?%s: %d", q, r.Status)
			}
		}
		ws := fmt.Sprintf("/ws/replay/session/%d/", c.sessionID)
		for _, tc := range []struct {
			who, path, token string
			code             int
		}{{"bad_token", ws, "nope", 4401}, {"student", ws, s[0].Token, 4403}, {"other_instructor", ws, other.Token, 4403}, {"unknown", "/ws/replay/session/999999/", c.analyst.Token, 4404}} {
			sock, err := dial(t, c.srv, tc.path, tc.token)
			if err != nil {
				t.Fatalf("%s: %v", tc.who, err)
			}
			if code := sock.CloseCode(t); code != tc.code {
				t.Errorf("%s: close %d, want %d", tc.who, code, tc.code)
			}
		}
		// The owner may replay.
		sameFrames(t, "owner's replay", replayedAs(t, c, c.instructor.Token), live)
	})
}

func replayedAs(t *testing.T, c *class, token string) [][]byte {
	t.Helper()
	s := mustDial(t, c.srv, fmt.Sprintf("/ws/replay/session/%d?speed=0", c.sessionID), token)
	var out [][]byte
	for _, f := range untilFinished(t, s) {
		out = append(out, f.Raw)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var _ = http.StatusOK
