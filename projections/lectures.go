package projections

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
)

// LecturesProjector is the lectures projector's name (its checkpoint key).
const LecturesProjector = "lectures"

// LecturesTables are the read models the lectures projector owns; Reset
// empties them all.
var LecturesTables = []string{"rm_lectures", "rm_lecture_tasks", "rm_lecture_subtasks", "rm_enrollments", "rm_subtask_progress"}

// DocumentInvalidator drops cached copies of lecture and task documents.
// The lectures projector calls Hold while it applies an event (before its
// batch commits: the cache drops the documents and stores none of them until
// Invalidate), and Invalidate after the batch committed, with every lecture
// and task whose document the batch changed. Read-your-writes needs the
// first: the runner reports a batch applied before AfterCommit runs.
type DocumentInvalidator interface {
	Hold(ctx context.Context, lectureIDs, taskIDs []int64)
	Invalidate(ctx context.Context, lectureIDs, taskIDs []int64)
}

// Lectures projects the lecture-{id} and progress-{lectureId}-{userId}
// streams into the read models behind the lecture, task and progress queries:
// rm_lectures (with enrolled_count), rm_lecture_tasks, rm_lecture_subtasks
// (removed ones kept and flagged), rm_enrollments and rm_subtask_progress.
type Lectures struct {
	// Cache, when set, is told which documents each batch changed.
	Cache DocumentInvalidator
}

// Name implements Projector.
func (*Lectures) Name() string { return LecturesProjector }

// Pipelined implements Pipelined: Handle never reads a command tag.
func (*Lectures) Pipelined() bool { return true }

// Tables implements TableOwner: the projector can be rebuilt online.
func (*Lectures) Tables() []string { return LecturesTables }

// AfterSwap implements AfterSwapper: rebuilt read models may differ from what
// was cached, so every lecture and task document is dropped.
func (p *Lectures) AfterSwap(ctx context.Context, db Querier) {
	if p.Cache == nil {
		return
	}
	ids := func(sql string) []int64 {
		rows, err := db.Query(ctx, sql)
		if err != nil {
			return nil
		}
		out, _ := pgx.CollectRows(rows, pgx.RowTo[int64])
		return out
	}
	p.Cache.Invalidate(ctx, ids(`SELECT id FROM rm_lectures`), ids(`SELECT id FROM rm_lecture_tasks`))
}

// Reset implements Projector: it empties every read model of the projector.
func (*Lectures) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(LecturesTables, ", "))
	return err
}

// Handle implements Projector.
func (p *Lectures) Handle(ctx context.Context, tx pgx.Tx, r Record) error {
	p.hold(ctx, r.Payload)
	switch e := r.Payload.(type) {
	case domain.LectureCreated:
		return p.OnLectureCreated(ctx, tx, e)
	case domain.LectureUpdated:
		return p.OnLectureUpdated(ctx, tx, e)
	case domain.LectureDeactivated:
		return p.OnLectureDeactivated(ctx, tx, e)
	case domain.TaskAdded:
		return p.OnTaskAdded(ctx, tx, e)
	case domain.TaskUpdated:
		return p.OnTaskUpdated(ctx, tx, e)
	case domain.SubtaskAdded:
		return p.OnSubtaskAdded(ctx, tx, e)
	case domain.SubtaskUpdated:
		return p.OnSubtaskUpdated(ctx, tx, e)
	case domain.SubtaskRemoved:
		return p.OnSubtaskRemoved(ctx, tx, e)
	case domain.StudentEnrolled:
		return p.OnStudentEnrolled(ctx, tx, e)
	case domain.SubtaskStarted:
		return p.OnSubtaskStarted(ctx, tx, e)
	case domain.SubtaskCompleted:
		return p.OnSubtaskCompleted(ctx, tx, e)
	}
	return nil
}

