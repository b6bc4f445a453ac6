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

// DashboardProjector is the name (checkpoint key) of the dashboard projector.
const DashboardProjector = "dashboard"

// DashboardLectureChannel is the live channel of a lecture's dashboard
// socket (/ws/dashboard/lecture/{lecture_id}/).
func DashboardLectureChannel(lectureID int64) string {
	return "lecture:" + strconv.FormatInt(lectureID, 10) + ":dashboard"
}

// DashboardTables are the read-model tables the dashboard projector owns.
var DashboardTables = []string{
	"dash_lectures", "dash_tasks", "dash_subtasks", "dash_students", "dash_progress",
	"dash_sessions", "dash_participants", "dash_daily", "dash_daily_active", "dash_help_open",
}

// Student activities on the dashboard socket.
const (
	ActivityStartedLearning = "STARTED_LEARNING"
	ActivityJoinedSession   = "JOINED_SESSION"
	ActivityLeftSession     = "LEFT_SESSION"
)

// Dashboard maintains the read models behind the instructor dashboards and
// statistics (dash_* tables) from the lecture, progress, help, session and
// participant streams, and records the lecture dashboard socket's messages
// (progress_update, help_request, student_activity).
//
// Definitions (all from events and their own times, days are UTC dates, so a
// rebuild gives the same numbers):
//   - A student "acts" on StudentEnrolled, SubtaskStarted, SubtaskCompleted,
//     a MANUAL HelpRequested, ParticipantJoined and ParticipantReconnected.
//     Acting sets last_activity and makes the student active that day; the
//     first act of a day sends STARTED_LEARNING. An AUTO request (raised by
//     the server) counts as a help request, not as the student's act.
//   - Progress counts live (not removed) subtasks only. The current subtask
//     is the one the student started most recently and has not completed,
//     else the first live subtask in lecture order they have not completed,
//     else none (as GET /api/progress/me).
//   - Stuck time, per student and subtask, measured once: from when the step
//     became current for the student (the session's SessionStarted or
//     StepChanged to it while they participate, their late join while it is
//     current, or their own SubtaskStarted — whichever came first) to the
//     first of their completion of it or their help request on it.
//   - The daily progress snapshot is the lecture's counters (enrolled
//     students, completions of live subtasks, live subtasks) after its last
//     event of that day.
//
// One socket message per event and channel, at the event's position — except
// STARTED_LEARNING when the same event also has a message of its own
// (progress_update, help_request, JOINED_SESSION): it then goes at the
// position just below (position-1, which the store never gives the first
// event of a transaction's append), so a client gets it first and ?after=
// resumes exactly. If that position already holds a message on the channel
// (an event appended in the same transaction), STARTED_LEARNING is left out.
type Dashboard struct {
	announcer Announcer
}

// NewDashboard returns the dashboard projector; announcer may be nil (no sockets).
func NewDashboard(announcer Announcer) *Dashboard { return &Dashboard{announcer: announcer} }

// Name implements Projector.
func (p *Dashboard) Name() string { return DashboardProjector }

// Eventual implements Eventual: commands do not wait for the dashboards
// (instructors see them update over the lecture socket).
func (p *Dashboard) Eventual() bool { return true }

// Tables implements TableOwner (online rebuild into shadow tables).
func (p *Dashboard) Tables() []string { return DashboardTables }

// Pipelined implements Pipelined: its handlers never read an Exec's
// command tag, so a batch's writes go to PostgreSQL in one round trip.
func (*Dashboard) Pipelined() bool { return true }

