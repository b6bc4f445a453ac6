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

// SessionsProjector is the name (checkpoint key) of the live-session projector.
const SessionsProjector = "sessions"

// SessionStudentsChannel is the live channel of the student sockets of a session.
func SessionStudentsChannel(sessionID int64) string {
	return "session:" + strconv.FormatInt(sessionID, 10) + ":students"
}

// SessionInstructorChannel is the live channel of the instructor sockets of a session.
func SessionInstructorChannel(sessionID int64) string {
	return "session:" + strconv.FormatInt(sessionID, 10) + ":instructor"
}

// Announcer publishes the live messages a projector recorded once its batch
// committed (*live.Announcer): the messages as recorded (Deliver), or those
// recorded for a range of positions, read back from the outbox (Announce).
type Announcer interface {
	Announce(ctx context.Context, producer string, from, to uint64)
	Deliver(ctx context.Context, producer string, msgs []outbox.Message)
}

// InstructorMessageFunc turns an event the sessions projector does not know
// into a message for a session's instructor socket: it returns the session
// and the whole message object ({"type": …, "data": …}), or ok == false when
// the event concerns no session. It runs inside the projector's transaction.
type InstructorMessageFunc func(ctx context.Context, tx pgx.Tx, r Record) (sessionID int64, payload any, ok bool, err error)

// WithInstructorMessage is the hook through which other features push on a
// session's instructor socket — whose channel only this projector feeds —
// e.g. the help feature's student_help_request for HelpRequested. Call it
// during wiring, before the projector runs. It returns p.
func (p *Sessions) WithInstructorMessage(eventType string, f InstructorMessageFunc) *Sessions {
	if p.hooks == nil {
		p.hooks = map[string]InstructorMessageFunc{}
	}
	p.hooks[eventType] = f
	return p
}

func (p *Sessions) instructorHook(eventType string) (InstructorMessageFunc, bool) {
	f, ok := p.hooks[eventType]
	return f, ok
}

// Sessions maintains the live-session read models (live_sessions,
// session_participants, session_step_control, and its helpers
// session_lectures and session_completions) and records the messages of the
// session sockets: on the students channel session_started, step_changed,
// session_paused, session_resumed and session_ended; on the instructor
// channel student_joined, student_progress and student_disconnected (plus
// what WithInstructorMessage adds, e.g. student_help_request).
type Sessions struct {
	announcer Announcer
	hooks     map[string]InstructorMessageFunc
}

// NewSessions returns the projector; announcer may be nil (no sockets).
func NewSessions(announcer Announcer) *Sessions { return &Sessions{announcer: announcer} }

// Name implements Projector.
func (p *Sessions) Name() string { return SessionsProjector }

// Tables implements TableOwner: the projector can be rebuilt online.
func (p *Sessions) Tables() []string {
	return []string{"live_sessions", "session_participants", "session_step_control", "session_lectures", "session_completions"}
}

// Pipelined implements Pipelined: its handlers never read an Exec's
// command tag, so a batch's writes go to PostgreSQL in one round trip.
func (*Sessions) Pipelined() bool { return true }

