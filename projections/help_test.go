package projections_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/projections"
)

func appendHelp(t *testing.T, es eventstore.Store, stream string, events ...domain.Event) eventstore.AppendResult {
	t.Helper()
	data, err := commands.Encode(events, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := es.Append(context.Background(), stream, eventstore.Any, data...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestHelpProjectorNotificationsSurviveARebuild(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	es := postgres.New(db.Pool, postgres.Config{})
	var student, instructor int64
	for _, u := range []struct {
		name, role string
		id         *int64
	}{{"김학생", "STUDENT", &student}, {"박강사", "INSTRUCTOR", &instructor}} {
		if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', $2, $3) RETURNING id`,
			u.role+"@x.test", u.name, u.role).Scan(u.id); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2025, 10, 28, 10, 0, 0, 0, time.UTC)
	appendHelp(t, es, domain.LectureStream(1), domain.LectureCreated{LectureID: 1, InstructorID: instructor, Title: "카카오톡 기초", CreatedAt: at})
	req := appendHelp(t, es, domain.HelpStream(5), domain.HelpRequested{
		HelpRequestID: 5, UserID: student, LectureID: 1, InstructorID: instructor, TaskID: 2, SubtaskID: 3, SubtaskTitle: "친구 선택하기",
		SessionID: 7, RequestType: domain.HelpManual, StuckDurationSeconds: 75, RequestedAt: at,
	})
	prov := appendHelp(t, es, domain.HelpStream(5),
		domain.HelpAnalyzed{HelpRequestID: 5, Diagnosis: "친구 탭을 못 찾음", Confidence: 0.8, AnalyzedAt: at},
		domain.HelpProvided{HelpRequestID: 5, HelpResponseID: 9, UserID: student, LectureID: 1, SubtaskID: 3, Responder: domain.ResponderAnalyzer,
			HelpType: domain.HelpTypeText, HelpContent: "친구 탭을 눌러 주세요.", VoiceGuideText: "친구 탭을 눌러 주세요", ProvidedAt: at})

	r := projections.NewRunner(projections.Config{Store: es, Pool: db.Pool, Projector: projections.NewHelp(nil)})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	type note struct {
		ID, User int64
		Type     string
		Message  string
	}
	read := func() []note {
		rows, err := db.Pool.Query(ctx, `SELECT id, user_id, type, message FROM rm_notifications ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[note])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := []note{
		{int64(req.Position), instructor, "HELP_REQUEST", "김학생님이 도움을 요청했습니다"},
		{int64(prov.Position), student, "HELP_AVAILABLE", "'친구 선택하기' 단계에 대한 도움말이 도착했습니다"},
	}
	got := read()
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("notifications %+v\nwant %+v", got, want)
	}
	rows, err := db.Pool.Query(ctx, `SELECT channel || ' ' || payload::text FROM live_messages WHERE producer = 'help' ORDER BY position, channel`)
	if err != nil {
		t.Fatal(err)
	}
	payloads, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(payloads) != 3 || !strings.HasPrefix(payloads[0], projections.HelpInstructorChannel(instructor)+` {"type":"new_help_request"`) ||
		!strings.Contains(payloads[0], `"priority":"HIGH"`) || !strings.Contains(payloads[0], `"lecture":{"id":1,"title":"카카오톡 기초"}`) ||
		!strings.HasPrefix(payloads[1], projections.HelpInstructorChannel(instructor)+` {"type":"help_request_updated"`) ||
		!strings.HasPrefix(payloads[2], projections.HelpUserChannel(student)+` {"type":"HELP_AVAILABLE"`) {
		t.Fatalf("messages %q", payloads)
	}

	// The student read their notification; a rebuild keeps it read.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO notification_reads (notification_id, user_id) VALUES ($1, $2)`, want[1].ID, student); err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("after rebuild %+v", got)
	}
	var unread int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_notifications n LEFT JOIN notification_reads r ON r.notification_id = n.id
		WHERE n.user_id = $1 AND r.notification_id IS NULL`, student).Scan(&unread); err != nil || unread != 0 {
		t.Fatalf("unread after rebuild %d (%v)", unread, err)
	}
	var status string
	var responses int
	if err := db.Pool.QueryRow(ctx, `SELECT status, (SELECT count(*) FROM rm_help_responses) FROM rm_help_requests WHERE id = 5`).Scan(&status, &responses); err != nil ||
		status != "RESOLVED" || responses != 1 {
		t.Fatalf("%s %d %v", status, responses, err)
	}
}

func TestStudentHelpRequestMessage(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	var student int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, name, role) VALUES ('s@x.test', 'x', '김학생', 'STUDENT') RETURNING id`).Scan(&student); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 10, 28, 10, 6, 0, 0, time.UTC)
	e := domain.HelpRequested{HelpRequestID: 5001, UserID: student, LectureID: 1, SubtaskID: 1001, SubtaskTitle: "친구 선택하기",
		SessionID: 12, RequestType: domain.HelpManual, StuckDurationSeconds: 45, RequestedAt: at}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Its signature is the sessions projector's hook's.
	var hook projections.InstructorMessageFunc = projections.StudentHelpRequestMessage
	session, payload, ok, err := hook(ctx, tx, projections.Record{Payload: e})
	if err != nil || !ok || session != 12 {
		t.Fatalf("%d %v %v", session, ok, err)
	}
	b, _ := json.Marshal(payload)
	const want = `{"type":"student_help_request","data":{"help_request_id":5001,"user":{"id":%d,"name":"김학생"},"subtask":{"id":1001,"title":"친구 선택하기"},"request_type":"MANUAL","stuck_duration_seconds":45,"timestamp":"2025-10-28T10:06:00Z"}}`
	if string(b) != strings.Replace(want, "%d", itoa(student), 1) {
		t.Fatalf("%s", b)
	}
	e.SessionID = 0
	if _, _, ok, err := projections.StudentHelpRequestMessage(ctx, tx, projections.Record{Payload: e}); ok || err != nil {
		t.Fatalf("outside a session: %v %v", ok, err)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