// OnLectureCreated inserts the lecture.
func (*Lectures) OnLectureCreated(ctx context.Context, tx pgx.Tx, e domain.LectureCreated) error {
	_, err := tx.Exec(ctx, `INSERT INTO rm_lectures (id, instructor_id, title, description, thumbnail_url, is_active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, true, $6, $6)
		ON CONFLICT (id) DO NOTHING`,
		e.LectureID, e.InstructorID, e.Title, e.Description, e.ThumbnailURL, e.CreatedAt)
	return err
}

// OnLectureUpdated applies the changed fields.
func (*Lectures) OnLectureUpdated(ctx context.Context, tx pgx.Tx, e domain.LectureUpdated) error {
	_, err := tx.Exec(ctx, `UPDATE rm_lectures SET
		title = COALESCE($2, title), description = COALESCE($3, description),
		thumbnail_url = COALESCE($4, thumbnail_url), is_active = COALESCE($5, is_active),
		updated_at = $6 WHERE id = $1`,
		e.LectureID, e.Title, e.Description, e.ThumbnailURL, e.IsActive, e.UpdatedAt)
	return err
}

// OnLectureDeactivated marks the lecture inactive.
func (*Lectures) OnLectureDeactivated(ctx context.Context, tx pgx.Tx, e domain.LectureDeactivated) error {
	_, err := tx.Exec(ctx, `UPDATE rm_lectures SET is_active = false, updated_at = $2 WHERE id = $1`, e.LectureID, e.DeactivatedAt)
	return err
}

// OnTaskAdded inserts the task.
func (*Lectures) OnTaskAdded(ctx context.Context, tx pgx.Tx, e domain.TaskAdded) error {
	_, err := tx.Exec(ctx, `INSERT INTO rm_lecture_tasks (id, lecture_id, title, description, order_index, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING`,
		e.TaskID, e.LectureID, e.Title, e.Description, e.OrderIndex, e.AddedAt)
	if err != nil {
		return err
	}
	return touchLecture(ctx, tx, e.LectureID, e.AddedAt)
}

// OnTaskUpdated replaces the task's fields.
func (*Lectures) OnTaskUpdated(ctx context.Context, tx pgx.Tx, e domain.TaskUpdated) error {
	_, err := tx.Exec(ctx, `UPDATE rm_lecture_tasks SET title = $2, description = $3, order_index = $4, updated_at = $5 WHERE id = $1`,
		e.TaskID, e.Title, e.Description, e.OrderIndex, e.UpdatedAt)
	if err != nil {
		return err
	}
	return touchLecture(ctx, tx, e.LectureID, e.UpdatedAt)
}

// OnSubtaskAdded inserts the subtask.
func (*Lectures) OnSubtaskAdded(ctx context.Context, tx pgx.Tx, e domain.SubtaskAdded) error {
	_, err := tx.Exec(ctx, `INSERT INTO rm_lecture_subtasks (id, task_id, lecture_id, title, description, order_index,
			target_action, target_element_hint, guide_text, voice_guide_text, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (id) DO NOTHING`,
		e.SubtaskID, e.TaskID, e.LectureID, e.Title, e.Description, e.OrderIndex,
		string(e.TargetAction), e.TargetElementHint, e.GuideText, e.VoiceGuideText, e.AddedAt)
	if err != nil {
		return err
	}
	return touchLecture(ctx, tx, e.LectureID, e.AddedAt)
}

// OnSubtaskUpdated replaces the subtask's fields.
func (*Lectures) OnSubtaskUpdated(ctx context.Context, tx pgx.Tx, e domain.SubtaskUpdated) error {
	_, err := tx.Exec(ctx, `UPDATE rm_lecture_subtasks SET task_id = $2, title = $3, description = $4, order_index = $5,
		target_action = $6, target_element_hint = $7, guide_text = $8, voice_guide_text = $9, updated_at = $10 WHERE id = $1`,
		e.SubtaskID, e.TaskID, e.Title, e.Description, e.OrderIndex,
		string(e.TargetAction), e.TargetElementHint, e.GuideText, e.VoiceGuideText, e.UpdatedAt)
	if err != nil {
		return err
	}
	return touchLecture(ctx, tx, e.LectureID, e.UpdatedAt)
}