// Reset implements Projector.
func (p *Sessions) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE live_sessions, session_participants, session_step_control, session_lectures, session_completions`)
	return err
}

// AfterCommit implements AfterCommitter: it announces what the batch recorded.
func (p *Sessions) AfterCommit(ctx context.Context, batch []Record) {
	announceBatch(ctx, p.announcer, SessionsProjector, batch, false)
}

// Handle implements Projector.
func (p *Sessions) Handle(ctx context.Context, tx pgx.Tx, r Record) error {
	switch e := r.Payload.(type) {
	case domain.LectureCreated:
		return p.OnLectureCreated(ctx, tx, e)
	case domain.LectureUpdated:
		return p.OnLectureUpdated(ctx, tx, e)
	case domain.SessionOpened:
		return p.OnSessionOpened(ctx, tx, r, e)
	case domain.SessionStarted:
		return p.OnSessionStarted(ctx, tx, r, e)
	case domain.StepChanged:
		return p.OnStepChanged(ctx, tx, r, e)
	case domain.SessionPaused:
		return p.OnSessionPaused(ctx, tx, r, e)
	case domain.SessionResumed:
		return p.OnSessionResumed(ctx, tx, r, e)
	case domain.SessionEnded:
		return p.OnSessionEnded(ctx, tx, r, e)
	case domain.ParticipantJoined:
		return p.OnParticipantJoined(ctx, tx, r, e)
	case domain.ParticipantDisconnected:
		return p.OnParticipantDisconnected(ctx, tx, r, e)
	case domain.ParticipantReconnected:
		return p.OnParticipantReconnected(ctx, tx, e)
	case domain.SubtaskStarted:
		return p.OnSubtaskStarted(ctx, tx, r, e)
	case domain.SubtaskCompleted:
		return p.OnSubtaskCompleted(ctx, tx, r, e)
	}
	if f, ok := p.instructorHook(r.Type); ok {
		id, payload, ok, err := f(ctx, tx, r)
		if err != nil || !ok {
			return err
		}
		return record(ctx, tx, SessionInstructorChannel(id), r.Position, payload)
	}
	return nil
}

// OnLectureCreated keeps the lecture's title and description for the session views.
func (p *Sessions) OnLectureCreated(ctx context.Context, tx pgx.Tx, e domain.LectureCreated) error {
	_, err := tx.Exec(ctx, `INSERT INTO session_lectures (lecture_id, title, description) VALUES ($1, $2, $3)
		ON CONFLICT (lecture_id) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description`,
		e.LectureID, e.Title, e.Description)
	return err
}

// OnLectureUpdated follows title and description changes.
func (p *Sessions) OnLectureUpdated(ctx context.Context, tx pgx.Tx, e domain.LectureUpdated) error {
	if e.Title == nil && e.Description == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE session_lectures SET title = coalesce($2, title), description = coalesce($3, description) WHERE lecture_id = $1`,
		e.LectureID, e.Title, e.Description)
	return err
}

// OnSessionOpened adds the session (WAITING).
func (p *Sessions) OnSessionOpened(ctx context.Context, tx pgx.Tx, r Record, e domain.SessionOpened) error {
	_, err := tx.Exec(ctx, `INSERT INTO live_sessions (session_id, session_code, title, lecture_id, lecture_title, instructor_id,
			status, scheduled_at, created_at, position)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (session_id) DO NOTHING`,
		e.SessionID, e.SessionCode, e.Title, e.LectureID, e.LectureTitle, e.InstructorID,
		string(domain.SessionStatusWaiting), e.ScheduledAt, e.OpenedAt, int64(r.Position))
	return err
}

// SubtaskView is a subtask as the session messages and views show it.
type SubtaskView struct {
	ID             int64  `json:"id"`
	Title          string `json:"title"`
	GuideText      string `json:"guide_text"`
	VoiceGuideText string `json:"voice_guide_text"`
}

// viewOf is the step as the students' messages show it: its voice_guide_text
// is the text to speak (domain.SpokenText: the guide text, then the title,
// when the subtask has none), also for events recorded before that rule.
func viewOf(s domain.StepSubtask) SubtaskView {
	return SubtaskView{ID: s.ID, Title: s.Title, GuideText: s.GuideText, VoiceGuideText: s.Spoken()}
}

func (p *Sessions) setCurrent(ctx context.Context, tx pgx.Tx, r Record, sessionID int64, s domain.StepSubtask, message string, extra string, args ...any) error {
	q := `UPDATE live_sessions SET current_subtask_id = $2, current_task_id = $3, current_title = $4, current_guide_text = $5,
		current_voice_guide = $6, instructor_message = $7, position = $8` + extra + ` WHERE session_id = $1`
	_, err := tx.Exec(ctx, q, append([]any{sessionID, s.ID, s.TaskID, s.Title, s.GuideText, s.VoiceGuideText, message, int64(r.Position)}, args...)...)
	return err
}

