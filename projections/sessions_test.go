package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/outbox"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

type announced struct{ from, to uint64 }

type fakeAnnouncer struct {
	calls     []announced
	delivered []outbox.Message // as recorded, without a read back
}

func (a *fakeAnnouncer) Announce(_ context.Context, producer string, from, to uint64) {
	if producer == projections.SessionsProjector {
		a.calls = append(a.calls, announced{from, to})
	}
}

func (a *fakeAnnouncer) Deliver(_ context.Context, producer string, msgs []outbox.Message) {
	if producer == projections.SessionsProjector && len(msgs) > 0 {
		a.calls = append(a.calls, announced{msgs[0].Position, msgs[len(msgs)-1].Position})
		a.delivered = append(a.delivered, msgs...)
	}
}

func messagesText(msgs []outbox.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s %d %s\n", m.Channel, m.Position, m.Payload)
	}
	return b.String()
}

func testHelpMessage(_ context.Context, _ pgx.Tx, r projections.Record) (int64, any, bool, error) {
	var d struct {
		SessionID int64 `json:"session_id"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || d.SessionID == 0 {
		return 0, nil, false, err
	}
	return d.SessionID, map[string]any{"type": "student_help_request", "data": map[string]any{"help_request_id": 7}}, true, nil
}

// TestSessionsProjector: read models, step log and socket messages of a
// class (including a hook's instructor message); a rebuild from zero gives
// the same read models and messages.
func TestSessionsProjector(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := postgres.New(db.Pool, postgres.Config{})
	ann := &fakeAnnouncer{}
	proj := projections.NewSessions(ann).WithInstructorMessage("TestHelpAsked", testHelpMessage)
	runner := projections.NewRunner(projections.Config{Store: store, Pool: db.Pool, Projector: proj})

	var uid int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, name, role) VALUES ('s@x.test', 'x', '김학생', 'STUDENT') RETURNING id`).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 10, 28, 10, 0, 0, 0, time.UTC)
	step := func(id int64, title string) domain.StepSubtask {
		return domain.StepSubtask{ID: id, TaskID: 1, Title: title, GuideText: title + " 안내", VoiceGuideText: title + " 음성"}
	}
	appendTo := func(stream string, meta eventstore.Metadata, events ...domain.Event) {
		t.Helper()
		data, err := commands.Encode(events, meta)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, stream, eventstore.Any, data...); err != nil {
			t.Fatal(err)
		}
	}
	const sid, lid = 5, 9
	appendTo(domain.LectureStream(lid), eventstore.Metadata{}, domain.LectureCreated{LectureID: lid, InstructorID: 3, Title: "카카오톡", Description: "기초", CreatedAt: at})
	appendTo(domain.SessionStream(sid), eventstore.Metadata{}, domain.SessionOpened{SessionID: sid, LectureID: lid, LectureTitle: "카카오톡", InstructorID: 3, Title: "오전반", SessionCode: "ABC234", OpenedAt: at})
	appendTo(domain.SessionStream(sid), eventstore.Metadata{}, domain.SessionStarted{SessionID: sid, LectureID: lid, CurrentSubtask: step(100, "앱 열기"), InstructorMessage: "시작", StartedAt: at.Add(time.Minute)})
	// Decided while the session was WAITING, appended after the start.
	appendTo(domain.ParticipantStream(sid, uid), eventstore.Metadata{}, domain.ParticipantJoined{ParticipantID: 1, SessionID: sid, LectureID: lid, UserID: uid, Status: domain.ParticipantStatusWaiting, SessionStatus: domain.SessionStatusWaiting, JoinedAt: at})
	appendTo(domain.SessionStream(sid), eventstore.Metadata{}, domain.StepChanged{SessionID: sid, LectureID: lid, PreviousSubtaskID: 100, CurrentSubtask: step(101, "친구 선택"), InstructorMessage: "다음", ChangedAt: at.Add(2 * time.Minute)})
	// Progress without a session id reaches the student's live session.
	appendTo(domain.ProgressStream(lid, uid), eventstore.Metadata{}, domain.SubtaskCompleted{LectureID: lid, UserID: uid, TaskID: 1, SubtaskID: 100, SubtaskTitle: "앱 열기", CompletedAt: at.Add(3 * time.Minute)})
	appendTo(domain.ParticipantStream(sid, uid), eventstore.Metadata{}, domain.ParticipantDisconnected{ParticipantID: 1, SessionID: sid, LectureID: lid, UserID: uid, LastActiveAt: at.Add(3 * time.Minute), DisconnectedAt: at.Add(4 * time.Minute)})
	help, _ := json.Marshal(map[string]any{"session_id": sid})
	if _, err := store.Append(ctx, "test-help-1", eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: "TestHelpAsked", Data: help}); err != nil {
		t.Fatal(err)
	}
	appendTo(domain.SessionStream(sid), eventstore.Metadata{}, domain.SessionPaused{SessionID: sid, LectureID: lid, CurrentSubtaskID: 101, InstructorMessage: "쉬어요", PausedAt: at.Add(5 * time.Minute)})

	catchUp(t, runner, db)
	var status, current, message string
	var count int
	if err := db.Pool.QueryRow(ctx, `SELECT status, current_title, instructor_message, participant_count FROM live_sessions WHERE session_id = $1`, sid).
		Scan(&status, &current, &message, &count); err != nil {
		t.Fatal(err)
	}
	if status != "PAUSED" || current != "친구 선택" || message != "쉬어요" || count != 1 {
		t.Fatalf("session: %s %s %s %d", status, current, message, count)
	}
	var pstatus string
	if err := db.Pool.QueryRow(ctx, `SELECT status FROM session_participants WHERE session_id = $1 AND user_id = $2`, sid, uid).Scan(&pstatus); err != nil {
		t.Fatal(err)
	}
	if pstatus != "DISCONNECTED" {
		t.Fatalf("participant: %s", pstatus)
	}
	want := map[string][]string{
		projections.SessionStudentsChannel(sid):   {"session_started", "step_changed", "session_paused"},
		projections.SessionInstructorChannel(sid): {"student_joined", "student_progress", "student_disconnected", "student_help_request"},
	}
	before := dump(t, db, sid)
	for ch, types := range want {
		if got := messageTypes(t, db, ch); strings.Join(got, ",") != strings.Join(types, ",") {
			t.Fatalf("%s: %v, want %v", ch, got, types)
		}
	}
	if len(ann.calls) == 0 || ann.calls[0].from == 0 {
		t.Fatalf("nothing announced: %v", ann.calls)
	}
	// What was delivered as recorded is what the outbox holds, in order.
	stored, err := outbox.Recorded(ctx, db.Pool, projections.SessionsProjector, 0, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := messagesText(ann.delivered), messagesText(stored); got != want || len(stored) == 0 {
		t.Fatalf("delivered without a read back:\n%s\nthe outbox holds:\n%s", got, want)
	}

	// Rebuilding from zero gives the same read models and messages.
	if err := runner.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	catchUp(t, runner, db)
	if after := dump(t, db, sid); after != before {
		t.Fatalf("rebuild changed the read models:\n%s\nvs\n%s", before, after)
	}
}

