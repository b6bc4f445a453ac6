package readapi_test

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// Older adults type codes by hand: a code is found ignoring case, spaces and
// hyphens, by the lookup and by the QR image.
func TestSessionCodeMatchedIgnoringCaseSpacesAndHyphens(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 1)
	sess := cl.open(t)
	code := sess.SessionCode
	if !domain.ValidSessionCode(code) || strings.ContainsAny(code, "0O1I") {
		t.Fatalf("generated code %q", code)
	}
	student := srv.FastUsers(t, domain.RoleStudent, "학생", 1)[0]
	lower := strings.ToLower(code)
	for _, typed := range []string{
		code, lower,
		" " + code[:3] + "-" + code[3:] + " ",
		lower[:2] + " " + lower[2:],
		code[:2] + "-" + lower[2:4] + " - " + code[4:],
	} {
		r := apptest.Must(t, srv.Get(t, "/api/sessions/"+url.PathEscape(typed), student.Token), 200)
		var got struct {
			SessionID   int64  `json:"session_id"`
			SessionCode string `json:"session_code"`
		}
		r.Decode(t, &got)
		if got.SessionID != sess.SessionID || got.SessionCode != code {
			t.Fatalf("%q found %+v, want session %d %s", typed, got, sess.SessionID, code)
		}
	}
	// Still 404 for a code that differs in a letter, or is too short.
	other := "ZZZZZZ"
	if code == other {
		other = "YYYYYY"
	}
	for _, typed := range []string{other, code[:5], code + "A", "my-ac"} {
		if r := srv.Get(t, "/api/sessions/"+url.PathEscape(typed), student.Token); r.Status != 404 || r.ErrorCode() != "NOT_FOUND" {
			t.Fatalf("%q: %d %s", typed, r.Status, r.Body)
		}
	}
	// The QR image of a hand-typed code is the code's own image.
	want := apptest.Must(t, srv.Get(t, "/qr/"+code+".png", ""), 200).Body
	for _, typed := range []string{lower, lower[:3] + "-" + lower[3:], " " + code + " "} {
		r := apptest.Must(t, srv.Get(t, "/qr/"+url.PathEscape(typed)+".png", ""), 200)
		if !bytes.Equal(r.Body, want) {
			t.Fatalf("QR of %q differs from the QR of %s", typed, code)
		}
	}
}

// A subtask without voice_guide_text is spoken from its guide text, then its
// title: every message and view the phone speaks from carries that text.
func TestVoiceGuideTextFallsBackToGuideThenTitle(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 1) // one subtask with voice text (unused here)
	var task struct {
		ID int64 `json:"id"`
	}
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", cl.lectureID), cl.instructor.Token,
		map[string]any{"title": "음성 없는 과제", "order_index": 2}), 201).Decode(t, &task)
	add := func(title, guide string, order int) int64 {
		var out struct {
			ID int64 `json:"id"`
		}
		body := map[string]any{"title": title, "order_index": order, "target_action": "CLICK"}
		if guide != "" {
			body["guide_text"] = guide
		}
		apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task.ID), cl.instructor.Token, body), 201).Decode(t, &out)
		return out.ID
	}
	guideOnly := add("친구 선택하기", "화면 위쪽의 친구 탭을 눌러 보세요.", 1)
	titleOnly := add("채팅방 열기", "", 2)

	sess := cl.open(t)
	student := srv.FastUsers(t, domain.RoleStudent, "학생", 1)[0]
	apptest.Must(t, srv.Get(t, "/api/sessions/"+sess.SessionCode, student.Token), 200)
	base := fmt.Sprintf("/api/sessions/%d", sess.SessionID)
	apptest.Must(t, srv.Post(t, base+"/join", student.Token, map[string]any{}), 201)
	ws := mustDial(t, srv, fmt.Sprintf("/ws/session/%d/student/", sess.SessionID), student.Token)
	ws.Expect(t, "session_state")

	var started struct {
		CurrentSubtask subtask `json:"current_subtask"`
	}
	apptest.Must(t, srv.Post(t, base+"/start", cl.instructor.Token, map[string]any{"first_subtask_id": guideOnly}), 200)
	ws.Expect(t, "session_started").Decode(t, &started)
	if started.CurrentSubtask.ID != guideOnly || started.CurrentSubtask.VoiceGuideText != "화면 위쪽의 친구 탭을 눌러 보세요." {
		t.Fatalf("session_started speaks %q: %+v", started.CurrentSubtask.VoiceGuideText, started.CurrentSubtask)
	}
	if c := getCurrent(t, srv, sess.SessionID, student.Token); c.CurrentSubtask == nil || c.CurrentSubtask.VoiceGuideText != "화면 위쪽의 친구 탭을 눌러 보세요." {
		t.Fatalf("GET current: %+v", c.CurrentSubtask)
	}

	var changed stepChanged
	apptest.Must(t, srv.Post(t, base+"/next-step", cl.instructor.Token, map[string]any{"next_subtask_id": titleOnly}), 200)
	ws.Expect(t, "step_changed").Decode(t, &changed)
	if changed.CurrentSubtask.ID != titleOnly || changed.CurrentSubtask.VoiceGuideText != "채팅방 열기" {
		t.Fatalf("step_changed speaks %q: %+v", changed.CurrentSubtask.VoiceGuideText, changed.CurrentSubtask)
	}

	// A phone that connects now gets the text in its session_state snapshot.
	var snap current
	mustDial(t, srv, fmt.Sprintf("/ws/session/%d/student/", sess.SessionID), student.Token).Expect(t, "session_state").Decode(t, &snap)
	if snap.CurrentSubtask == nil || snap.CurrentSubtask.VoiceGuideText != "채팅방 열기" {
		t.Fatalf("session_state: %+v", snap.CurrentSubtask)
	}
	if c := getCurrent(t, srv, sess.SessionID, student.Token); c.CurrentSubtask == nil || c.CurrentSubtask.VoiceGuideText != "채팅방 열기" {
		t.Fatalf("GET current: %+v", c.CurrentSubtask)
	}
	// The classroom as the analytics state shows it, computed from the events.
	var state struct {
		CurrentSubtask *subtask `json:"current_subtask"`
	}
	at := time.Now().UTC().Add(time.Second).Format(time.RFC3339Nano)
	apptest.Must(t, srv.Get(t, fmt.Sprintf("/api/analytics/sessions/%d/state?at=%s", sess.SessionID, url.QueryEscape(at)), cl.instructor.Token), 200).Decode(t, &state)
	if state.CurrentSubtask == nil || state.CurrentSubtask.VoiceGuideText != "채팅방 열기" {
		t.Fatalf("analytics state: %+v", state.CurrentSubtask)
	}
}