func (p *Sessions) logStep(ctx context.Context, tx pgx.Tx, r Record, sessionID int64, action string, from, to int64, message string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO session_step_control (position, session_id, action, from_subtask_id, to_subtask_id, instructor_message, occurred_at)
		VALUES ($1, $2, $3, nullif($4, 0::bigint), nullif($5, 0::bigint), $6, $7) ON CONFLICT (position) DO NOTHING`,
		int64(r.Position), sessionID, action, from, to, message, at)
	return err
}

// OnSessionStarted: IN_PROGRESS at the first subtask; every participant not
// disconnected becomes ACTIVE (domain.DisplayStatus); session_started to the students.
func (p *Sessions) OnSessionStarted(ctx context.Context, tx pgx.Tx, r Record, e domain.SessionStarted) error {
	if err := p.setCurrent(ctx, tx, r, e.SessionID, e.CurrentSubtask, e.InstructorMessage,
		`, status = $9, started_at = $10`, string(domain.SessionStatusInProgress), e.StartedAt); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE session_participants SET status = $2 WHERE session_id = $1 AND status = $3`,
		e.SessionID, string(domain.ParticipantStatusActive), string(domain.ParticipantStatusWaiting)); err != nil {
		return err
	}
	if err := p.logStep(ctx, tx, r, e.SessionID, "START", 0, e.CurrentSubtask.ID, e.InstructorMessage, e.StartedAt); err != nil {
		return err
	}
	return record(ctx, tx, SessionStudentsChannel(e.SessionID), r.Position, message{Type: "session_started", Data: struct {
		SessionID         int64       `json:"session_id"`
		StartedAt         time.Time   `json:"started_at"`
		CurrentSubtask    SubtaskView `json:"current_subtask"`
		InstructorMessage string      `json:"instructor_message"`
	}{e.SessionID, e.StartedAt.UTC(), viewOf(e.CurrentSubtask), e.InstructorMessage}})
}

// OnStepChanged moves the session's current subtask; step_changed to the students.
func (p *Sessions) OnStepChanged(ctx context.Context, tx pgx.Tx, r Record, e domain.StepChanged) error {
	if err := p.setCurrent(ctx, tx, r, e.SessionID, e.CurrentSubtask, e.InstructorMessage, ""); err != nil {
		return err
	}
	if err := p.logStep(ctx, tx, r, e.SessionID, "NEXT_STEP", e.PreviousSubtaskID, e.CurrentSubtask.ID, e.InstructorMessage, e.ChangedAt); err != nil {
		return err
	}
	return record(ctx, tx, SessionStudentsChannel(e.SessionID), r.Position, message{Type: "step_changed", Data: struct {
		PreviousSubtaskID int64       `json:"previous_subtask_id"`
		CurrentSubtask    SubtaskView `json:"current_subtask"`
		InstructorMessage string      `json:"instructor_message"`
		Timestamp         time.Time   `json:"timestamp"`
	}{e.PreviousSubtaskID, viewOf(e.CurrentSubtask), e.InstructorMessage, e.ChangedAt.UTC()}})
}

type pauseData struct {
	SessionID         int64     `json:"session_id"`
	InstructorMessage string    `json:"instructor_message"`
	Timestamp         time.Time `json:"timestamp"`
}

// OnSessionPaused: PAUSED; session_paused to the students.
func (p *Sessions) OnSessionPaused(ctx context.Context, tx pgx.Tx, r Record, e domain.SessionPaused) error {
	return p.pauseOrResume(ctx, tx, r, pauseToggle{e.SessionID, domain.SessionStatusPaused, e.CurrentSubtaskID, e.InstructorMessage, e.PausedAt})
}

// OnSessionResumed: IN_PROGRESS again; session_resumed to the students.
func (p *Sessions) OnSessionResumed(ctx context.Context, tx pgx.Tx, r Record, e domain.SessionResumed) error {
	return p.pauseOrResume(ctx, tx, r, pauseToggle{e.SessionID, domain.SessionStatusInProgress, e.CurrentSubtaskID, e.InstructorMessage, e.ResumedAt})
}

// pauseToggle is a pause (to PAUSED) or a resume (to IN_PROGRESS).
type pauseToggle struct {
	sessionID int64
	to        domain.SessionStatus
	subtaskID int64
	message   string
	at        time.Time
}

// pauseOrResume sets the status, logs the step (PAUSE or RESUME) and tells
// the students (session_paused or session_resumed).
func (p *Sessions) pauseOrResume(ctx context.Context, tx pgx.Tx, r Record, t pauseToggle) error {
	step, typ := "RESUME", "session_resumed"
	if t.to == domain.SessionStatusPaused {
		step, typ = "PAUSE", "session_paused"
	}
	if err := p.setStatus(ctx, tx, r, t.sessionID, t.to, t.message); err != nil {
		return err
	}
	if err := p.logStep(ctx, tx, r, t.sessionID, step, t.subtaskID, t.subtaskID, t.message, t.at); err != nil {
		return err
	}
	return record(ctx, tx, SessionStudentsChannel(t.sessionID), r.Position,
		message{Type: typ, Data: pauseData{t.sessionID, t.message, t.at.UTC()}})
}