// Reset implements Projector.
func (p *Dashboard) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE dash_lectures, dash_tasks, dash_subtasks, dash_students, dash_progress,
		dash_sessions, dash_participants, dash_daily, dash_daily_active, dash_help_open`)
	return err
}

// AfterCommit implements AfterCommitter: it announces what the batch
// recorded (from one below the first position: see STARTED_LEARNING).
func (p *Dashboard) AfterCommit(ctx context.Context, batch []Record) {
	if !Rebuilding(ctx) {
		announceBatch(ctx, p.announcer, DashboardProjector, batch, true)
	}
}

// Handle implements Projector.
func (p *Dashboard) Handle(ctx context.Context, tx pgx.Tx, r Record) error {
	switch e := r.Payload.(type) {
	case domain.LectureCreated:
		_, err := tx.Exec(ctx, `INSERT INTO dash_lectures (lecture_id, instructor_id, title) VALUES ($1, $2, $3)
			ON CONFLICT (lecture_id) DO NOTHING`, e.LectureID, e.InstructorID, e.Title)
		return err
	case domain.LectureUpdated:
		if e.Title == nil {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE dash_lectures SET title = $2 WHERE lecture_id = $1`, e.LectureID, *e.Title)
		return err
	case domain.TaskAdded:
		_, err := tx.Exec(ctx, `INSERT INTO dash_tasks (task_id, lecture_id, order_index) VALUES ($1, $2, $3)
			ON CONFLICT (task_id) DO NOTHING`, e.TaskID, e.LectureID, e.OrderIndex)
		return err
	case domain.TaskUpdated:
		return p.OnTaskUpdated(ctx, tx, e)
	case domain.SubtaskAdded:
		return p.OnSubtaskAdded(ctx, tx, e)
	case domain.SubtaskUpdated:
		return p.OnSubtaskUpdated(ctx, tx, e)
	case domain.SubtaskRemoved:
		return p.OnSubtaskRemoved(ctx, tx, e)
	case domain.StudentEnrolled:
		return p.OnStudentEnrolled(ctx, tx, r, e)
	case domain.SubtaskStarted:
		return p.OnSubtaskStarted(ctx, tx, r, e)
	case domain.SubtaskCompleted:
		return p.OnSubtaskCompleted(ctx, tx, r, e)
	case domain.HelpRequested:
		return p.OnHelpRequested(ctx, tx, r, e)
	case domain.HelpEscalated:
		_, err := tx.Exec(ctx, `UPDATE dash_help_open SET status = 'ESCALATED' WHERE help_request_id = $1`, e.HelpRequestID)
		return err
	case domain.HelpProvided:
		_, err := tx.Exec(ctx, `DELETE FROM dash_help_open WHERE help_request_id = $1`, e.HelpRequestID)
		return err
	case domain.SessionOpened:
		_, err := tx.Exec(ctx, `INSERT INTO dash_sessions (session_id, lecture_id, status) VALUES ($1, $2, 'WAITING')
			ON CONFLICT (session_id) DO NOTHING`, e.SessionID, e.LectureID)
		return err
	case domain.SessionStarted:
		return p.onStep(ctx, tx, e.SessionID, e.CurrentSubtask.ID, e.StartedAt)
	case domain.StepChanged:
		return p.onStep(ctx, tx, e.SessionID, e.CurrentSubtask.ID, e.ChangedAt)
	case domain.SessionPaused:
		return setSessionStatus(ctx, tx, e.SessionID, domain.SessionStatusPaused)
	case domain.SessionResumed:
		return setSessionStatus(ctx, tx, e.SessionID, domain.SessionStatusInProgress)
	case domain.SessionEnded:
		return setSessionStatus(ctx, tx, e.SessionID, domain.SessionStatusReviewMode)
	case domain.ParticipantJoined:
		return p.OnParticipantJoined(ctx, tx, r, e)
	case domain.ParticipantReconnected:
		first, err := studentActed(ctx, tx, e.LectureID, e.UserID, e.ReconnectedAt)
		if err != nil {
			return err
		}
		if err := touchDay(ctx, tx, e.LectureID, e.ReconnectedAt, first, 0); err != nil {
			return err
		}
		return p.emitActivity(ctx, tx, r, e.LectureID, e.UserID, first, e.ReconnectedAt, ActivityJoinedSession)
	case domain.ParticipantDisconnected:
		return p.emitActivity(ctx, tx, r, e.LectureID, e.UserID, false, e.DisconnectedAt, ActivityLeftSession)
	}
	return nil
}

