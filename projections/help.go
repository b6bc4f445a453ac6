package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/outbox"
)

// HelpProjector is the name (checkpoint key) of the help projector.
const HelpProjector = "help"

// HelpInstructorChannel is the live channel of an instructor's help socket
// (/ws/dashboard/help-requests/): every help request of their lectures.
func HelpInstructorChannel(instructorID int64) string {
	return "help:instructor:" + strconv.FormatInt(instructorID, 10)
}

// HelpUserChannel is the live channel of a student's help socket (/ws/help/{user_id}).
func HelpUserChannel(userID int64) string {
	return "help:user:" + strconv.FormatInt(userID, 10)
}

// Notification types.
const (
	NotificationHelpRequest   = "HELP_REQUEST"
	NotificationHelpAvailable = "HELP_AVAILABLE"
)

// HighPriorityStuckSeconds: a request whose student has been stuck this long
// (or one the stuck detector raised) has priority HIGH, else NORMAL.
const HighPriorityStuckSeconds = 60

// Help maintains the help read models (rm_help_requests, rm_help_responses,
// rm_help_lectures) and the notifications (rm_notifications; the read flags
// are the plain table notification_reads), and records the messages of the
// help sockets: new_help_request and help_request_updated on the
// instructor's channel, HELP_AVAILABLE on the student's.
//
// A notification's id is the global position of the event it came from, so
// it is the same after a rebuild and its read flag still applies.
type Help struct {
	announcer Announcer
}

// NewHelp returns the help projector; announcer may be nil (no sockets).
func NewHelp(announcer Announcer) *Help { return &Help{announcer: announcer} }

// Name implements Projector.
func (p *Help) Name() string { return HelpProjector }

// HelpTables are the read-model tables the help projector owns.
var HelpTables = []string{"rm_help_requests", "rm_help_responses", "rm_help_lectures", "rm_notifications"}

// Tables implements TableOwner (online rebuild into shadow tables).
func (p *Help) Tables() []string { return HelpTables }

// Pipelined implements Pipelined: its handlers never read an Exec's
// command tag, so a batch's writes go to PostgreSQL in one round trip.
func (*Help) Pipelined() bool { return true }

// Reset implements Projector.
func (p *Help) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE rm_help_requests, rm_help_responses, rm_help_lectures, rm_notifications`)
	return err
}

// AfterCommit implements AfterCommitter: it announces what the batch recorded.
func (p *Help) AfterCommit(ctx context.Context, batch []Record) {
	announceBatch(ctx, p.announcer, HelpProjector, batch, false)
}

// Handle implements Projector.
func (p *Help) Handle(ctx context.Context, tx pgx.Tx, r Record) error {
	switch e := r.Payload.(type) {
	case domain.LectureCreated:
		_, err := tx.Exec(ctx, `INSERT INTO rm_help_lectures (lecture_id, title) VALUES ($1, $2)
			ON CONFLICT (lecture_id) DO UPDATE SET title = EXCLUDED.title`, e.LectureID, e.Title)
		return err
	case domain.LectureUpdated:
		if e.Title == nil {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE rm_help_lectures SET title = $2 WHERE lecture_id = $1`, e.LectureID, *e.Title)
		return err
	case domain.HelpRequested:
		return p.OnHelpRequested(ctx, tx, r, e)
	case domain.HelpAnalyzed:
		return p.OnHelpAnalyzed(ctx, tx, e)
	case domain.HelpProvided:
		return p.OnHelpProvided(ctx, tx, r, e)
	case domain.HelpEscalated:
		return p.OnHelpEscalated(ctx, tx, r, e)
	case domain.HelpFeedbackGiven:
		return p.OnHelpFeedbackGiven(ctx, tx, e)
	}
	return nil
}

// HelpUserRef is a user as help messages name them.
type HelpUserRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// HelpSubtaskRef is a subtask as help messages name it.
type HelpSubtaskRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

// HelpLectureRef is a lecture as help messages name it.
type HelpLectureRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

type helpMessage struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// Priority is a help request's priority on the instructor's socket: HIGH for
// an AUTO request or a student stuck at least HighPriorityStuckSeconds.
func Priority(requestType domain.HelpRequestType, stuckSeconds int) string {
	if requestType == domain.HelpAuto || stuckSeconds >= HighPriorityStuckSeconds {
		return "HIGH"
	}
	return "NORMAL"
}