// OnSessionEnded: REVIEW_MODE; waiting participants show ACTIVE
// (domain.DisplayStatus); session_ended to the students.
func (p *Sessions) OnSessionEnded(ctx context.Context, tx pgx.Tx, r Record, e domain.SessionEnded) error {
	if _, err := tx.Exec(ctx, `UPDATE live_sessions SET status = $2, instructor_message = $3, ended_at = $4, position = $5 WHERE session_id = $1`,
		e.SessionID, string(domain.SessionStatusReviewMode), e.InstructorMessage, e.EndedAt, int64(r.Position)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE session_participants SET status = $2 WHERE session_id = $1 AND status = $3`,
		e.SessionID, string(domain.ParticipantStatusActive), string(domain.ParticipantStatusWaiting)); err != nil {
		return err
	}
	if err := p.logStep(ctx, tx, r, e.SessionID, "END", 0, 0, e.InstructorMessage, e.EndedAt); err != nil {
		return err
	}
	return record(ctx, tx, SessionStudentsChannel(e.SessionID), r.Position, message{Type: "session_ended", Data: struct {
		SessionID         int64     `json:"session_id"`
		EndedAt           time.Time `json:"ended_at"`
		InstructorMessage string    `json:"instructor_message"`
		ReviewModeEnabled bool      `json:"review_mode_enabled"`
	}{e.SessionID, e.EndedAt.UTC(), e.InstructorMessage, true}})
}

func (p *Sessions) setStatus(ctx context.Context, tx pgx.Tx, r Record, sessionID int64, status domain.SessionStatus, msg string) error {
	_, err := tx.Exec(ctx, `UPDATE live_sessions SET status = $2, instructor_message = $3, position = $4 WHERE session_id = $1`,
		sessionID, string(status), msg, int64(r.Position))
	return err
}

// sessionStatus is the session's status in the read model ("" when unknown).
func sessionStatus(ctx context.Context, tx pgx.Tx, sessionID int64) (domain.SessionStatus, error) {
	var s string
	err := tx.QueryRow(ctx, `SELECT status FROM live_sessions WHERE session_id = $1`, sessionID).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return domain.SessionStatus(s), err
}

func userName(ctx context.Context, tx pgx.Tx, userID int64) (name, email string, err error) {
	err = tx.QueryRow(ctx, `SELECT name, email FROM users WHERE id = $1`, userID).Scan(&name, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	return name, email, err
}

// OnParticipantJoined adds the participant, with the status the session's
// status gives (it may have started since the join was decided);
// student_joined to the instructor.
func (p *Sessions) OnParticipantJoined(ctx context.Context, tx pgx.Tx, r Record, e domain.ParticipantJoined) error {
	st, err := sessionStatus(ctx, tx, e.SessionID)
	if err != nil {
		return err
	}
	if st == "" {
		st = e.SessionStatus
	}
	done, err := changed(ctx, tx, `INSERT INTO session_participants (session_id, user_id, participant_id, lecture_id, status, joined_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id, user_id) DO NOTHING`,
		e.SessionID, e.UserID, e.ParticipantID, e.LectureID, string(domain.DisplayStatus(false, st)), e.JoinedAt)
	if err != nil || !done {
		return err
	}
	var total int
	if err := tx.QueryRow(ctx, `UPDATE live_sessions SET participant_count = participant_count + 1 WHERE session_id = $1 RETURNING participant_count`,
		e.SessionID).Scan(&total); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	name, email, err := userName(ctx, tx, e.UserID)
	if err != nil {
		return err
	}
	return record(ctx, tx, SessionInstructorChannel(e.SessionID), r.Position, message{Type: "student_joined", Data: struct {
		UserID            int64     `json:"user_id"`
		Name              string    `json:"name"`
		Email             string    `json:"email"`
		JoinedAt          time.Time `json:"joined_at"`
		TotalParticipants int       `json:"total_participants"`
	}{e.UserID, name, email, e.JoinedAt.UTC(), total}})
}

// OnParticipantDisconnected: DISCONNECTED; student_disconnected to the instructor.
func (p *Sessions) OnParticipantDisconnected(ctx context.Context, tx pgx.Tx, r Record, e domain.ParticipantDisconnected) error {
	if _, err := tx.Exec(ctx, `UPDATE session_participants SET status = $3, disconnected_at = $4, last_seen_at = $5 WHERE session_id = $1 AND user_id = $2`,
		e.SessionID, e.UserID, string(domain.ParticipantStatusDisconnected), e.DisconnectedAt, e.LastActiveAt); err != nil {
		return err
	}
	var active int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM session_participants WHERE session_id = $1 AND status = $2`,
		e.SessionID, string(domain.ParticipantStatusActive)).Scan(&active); err != nil {
		return err
	}
	name, _, err := userName(ctx, tx, e.UserID)
	if err != nil {
		return err
	}
	return record(ctx, tx, SessionInstructorChannel(e.SessionID), r.Position, message{Type: "student_disconnected", Data: struct {
		UserID             int64     `json:"user_id"`
		Name               string    `json:"name"`
		LastActiveAt       time.Time `json:"last_active_at"`
		ActiveParticipants int       `json:"active_participants"`
	}{e.UserID, name, e.LastActiveAt.UTC(), active}})
}