// OnTaskUpdated follows the task's order (it orders its subtasks).
func (p *Dashboard) OnTaskUpdated(ctx context.Context, tx pgx.Tx, e domain.TaskUpdated) error {
	if _, err := tx.Exec(ctx, `UPDATE dash_tasks SET order_index = $2 WHERE task_id = $1`, e.TaskID, e.OrderIndex); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE dash_subtasks SET task_order = $2 WHERE task_id = $1`, e.TaskID, e.OrderIndex); err != nil {
		return err
	}
	return refreshLecture(ctx, tx, e.LectureID, e.UpdatedAt)
}

// OnSubtaskAdded adds the subtask to the plan.
func (p *Dashboard) OnSubtaskAdded(ctx context.Context, tx pgx.Tx, e domain.SubtaskAdded) error {
	_, err := tx.Exec(ctx, `INSERT INTO dash_subtasks (subtask_id, lecture_id, task_id, task_order, order_index, title)
		VALUES ($1, $2, $3, COALESCE((SELECT order_index FROM dash_tasks WHERE task_id = $3), 0), $4, $5)
		ON CONFLICT (subtask_id) DO NOTHING`, e.SubtaskID, e.LectureID, e.TaskID, e.OrderIndex, e.Title)
	if err != nil {
		return err
	}
	return refreshLecture(ctx, tx, e.LectureID, e.AddedAt)
}

// OnSubtaskUpdated follows the subtask's title, task and order.
func (p *Dashboard) OnSubtaskUpdated(ctx context.Context, tx pgx.Tx, e domain.SubtaskUpdated) error {
	_, err := tx.Exec(ctx, `UPDATE dash_subtasks SET task_id = $2, order_index = $3, title = $4,
			task_order = COALESCE((SELECT order_index FROM dash_tasks WHERE task_id = $2), task_order)
		WHERE subtask_id = $1`, e.SubtaskID, e.TaskID, e.OrderIndex, e.Title)
	if err != nil {
		return err
	}
	return refreshLecture(ctx, tx, e.LectureID, e.UpdatedAt)
}

// OnSubtaskRemoved takes the subtask out of the plan (and of progress counts).
func (p *Dashboard) OnSubtaskRemoved(ctx context.Context, tx pgx.Tx, e domain.SubtaskRemoved) error {
	if _, err := tx.Exec(ctx, `UPDATE dash_subtasks SET removed = true WHERE subtask_id = $1`, e.SubtaskID); err != nil {
		return err
	}
	return refreshLecture(ctx, tx, e.LectureID, e.RemovedAt)
}

// OnStudentEnrolled lists the student and counts them.
func (p *Dashboard) OnStudentEnrolled(ctx context.Context, tx pgx.Tx, r Record, e domain.StudentEnrolled) error {
	first, err := studentActed(ctx, tx, e.LectureID, e.UserID, e.EnrolledAt)
	if err != nil {
		return err
	}
	var completed int64
	err = tx.QueryRow(ctx, `UPDATE dash_students SET enrolled = true, enrolled_at = $3
		WHERE lecture_id = $1 AND user_id = $2 AND NOT enrolled RETURNING completed_count`,
		e.LectureID, e.UserID, e.EnrolledAt).Scan(&completed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	default:
		if _, err := tx.Exec(ctx, `UPDATE dash_lectures SET enrolled = enrolled + 1, completions = completions + $2 WHERE lecture_id = $1`,
			e.LectureID, completed); err != nil {
			return err
		}
	}
	if err := touchDay(ctx, tx, e.LectureID, e.EnrolledAt, first, 0); err != nil {
		return err
	}
	return p.emit(ctx, tx, r, e.LectureID, e.UserID, first, e.EnrolledAt, nil)
}

// progressRow is a student's row for one subtask before an event changes it.
type progressRow struct {
	status     domain.ProgressStatus
	currentAt  *time.Time
	stuckEndAt *time.Time
}

func loadProgress(ctx context.Context, tx pgx.Tx, lectureID, userID, subtaskID int64) (progressRow, error) {
	row := progressRow{status: domain.ProgressStatusNotStarted}
	err := tx.QueryRow(ctx, `SELECT status, current_at, stuck_end_at FROM dash_progress
		WHERE lecture_id = $1 AND user_id = $2 AND subtask_id = $3 FOR UPDATE`, lectureID, userID, subtaskID).
		Scan(&row.status, &row.currentAt, &row.stuckEndAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return row, nil
	}
	return row, err
}

// OnSubtaskStarted: IN_PROGRESS (the step is current for the student from now
// at the latest); progress_update.
func (p *Dashboard) OnSubtaskStarted(ctx context.Context, tx pgx.Tx, r Record, e domain.SubtaskStarted) error {
	step := subtaskStep{e.LectureID, e.UserID, e.SubtaskID, e.SubtaskTitle, domain.ProgressStatusInProgress, e.StartedAt}
	return p.stepProgress(ctx, tx, r, step, func(progressRow) error {
		_, err := tx.Exec(ctx, `INSERT INTO dash_progress (lecture_id, user_id, subtask_id, status, started_at, current_at)
			VALUES ($1, $2, $3, 'IN_PROGRESS', $4, $4)
			ON CONFLICT (lecture_id, user_id, subtask_id) DO UPDATE SET status = 'IN_PROGRESS', started_at = $4,
				current_at = CASE WHEN dash_progress.stuck_end_at IS NULL THEN LEAST(COALESCE(dash_progress.current_at, $4), $4)
					ELSE dash_progress.current_at END`,
			e.LectureID, e.UserID, e.SubtaskID, e.StartedAt)
		return err
	})
}

// OnSubtaskCompleted: COMPLETED (ending the student's stuck time on it);
// progress_update.
func (p *Dashboard) OnSubtaskCompleted(ctx context.Context, tx pgx.Tx, r Record, e domain.SubtaskCompleted) error {
	step := subtaskStep{e.LectureID, e.UserID, e.SubtaskID, e.SubtaskTitle, domain.ProgressStatusCompleted, e.CompletedAt}
	return p.stepProgress(ctx, tx, r, step, func(old progressRow) error {
		_, err := tx.Exec(ctx, `INSERT INTO dash_progress (lecture_id, user_id, subtask_id, status, completed_at, stuck_end_at)
			VALUES ($1, $2, $3, 'COMPLETED', $4, $4)
			ON CONFLICT (lecture_id, user_id, subtask_id) DO UPDATE SET status = 'COMPLETED', completed_at = $4,
				stuck_end_at = COALESCE(dash_progress.stuck_end_at, $4)`,
			e.LectureID, e.UserID, e.SubtaskID, e.CompletedAt)
		if err != nil || old.stuckEndAt != nil {
			return err
		}
		return addStuck(ctx, tx, e.SubtaskID, old.currentAt, e.CompletedAt)
	})
}

// subtaskStep is what SubtaskStarted and SubtaskCompleted have in common:
// the student, the subtask, the status it moves to, and when.
type subtaskStep struct {
	lectureID, userID, subtaskID int64
	title                        string
	status                       domain.ProgressStatus
	at                           time.Time
}

// stepProgress is the frame OnSubtaskStarted and OnSubtaskCompleted share:
// the student acted; unless the subtask is already COMPLETED, write stores
// the new status (given the row as it was), the student's counts follow and
// a progress_update goes out; then the day's figures and the messages.
func (p *Dashboard) stepProgress(ctx context.Context, tx pgx.Tx, r Record, s subtaskStep, write func(old progressRow) error) error {
	first, err := studentActed(ctx, tx, s.lectureID, s.userID, s.at)
	if err != nil {
		return err
	}
	old, err := loadProgress(ctx, tx, s.lectureID, s.userID, s.subtaskID)
	if err != nil {
		return err
	}
	var own any
	if old.status != domain.ProgressStatusCompleted {
		if err := write(old); err != nil {
			return err
		}
		if err := p.progressChanged(ctx, tx, s.lectureID, s.userID, s.at); err != nil {
			return err
		}
		own = progressUpdate(s.userID, s.subtaskID, s.title, old.status, s.status, s.at)
	}
	if err := touchDay(ctx, tx, s.lectureID, s.at, first, 0); err != nil {
		return err
	}
	return p.emit(ctx, tx, r, s.lectureID, s.userID, first, s.at, own)
}

// progressChanged notes the student's first progress and recomputes their
// counts and current subtask, and the lecture's completions.
func (p *Dashboard) progressChanged(ctx context.Context, tx pgx.Tx, lectureID, userID int64, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE dash_students SET first_progress_at = LEAST(COALESCE(first_progress_at, $3), $3)
		WHERE lecture_id = $1 AND user_id = $2`, lectureID, userID, at); err != nil {
		return err
	}
	delta, err := refreshStudents(ctx, tx, lectureID, userID)
	if err != nil || delta == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE dash_lectures SET completions = completions + $2 WHERE lecture_id = $1`, lectureID, delta)
	return err
}

// OnHelpRequested counts the request (student, subtask, lecture, day), ends
// the student's stuck time on the subtask, lists it as open, and sends
// help_request (the help feature's LectureHelpRequestMessage).
func (p *Dashboard) OnHelpRequested(ctx context.Context, tx pgx.Tx, r Record, e domain.HelpRequested) error {
	first := false
	if e.RequestType != domain.HelpAuto {
		var err error
		if first, err = studentActed(ctx, tx, e.LectureID, e.UserID, e.RequestedAt); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO dash_students (lecture_id, user_id, help_count) VALUES ($1, $2, 1)
		ON CONFLICT (lecture_id, user_id) DO UPDATE SET help_count = dash_students.help_count + 1`, e.LectureID, e.UserID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE dash_subtasks SET help_count = help_count + 1 WHERE subtask_id = $1`, e.SubtaskID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE dash_lectures SET help_requests = help_requests + 1 WHERE lecture_id = $1`, e.LectureID); err != nil {
		return err
	}
	var currentAt *time.Time
	err := tx.QueryRow(ctx, `INSERT INTO dash_progress (lecture_id, user_id, subtask_id, status, stuck_end_at)
		VALUES ($1, $2, $3, 'NOT_STARTED', $4)
		ON CONFLICT (lecture_id, user_id, subtask_id) DO UPDATE SET stuck_end_at = $4 WHERE dash_progress.stuck_end_at IS NULL
		RETURNING current_at`, e.LectureID, e.UserID, e.SubtaskID, e.RequestedAt).Scan(&currentAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if err := addStuck(ctx, tx, e.SubtaskID, currentAt, e.RequestedAt); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO dash_help_open (help_request_id, lecture_id, instructor_id, user_id, subtask_id, subtask_title, status, requested_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'ANALYZING', $7) ON CONFLICT (help_request_id) DO NOTHING`,
		e.HelpRequestID, e.LectureID, e.InstructorID, e.UserID, e.SubtaskID, e.SubtaskTitle, e.RequestedAt); err != nil {
		return err
	}
	if err := touchDay(ctx, tx, e.LectureID, e.RequestedAt, first, 1); err != nil {
		return err
	}
	_, own, ok, err := LectureHelpRequestMessage(ctx, tx, r)
	if err != nil {
		return err
	}
	if !ok {
		own = nil
	}
	return p.emit(ctx, tx, r, e.LectureID, e.UserID, first, e.RequestedAt, own)
}

// OnParticipantJoined: the student is in the session (a step current in it
// becomes current for them now); JOINED_SESSION.
func (p *Dashboard) OnParticipantJoined(ctx context.Context, tx pgx.Tx, r Record, e domain.ParticipantJoined) error {
	if _, err := tx.Exec(ctx, `INSERT INTO dash_participants (session_id, user_id, lecture_id) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, e.SessionID, e.UserID, e.LectureID); err != nil {
		return err
	}
	first, err := studentActed(ctx, tx, e.LectureID, e.UserID, e.JoinedAt)
	if err != nil {
		return err
	}
	var current *int64
	err = tx.QueryRow(ctx, `SELECT current_subtask_id FROM dash_sessions WHERE session_id = $1 AND status IN ('IN_PROGRESS', 'PAUSED')`,
		e.SessionID).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if current != nil {
		if err := becameCurrent(ctx, tx, e.SessionID, e.UserID, *current, e.JoinedAt); err != nil {
			return err
		}
	}
	if err := touchDay(ctx, tx, e.LectureID, e.JoinedAt, first, 0); err != nil {
		return err
	}
	return p.emitActivity(ctx, tx, r, e.LectureID, e.UserID, first, e.JoinedAt, ActivityJoinedSession)
}