// TestSessionsProjectorLateJoinIsActive: a join decided in WAITING but
// projected after SessionStarted shows ACTIVE (domain.DisplayStatus).
func TestSessionsProjectorLateJoinIsActive(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	store := postgres.New(db.Pool, postgres.Config{})
	runner := projections.NewRunner(projections.Config{Store: store, Pool: db.Pool, Projector: projections.NewSessions(nil)})
	at := time.Now().UTC()
	for _, e := range []struct {
		stream string
		ev     domain.Event
	}{
		{domain.SessionStream(1), domain.SessionOpened{SessionID: 1, LectureID: 2, InstructorID: 3, Title: "t", SessionCode: "ABC234", OpenedAt: at}},
		{domain.SessionStream(1), domain.SessionStarted{SessionID: 1, LectureID: 2, CurrentSubtask: domain.StepSubtask{ID: 7, Title: "s"}, StartedAt: at}},
		{domain.ParticipantStream(1, 4), domain.ParticipantJoined{ParticipantID: 1, SessionID: 1, LectureID: 2, UserID: 4, Status: domain.ParticipantStatusWaiting, SessionStatus: domain.SessionStatusWaiting, JoinedAt: at}},
	} {
		data, err := commands.Encode([]domain.Event{e.ev}, eventstore.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, e.stream, eventstore.Any, data...); err != nil {
			t.Fatal(err)
		}
	}
	catchUp(t, runner, db)
	var status string
	if err := db.Pool.QueryRow(ctx, `SELECT status FROM session_participants WHERE session_id = 1 AND user_id = 4`).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "ACTIVE" {
		t.Fatalf("late join projected as %s", status)
	}
}

func messageTypes(t *testing.T, db *pgtest.DB, channel string) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT payload->>'type' FROM live_messages WHERE channel = $1 ORDER BY position`, channel)
	if err != nil {
		t.Fatal(err)
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return types
}

// dump renders the session's read models and messages as text.
func dump(t *testing.T, db *pgtest.DB, sid int64) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT to_jsonb(s) - 'position' FROM live_sessions s WHERE session_id = $1`,
		`SELECT to_jsonb(p) FROM session_participants p WHERE session_id = $1 ORDER BY user_id`,
		`SELECT to_jsonb(c) FROM session_step_control c WHERE session_id = $1 ORDER BY position`,
		`SELECT to_jsonb(m) - 'created_at' FROM live_messages m WHERE channel LIKE 'session:' || $1::bigint || ':%' ORDER BY channel, position`,
	} {
		rows, err := db.Pool.Query(context.Background(), q, sid)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, strings.Join(lines, "\n"))
	}
	return b.String()
}

// catchUp applies every event appended so far. CatchUp alone may stop short:
// the store hides events while an older transaction is open anywhere on the
// server (other tests' databases included), so poll until the head is reached.
func catchUp(t *testing.T, r *projections.Runner, db *pgtest.DB) {
	t.Helper()
	ctx := context.Background()
	var head int64
	if err := db.Pool.QueryRow(ctx, `SELECT max(position) FROM events`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := r.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		var pos int64
		if err := db.Pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, r.Name()).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if pos >= head {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector at %d, head %d", pos, head)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