// OnParticipantReconnected: the participant's status is the session's again.
// The seed has no instructor message for it; the instructor's view catches up
// through GET …/participants or a new socket's snapshot.
func (p *Sessions) OnParticipantReconnected(ctx context.Context, tx pgx.Tx, e domain.ParticipantReconnected) error {
	st, err := sessionStatus(ctx, tx, e.SessionID)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE session_participants SET status = $3, last_seen_at = $4 WHERE session_id = $1 AND user_id = $2`,
		e.SessionID, e.UserID, string(domain.DisplayStatus(false, st)), e.ReconnectedAt)
	return err
}

// progressSession finds the session a progress event belongs to: the one its
// data or metadata names, else the newest live session of that lecture the
// student is a participant of (0 when none).
func progressSession(ctx context.Context, tx pgx.Tx, r Record, fromData, lectureID, userID int64) (int64, error) {
	if fromData != 0 {
		return fromData, nil
	}
	if r.Metadata.SessionID != 0 {
		return r.Metadata.SessionID, nil
	}
	return LiveSession(ctx, tx, lectureID, userID)
}

type progressData struct {
	UserID       int64      `json:"user_id"`
	Name         string     `json:"name"`
	SubtaskID    int64      `json:"subtask_id"`
	SubtaskTitle string     `json:"subtask_title"`
	Status       string     `json:"status"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	CompletedAt  *time.Time `json:"completed_at"`
}

func (p *Sessions) progress(ctx context.Context, tx pgx.Tx, r Record, sessionID, lectureID, userID int64, d progressData) error {
	id, err := progressSession(ctx, tx, r, sessionID, lectureID, userID)
	if err != nil || id == 0 {
		return err
	}
	if d.Name, _, err = userName(ctx, tx, userID); err != nil {
		return err
	}
	return record(ctx, tx, SessionInstructorChannel(id), r.Position, message{Type: "student_progress", Data: d})
}

// OnSubtaskStarted: student_progress (IN_PROGRESS) to the instructor of the student's session.
func (p *Sessions) OnSubtaskStarted(ctx context.Context, tx pgx.Tx, r Record, e domain.SubtaskStarted) error {
	at := e.StartedAt.UTC()
	return p.progress(ctx, tx, r, e.SessionID, e.LectureID, e.UserID, progressData{
		UserID: e.UserID, SubtaskID: e.SubtaskID, SubtaskTitle: e.SubtaskTitle,
		Status: string(domain.ProgressStatusInProgress), StartedAt: &at,
	})
}

// OnSubtaskCompleted records the completion (for completed_participants) and
// sends student_progress (COMPLETED) to the instructor of the student's session.
func (p *Sessions) OnSubtaskCompleted(ctx context.Context, tx pgx.Tx, r Record, e domain.SubtaskCompleted) error {
	if _, err := tx.Exec(ctx, `INSERT INTO session_completions (lecture_id, user_id, subtask_id, completed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, e.LectureID, e.UserID, e.SubtaskID, e.CompletedAt); err != nil {
		return err
	}
	at := e.CompletedAt.UTC()
	return p.progress(ctx, tx, r, e.SessionID, e.LectureID, e.UserID, progressData{
		UserID: e.UserID, SubtaskID: e.SubtaskID, SubtaskTitle: e.SubtaskTitle,
		Status: string(domain.ProgressStatusCompleted), CompletedAt: &at,
	})
}

type message struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

func record(ctx context.Context, tx pgx.Tx, channel string, position uint64, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode message for %s: %w", channel, err)
	}
	return outbox.Record(ctx, tx, SessionsProjector, outbox.Message{Channel: channel, Position: position, Payload: data})
}