func (p *Dashboard) onStep(ctx context.Context, tx pgx.Tx, sessionID, subtaskID int64, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE dash_sessions SET status = 'IN_PROGRESS', current_subtask_id = $2 WHERE session_id = $1`,
		sessionID, subtaskID); err != nil {
		return err
	}
	return becameCurrent(ctx, tx, sessionID, 0, subtaskID, at)
}

func setSessionStatus(ctx context.Context, tx pgx.Tx, sessionID int64, status domain.SessionStatus) error {
	_, err := tx.Exec(ctx, `UPDATE dash_sessions SET status = $2 WHERE session_id = $1`, sessionID, string(status))
	return err
}

// becameCurrent: the subtask is current for the session's participants (one
// of them when userID != 0) from at, unless it was earlier or their time on
// it was already measured.
func becameCurrent(ctx context.Context, tx pgx.Tx, sessionID, userID, subtaskID int64, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO dash_progress (lecture_id, user_id, subtask_id, status, current_at)
		SELECT lecture_id, user_id, $3, 'NOT_STARTED', $4 FROM dash_participants WHERE session_id = $1 AND ($2::bigint = 0 OR user_id = $2::bigint)
		ON CONFLICT (lecture_id, user_id, subtask_id) DO UPDATE
			SET current_at = LEAST(COALESCE(dash_progress.current_at, EXCLUDED.current_at), EXCLUDED.current_at)
			WHERE dash_progress.stuck_end_at IS NULL`, sessionID, userID, subtaskID, at)
	return err
}