// OnSubtaskRemoved flags the subtask removed (it leaves the plan, not the history).
func (*Lectures) OnSubtaskRemoved(ctx context.Context, tx pgx.Tx, e domain.SubtaskRemoved) error {
	_, err := tx.Exec(ctx, `UPDATE rm_lecture_subtasks SET removed = true, updated_at = $2 WHERE id = $1`, e.SubtaskID, e.RemovedAt)
	if err != nil {
		return err
	}
	return touchLecture(ctx, tx, e.LectureID, e.RemovedAt)
}

// OnStudentEnrolled records the enrollment and counts it on the lecture.
func (*Lectures) OnStudentEnrolled(ctx context.Context, tx pgx.Tx, e domain.StudentEnrolled) error {
	var session *int64
	if e.SessionID != 0 {
		session = &e.SessionID
	}
	// One statement (no look at the command tag), so the projector can be pipelined.
	_, err := tx.Exec(ctx, `WITH ins AS (
			INSERT INTO rm_enrollments (enrollment_id, lecture_id, user_id, session_id, enrolled_at, last_activity)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING RETURNING 1)
		UPDATE rm_lectures SET enrolled_count = enrolled_count + (SELECT count(*) FROM ins) WHERE id = $2`,
		e.EnrollmentID, e.LectureID, e.UserID, session, e.EnrolledAt)
	return err
}

// OnSubtaskStarted records the student's start of a subtask.
func (*Lectures) OnSubtaskStarted(ctx context.Context, tx pgx.Tx, e domain.SubtaskStarted) error {
	return recordProgress(ctx, tx, e.LectureID, e.UserID, e.SubtaskID, e.TaskID, e.SubtaskTitle, e.SessionID, domain.ProgressStatusInProgress, e.StartedAt)
}

// OnSubtaskCompleted records the student's completion of a subtask.
func (*Lectures) OnSubtaskCompleted(ctx context.Context, tx pgx.Tx, e domain.SubtaskCompleted) error {
	return recordProgress(ctx, tx, e.LectureID, e.UserID, e.SubtaskID, e.TaskID, e.SubtaskTitle, e.SessionID, domain.ProgressStatusCompleted, e.CompletedAt)
}

// recordProgress writes a progress event: the progress row (its status,
// and started_at or completed_at) and the enrollment's last activity (no look
// at the command tags, so the projector can be pipelined).
func recordProgress(ctx context.Context, tx pgx.Tx, lectureID, userID, subtaskID, taskID int64, title string, sessionID int64, status domain.ProgressStatus, at time.Time) error {
	if err := upsertProgress(ctx, tx, lectureID, userID, subtaskID, taskID, title, sessionID, status, at); err != nil {
		return err
	}
	return touchEnrollment(ctx, tx, lectureID, userID, at)
}

// HandleBatch implements BatchHandler: progress rows are written event by
// event, but each student's enrollment activity once per batch (the latest
// time), which halves the statements of a class's history.
func (p *Lectures) HandleBatch(ctx context.Context, tx pgx.Tx, records []Record) error {
	type student struct{ lecture, user int64 }
	var order []student
	latest := map[student]time.Time{}
	touch := func(lecture, user int64, at time.Time) {
		k := student{lecture, user}
		prev, seen := latest[k]
		if !seen {
			order = append(order, k)
		}
		if !seen || at.After(prev) {
			latest[k] = at
		}
	}
	for _, r := range records {
		var err error
		switch e := r.Payload.(type) {
		case domain.SubtaskStarted:
			p.hold(ctx, r.Payload)
			err = upsertProgress(ctx, tx, e.LectureID, e.UserID, e.SubtaskID, e.TaskID, e.SubtaskTitle, e.SessionID, domain.ProgressStatusInProgress, e.StartedAt)
			touch(e.LectureID, e.UserID, e.StartedAt)
		case domain.SubtaskCompleted:
			p.hold(ctx, r.Payload)
			err = upsertProgress(ctx, tx, e.LectureID, e.UserID, e.SubtaskID, e.TaskID, e.SubtaskTitle, e.SessionID, domain.ProgressStatusCompleted, e.CompletedAt)
			touch(e.LectureID, e.UserID, e.CompletedAt)
		default:
			err = p.Handle(ctx, tx, r)
		}
		if err != nil {
			return fmt.Errorf("%s at position %d (%s): %w", r.Type, r.Position, r.Stream, err)
		}
	}
	for _, k := range order {
		if err := touchEnrollment(ctx, tx, k.lecture, k.user, latest[k]); err != nil {
			return err
		}
	}
	return nil
}