// OnHelpRequested adds the request, notifies the lecture's instructor
// (HELP_REQUEST) and sends new_help_request on their help socket.
func (p *Help) OnHelpRequested(ctx context.Context, tx pgx.Tx, r Record, e domain.HelpRequested) error {
	var ctxData any
	if len(e.ContextData) > 0 {
		ctxData = string(e.ContextData)
	}
	done, err := changed(ctx, tx, `INSERT INTO rm_help_requests (id, user_id, lecture_id, instructor_id, task_id, subtask_id, subtask_title,
			session_id, request_type, context_data, stuck_duration_seconds, status, requested_at, position)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json, $11, 'ANALYZING', $12, $13) ON CONFLICT (id) DO NOTHING`,
		e.HelpRequestID, e.UserID, e.LectureID, e.InstructorID, e.TaskID, e.SubtaskID, e.SubtaskTitle,
		nullableID(e.SessionID), string(e.RequestType), ctxData, e.StuckDurationSeconds, e.RequestedAt, int64(r.Position))
	if err != nil || !done {
		return err
	}
	name, err := helpUserName(ctx, tx, e.UserID)
	if err != nil {
		return err
	}
	msg := name + "님이 도움을 요청했습니다"
	if e.RequestType == domain.HelpAuto {
		msg = name + "님이 '" + e.SubtaskTitle + "' 단계에서 어려움을 겪고 있는 것 같습니다"
	}
	if err := insertNotification(ctx, tx, r, e.InstructorID, NotificationHelpRequest, msg, e.UserID, name, e.HelpRequestID); err != nil {
		return err
	}
	var title string
	if err := tx.QueryRow(ctx, `SELECT title FROM rm_help_lectures WHERE lecture_id = $1`, e.LectureID).Scan(&title); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return recordHelp(ctx, tx, HelpInstructorChannel(e.InstructorID), r.Position, helpMessage{Type: "new_help_request", Data: struct {
		HelpRequestID        int64                  `json:"help_request_id"`
		Lecture              HelpLectureRef         `json:"lecture"`
		User                 HelpUserRef            `json:"user"`
		Subtask              HelpSubtaskRef         `json:"subtask"`
		Priority             string                 `json:"priority"`
		RequestType          domain.HelpRequestType `json:"request_type"`
		Status               domain.HelpStatus      `json:"status"`
		SessionID            *int64                 `json:"session_id"`
		StuckDurationSeconds int                    `json:"stuck_duration_seconds"`
		Timestamp            time.Time              `json:"timestamp"`
	}{
		e.HelpRequestID, HelpLectureRef{e.LectureID, title}, HelpUserRef{e.UserID, name}, HelpSubtaskRef{e.SubtaskID, e.SubtaskTitle},
		Priority(e.RequestType, e.StuckDurationSeconds), e.RequestType, domain.HelpStatusAnalyzing, nullableID(e.SessionID),
		e.StuckDurationSeconds, e.RequestedAt.UTC(),
	}})
}

// OnHelpAnalyzed records the diagnosis.
func (p *Help) OnHelpAnalyzed(ctx context.Context, tx pgx.Tx, e domain.HelpAnalyzed) error {
	_, err := tx.Exec(ctx, `UPDATE rm_help_requests SET problem_diagnosis = $2, confidence_score = $3, analyzed_at = $4 WHERE id = $1`,
		e.HelpRequestID, e.Diagnosis, e.Confidence, e.AnalyzedAt)
	return err
}

// HelpAvailable is the message a student's help socket receives when help arrives.
type HelpAvailable struct {
	Type          string            `json:"type"`
	HelpRequestID int64             `json:"help_request_id"`
	HelpResponse  HelpResponseEntry `json:"help_response"`
}

// HelpResponseEntry is a help response in messages.
type HelpResponseEntry struct {
	ID             int64            `json:"id"`
	HelpRequestID  int64            `json:"help_request_id"`
	HelpType       domain.HelpType  `json:"help_type"`
	HelpContent    string           `json:"help_content"`
	VoiceGuideText string           `json:"voice_guide_text"`
	Responder      domain.Responder `json:"responder"`
	ProvidedAt     time.Time        `json:"provided_at"`
}