// addStuck adds one measured stuck interval to the subtask's difficulty.
func addStuck(ctx context.Context, tx pgx.Tx, subtaskID int64, from *time.Time, to time.Time) error {
	if from == nil || to.Before(*from) {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE dash_subtasks SET stuck_count = stuck_count + 1, stuck_seconds = stuck_seconds + $2 WHERE subtask_id = $1`,
		subtaskID, to.Sub(*from).Seconds())
	return err
}

// studentActed records an act of the student: last_activity, and the day's
// distinct active students. first reports the student's first act that day.
func studentActed(ctx context.Context, tx pgx.Tx, lectureID, userID int64, at time.Time) (first bool, err error) {
	if _, err := tx.Exec(ctx, `INSERT INTO dash_students (lecture_id, user_id, last_activity) VALUES ($1, $2, $3)
		ON CONFLICT (lecture_id, user_id) DO UPDATE SET last_activity = GREATEST(dash_students.last_activity, $3)`,
		lectureID, userID, at); err != nil {
		return false, err
	}
	return changed(ctx, tx, `INSERT INTO dash_daily_active (lecture_id, day, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		lectureID, DayOf(at), userID)
}

// DayOf is the UTC date of t (midnight UTC), the dashboards' day.
func DayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// touchDay adds activity to the lecture's row of at's day and sets the row's
// progress snapshot to the lecture's counters now (as of that event).
func touchDay(ctx context.Context, tx pgx.Tx, lectureID int64, at time.Time, newActive bool, help int) error {
	active := 0
	if newActive {
		active = 1
	}
	_, err := tx.Exec(ctx, `INSERT INTO dash_daily (lecture_id, day, active_students, help_requests, enrolled, completions, total_subtasks)
		SELECT lecture_id, $2, $3, $4, enrolled, completions, total_subtasks FROM dash_lectures WHERE lecture_id = $1
		ON CONFLICT (lecture_id, day) DO UPDATE SET
			active_students = dash_daily.active_students + EXCLUDED.active_students,
			help_requests = dash_daily.help_requests + EXCLUDED.help_requests,
			enrolled = EXCLUDED.enrolled, completions = EXCLUDED.completions, total_subtasks = EXCLUDED.total_subtasks`,
		lectureID, DayOf(at), active, help)
	return err
}

// refreshStudentsSQL recomputes, for some of a lecture's students (%s is
// the condition on u), the live subtasks completed, the last such completion
// and the current subtask; it returns the change in the enrolled students'
// completions.
const refreshStudentsSQL = `
WITH upd AS (
	UPDATE dash_students ds SET
		completed_count = c.done,
		last_completed_at = c.last_done,
		current_subtask_id = cur.id,
		current_subtask_title = cur.title,
		current_status = cur.status
	FROM dash_students u
	CROSS JOIN LATERAL (
		SELECT count(*) AS done, max(p.completed_at) AS last_done
		FROM dash_progress p JOIN dash_subtasks s ON s.subtask_id = p.subtask_id AND NOT s.removed
		WHERE p.lecture_id = u.lecture_id AND p.user_id = u.user_id AND p.status = 'COMPLETED'
	) c
	LEFT JOIN LATERAL (
		SELECT s.subtask_id AS id, s.title, COALESCE(p.status, 'NOT_STARTED') AS status
		FROM dash_subtasks s
		LEFT JOIN dash_progress p ON p.lecture_id = s.lecture_id AND p.user_id = u.user_id AND p.subtask_id = s.subtask_id
		WHERE s.lecture_id = u.lecture_id AND NOT s.removed AND p.status IS DISTINCT FROM 'COMPLETED'
		ORDER BY (p.status = 'IN_PROGRESS') IS TRUE DESC, p.started_at DESC NULLS LAST,
			s.task_order, s.task_id, s.order_index, s.subtask_id
		LIMIT 1
	) cur ON true
	WHERE %s AND ds.lecture_id = u.lecture_id AND ds.user_id = u.user_id
	RETURNING ds.enrolled, ds.completed_count - u.completed_count AS delta
)
SELECT COALESCE(sum(delta) FILTER (WHERE enrolled), 0) FROM upd`

// Two statements rather than one with "$2 = 0 OR user_id = $2", each planned
// for its arguments on every run (QueryExecModeExec: a cached statement's
// generic plan made a progress event five times slower).
var (
	refreshStudentSQL        = fmt.Sprintf(refreshStudentsSQL, "u.lecture_id = $1 AND u.user_id = $2")
	refreshLectureStudentSQL = fmt.Sprintf(refreshStudentsSQL, "u.lecture_id = $1")
)

// refreshStudents refreshes one student (userID != 0) or all of the lecture's.
func refreshStudents(ctx context.Context, tx pgx.Tx, lectureID, userID int64) (int64, error) {
	var delta int64
	var err error
	if userID != 0 {
		err = tx.QueryRow(ctx, refreshStudentSQL, pgx.QueryExecModeExec, lectureID, userID).Scan(&delta)
	} else {
		err = tx.QueryRow(ctx, refreshLectureStudentSQL, pgx.QueryExecModeExec, lectureID).Scan(&delta)
	}
	return delta, err
}

// refreshLecture recomputes the lecture after a plan change: its live
// subtasks, every student's counts and current subtask, its completions.
func refreshLecture(ctx context.Context, tx pgx.Tx, lectureID int64, at time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE dash_lectures SET total_subtasks =
		(SELECT count(*) FROM dash_subtasks WHERE lecture_id = $1 AND NOT removed) WHERE lecture_id = $1`, lectureID); err != nil {
		return err
	}
	if _, err := refreshStudents(ctx, tx, lectureID, 0); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE dash_lectures SET completions =
		(SELECT COALESCE(sum(completed_count), 0) FROM dash_students WHERE lecture_id = $1 AND enrolled) WHERE lecture_id = $1`, lectureID); err != nil {
		return err
	}
	return touchDay(ctx, tx, lectureID, at, false, 0)
}