// upsertProgress writes one progress row as OnSubtaskStarted and
// OnSubtaskCompleted do, without the enrollment's activity.
func upsertProgress(ctx context.Context, tx pgx.Tx, lectureID, userID, subtaskID, taskID int64, title string, sessionID int64, status domain.ProgressStatus, at time.Time) error {
	column := "started_at"
	if status == domain.ProgressStatusCompleted {
		column = "completed_at"
	}
	_, err := tx.Exec(ctx, `INSERT INTO rm_subtask_progress (lecture_id, user_id, subtask_id, task_id, subtask_title, status, `+column+`, session_id)
		VALUES ($1, $2, $3, $4, $5, $8, $6, $7)
		ON CONFLICT (lecture_id, user_id, subtask_id) DO UPDATE SET status = $8, `+column+` = $6,
			task_id = $4, subtask_title = $5, session_id = COALESCE($7, rm_subtask_progress.session_id)`,
		lectureID, userID, subtaskID, taskID, title, at, nullID(sessionID), string(status))
	return err
}

func touchLecture(ctx context.Context, tx pgx.Tx, lectureID int64, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE rm_lectures SET updated_at = $2 WHERE id = $1`, lectureID, at)
	return err
}

func touchEnrollment(ctx context.Context, tx pgx.Tx, lectureID, userID int64, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE rm_enrollments SET last_activity = GREATEST(last_activity, $3) WHERE lecture_id = $1 AND user_id = $2`,
		lectureID, userID, at)
	return err
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// documentsOf lists the lecture and task documents an event changes.
func documentsOf(ev domain.Event) (lectures, tasks []int64) {
	switch e := ev.(type) {
	case domain.LectureCreated:
		return []int64{e.LectureID}, nil
	case domain.LectureUpdated:
		return []int64{e.LectureID}, nil
	case domain.LectureDeactivated:
		return []int64{e.LectureID}, nil
	case domain.TaskAdded:
		return []int64{e.LectureID}, []int64{e.TaskID}
	case domain.TaskUpdated:
		return []int64{e.LectureID}, []int64{e.TaskID}
	case domain.SubtaskAdded:
		return []int64{e.LectureID}, []int64{e.TaskID}
	case domain.SubtaskUpdated:
		return []int64{e.LectureID}, []int64{e.TaskID}
	case domain.SubtaskRemoved:
		return []int64{e.LectureID}, []int64{e.TaskID}
	case domain.StudentEnrolled:
		return []int64{e.LectureID}, nil // enrolled_count
	}
	return nil, nil
}

// hold tells the cache, before the batch commits, which documents it changes.
func (p *Lectures) hold(ctx context.Context, ev domain.Event) {
	if p.Cache == nil || Rebuilding(ctx) {
		return
	}
	if lectures, tasks := documentsOf(ev); len(lectures)+len(tasks) > 0 {
		p.Cache.Hold(ctx, lectures, tasks)
	}
}

// AfterCommit implements AfterCommitter: it tells the cache which lecture and
// task documents the batch changed.
func (p *Lectures) AfterCommit(ctx context.Context, batch []Record) {
	if p.Cache == nil {
		return
	}
	var lectures, tasks []int64
	for _, r := range batch {
		l, t := documentsOf(r.Payload)
		lectures, tasks = append(lectures, l...), append(tasks, t...)
	}
	if len(lectures) == 0 && len(tasks) == 0 {
		return
	}
	slices.Sort(lectures)
	slices.Sort(tasks)
	p.Cache.Invalidate(ctx, slices.Compact(lectures), slices.Compact(tasks))
}