// OnHelpProvided adds the response and resolves the request; the student
// gets a HELP_AVAILABLE notification and message, the instructor's socket
// help_request_updated. A later response (an instructor answering after the
// analyzer, or again) does the same: the newest response is the one shown,
// and resolved_at keeps the first resolution.
func (p *Help) OnHelpProvided(ctx context.Context, tx pgx.Tx, r Record, e domain.HelpProvided) error {
	done, err := changed(ctx, tx, `INSERT INTO rm_help_responses (id, help_request_id, responder, responder_id, help_type, help_content, voice_guide_text, provided_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
		e.HelpResponseID, e.HelpRequestID, string(e.Responder), nullableID(e.ResponderID), string(e.HelpType), e.HelpContent, e.VoiceGuideText, e.ProvidedAt)
	if err != nil || !done {
		return err
	}
	var instructorID int64
	var subtaskTitle string
	err = tx.QueryRow(ctx, `UPDATE rm_help_requests SET status = 'RESOLVED', resolved_at = coalesce(resolved_at, $2) WHERE id = $1
		RETURNING instructor_id, subtask_title`,
		e.HelpRequestID, e.ProvidedAt).Scan(&instructorID, &subtaskTitle)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	msg := "'" + subtaskTitle + "' 단계에 대한 도움말이 도착했습니다"
	var relatedID int64
	var relatedName string
	if e.Responder == domain.ResponderInstructor && e.ResponderID != 0 {
		if relatedName, err = helpUserName(ctx, tx, e.ResponderID); err != nil {
			return err
		}
		relatedID = e.ResponderID
		msg = relatedName + " 강사님이 도움말을 보냈습니다"
	}
	if err := insertNotification(ctx, tx, r, e.UserID, NotificationHelpAvailable, msg, relatedID, relatedName, e.HelpRequestID); err != nil {
		return err
	}
	if err := recordHelp(ctx, tx, HelpUserChannel(e.UserID), r.Position, HelpAvailable{
		Type: "HELP_AVAILABLE", HelpRequestID: e.HelpRequestID,
		HelpResponse: HelpResponseEntry{
			ID: e.HelpResponseID, HelpRequestID: e.HelpRequestID, HelpType: e.HelpType, HelpContent: e.HelpContent,
			VoiceGuideText: domain.SpokenText(e.VoiceGuideText, e.HelpContent, ""), Responder: e.Responder, ProvidedAt: e.ProvidedAt.UTC(),
		},
	}); err != nil {
		return err
	}
	if instructorID == 0 {
		return nil
	}
	return recordHelp(ctx, tx, HelpInstructorChannel(instructorID), r.Position, helpUpdated(e.HelpRequestID, domain.HelpStatusResolved, e.Responder, "", e.ProvidedAt))
}

// OnHelpEscalated marks the request ESCALATED; the instructor's socket gets
// help_request_updated (it now waits for them).
func (p *Help) OnHelpEscalated(ctx context.Context, tx pgx.Tx, r Record, e domain.HelpEscalated) error {
	done, err := changed(ctx, tx, `UPDATE rm_help_requests SET status = 'ESCALATED', escalation_reason = $2 WHERE id = $1 AND status = 'ANALYZING'`,
		e.HelpRequestID, e.Reason)
	if err != nil || !done {
		return err
	}
	return recordHelp(ctx, tx, HelpInstructorChannel(e.InstructorID), r.Position, helpUpdated(e.HelpRequestID, domain.HelpStatusEscalated, "", e.Reason, e.EscalatedAt))
}

func helpUpdated(id int64, status domain.HelpStatus, responder domain.Responder, reason string, at time.Time) helpMessage {
	return helpMessage{Type: "help_request_updated", Data: struct {
		HelpRequestID    int64             `json:"help_request_id"`
		Status           domain.HelpStatus `json:"status"`
		Responder        domain.Responder  `json:"responder,omitempty"`
		EscalationReason string            `json:"escalation_reason,omitempty"`
		Timestamp        time.Time         `json:"timestamp"`
	}{id, status, responder, reason, at.UTC()}}
}

// OnHelpFeedbackGiven records the rating.
func (p *Help) OnHelpFeedbackGiven(ctx context.Context, tx pgx.Tx, e domain.HelpFeedbackGiven) error {
	_, err := tx.Exec(ctx, `UPDATE rm_help_responses SET rating = $2, feedback_text = $3, feedback_at = $4 WHERE id = $1`,
		e.HelpResponseID, e.Rating, e.FeedbackText, e.GivenAt)
	return err
}

// HelpRequestData is the data of the sockets' new-request messages (the
// session instructor's student_help_request and the lecture dashboard's
// help_request): one shape for both.
type HelpRequestData struct {
	HelpRequestID        int64                  `json:"help_request_id"`
	User                 HelpUserRef            `json:"user"`
	Subtask              HelpSubtaskRef         `json:"subtask"`
	RequestType          domain.HelpRequestType `json:"request_type"`
	StuckDurationSeconds int                    `json:"stuck_duration_seconds"`
	Timestamp            time.Time              `json:"timestamp"`
}

func newHelpRequestData(e domain.HelpRequested, name string) HelpRequestData {
	return HelpRequestData{e.HelpRequestID, HelpUserRef{e.UserID, name}, HelpSubtaskRef{e.SubtaskID, e.SubtaskTitle}, e.RequestType, e.StuckDurationSeconds, e.RequestedAt.UTC()}
}

// StudentHelpRequestMessage builds the session instructor socket's
// student_help_request from a HelpRequested record. Its signature is
// InstructorMessageFunc's, so the sessions projector (which alone feeds that
// channel) can take it with
// Sessions.WithInstructorMessage("HelpRequested", StudentHelpRequestMessage).
// ok is false for a request made outside a live session.
func StudentHelpRequestMessage(ctx context.Context, tx pgx.Tx, r Record) (sessionID int64, payload any, ok bool, err error) {
	e, isHelp := r.Payload.(domain.HelpRequested)
	if !isHelp || e.SessionID == 0 {
		return 0, nil, false, nil
	}
	name, err := helpUserName(ctx, tx, e.UserID)
	if err != nil {
		return 0, nil, false, err
	}
	return e.SessionID, helpMessage{Type: "student_help_request", Data: newHelpRequestData(e, name)}, true, nil
}

// LectureHelpRequestMessage builds the lecture dashboard socket's
// help_request (/ws/dashboard/lecture/{lecture_id}/) from a HelpRequested
// record, for the projector that feeds that channel: it returns the lecture
// and the whole message object.
func LectureHelpRequestMessage(ctx context.Context, tx pgx.Tx, r Record) (lectureID int64, payload any, ok bool, err error) {
	e, isHelp := r.Payload.(domain.HelpRequested)
	if !isHelp {
		return 0, nil, false, nil
	}
	name, err := helpUserName(ctx, tx, e.UserID)
	if err != nil {
		return 0, nil, false, err
	}
	return e.LectureID, helpMessage{Type: "help_request", Data: newHelpRequestData(e, name)}, true, nil
}

func insertNotification(ctx context.Context, tx pgx.Tx, r Record, userID int64, typ, msg string, relatedID int64, relatedName string, helpRequestID int64) error {
	if userID == 0 {
		return nil
	}
	var name *string
	if relatedID != 0 {
		name = &relatedName
	}
	_, err := tx.Exec(ctx, `INSERT INTO rm_notifications (id, user_id, type, message, related_user_id, related_user_name, help_request_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
		int64(r.Position), userID, typ, msg, nullableID(relatedID), name, helpRequestID, r.OccurredAt)
	return err
}

func helpUserName(ctx context.Context, tx pgx.Tx, userID int64) (string, error) {
	var name string
	err := tx.QueryRow(ctx, `SELECT name FROM users WHERE id = $1`, userID).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return name, err
}

func nullableID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func recordHelp(ctx context.Context, tx pgx.Tx, channel string, position uint64, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode message for %s: %w", channel, err)
	}
	return outbox.Record(ctx, tx, HelpProjector, outbox.Message{Channel: channel, Position: position, Payload: data})
}