type dashMessage struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// DashboardProgressUpdate is the data of a progress_update message.
type DashboardProgressUpdate struct {
	UserID       int64                 `json:"user_id"`
	UserName     string                `json:"user_name"`
	SubtaskID    int64                 `json:"subtask_id"`
	SubtaskTitle string                `json:"subtask_title"`
	OldStatus    domain.ProgressStatus `json:"old_status"`
	NewStatus    domain.ProgressStatus `json:"new_status"`
	Timestamp    time.Time             `json:"timestamp"`
}

// DashboardStudentActivity is the data of a student_activity message.
type DashboardStudentActivity struct {
	UserID    int64     `json:"user_id"`
	UserName  string    `json:"user_name"`
	Activity  string    `json:"activity"`
	Timestamp time.Time `json:"timestamp"`
}

func progressUpdate(userID, subtaskID int64, title string, old, status domain.ProgressStatus, at time.Time) *DashboardProgressUpdate {
	return &DashboardProgressUpdate{UserID: userID, SubtaskID: subtaskID, SubtaskTitle: title, OldStatus: old, NewStatus: status, Timestamp: at.UTC()}
}

func (p *Dashboard) emitActivity(ctx context.Context, tx pgx.Tx, r Record, lectureID, userID int64, first bool, at time.Time, activity string) error {
	return p.emit(ctx, tx, r, lectureID, userID, first, at, &DashboardStudentActivity{UserID: userID, Activity: activity, Timestamp: at.UTC()})
}

// emit records the event's messages on the lecture's channel: its own (a
// *DashboardProgressUpdate, a *DashboardStudentActivity or a whole message
// object), and STARTED_LEARNING when first (see Dashboard).
func (p *Dashboard) emit(ctx context.Context, tx pgx.Tx, r Record, lectureID, userID int64, first bool, at time.Time, own any) error {
	if own == nil && !first {
		return nil
	}
	channel := DashboardLectureChannel(lectureID)
	name := ""
	if userID != 0 {
		var err error
		if name, err = helpUserName(ctx, tx, userID); err != nil {
			return err
		}
	}
	if first {
		pos := r.Position
		free := true
		if own != nil {
			pos--
			if pos == 0 {
				free = false
			} else if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM live_messages WHERE channel = $1 AND position = $2)`,
				channel, int64(pos)).Scan(&free); err != nil {
				return err
			}
		}
		if free {
			msg := dashMessage{Type: "student_activity", Data: DashboardStudentActivity{UserID: userID, UserName: name, Activity: ActivityStartedLearning, Timestamp: at.UTC()}}
			if err := recordDashboard(ctx, tx, channel, pos, msg); err != nil {
				return err
			}
		}
	}
	switch m := own.(type) {
	case nil:
		return nil
	case *DashboardProgressUpdate:
		m.UserName = name
		return recordDashboard(ctx, tx, channel, r.Position, dashMessage{Type: "progress_update", Data: m})
	case *DashboardStudentActivity:
		m.UserName = name
		return recordDashboard(ctx, tx, channel, r.Position, dashMessage{Type: "student_activity", Data: m})
	default:
		return recordDashboard(ctx, tx, channel, r.Position, m)
	}
}

func recordDashboard(ctx context.Context, tx pgx.Tx, channel string, position uint64, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode message for %s: %w", channel, err)
	}
	return outbox.Record(ctx, tx, DashboardProjector, outbox.Message{Channel: channel, Position: position, Payload: data})
}
