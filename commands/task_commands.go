package commands

import (
	"context"
	"errors"
	"time"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// LectureChange is what a task or subtask command did: the lecture after
// it, and the id of the task or subtask it addressed (the new one for an add).
type LectureChange struct {
	Lecture domain.Lecture
	ID      int64
}

// AddTask adds a task to a lecture. OrderIndex nil places it after the last.
type AddTask struct {
	Actor              domain.Actor
	LectureID          int64
	Title, Description string
	OrderIndex         *int
	Meta               eventstore.Metadata
}

func (c AddTask) toDomain(at time.Time, taskID int64) domain.AddTask {
	return domain.AddTask{
		Actor: c.Actor, At: at, TaskID: taskID,
		Title: c.Title, Description: c.Description, OrderIndex: orderOrAuto(c.OrderIndex),
	}
}

// AddTaskHandler handles AddTask.
type AddTaskHandler struct{ l *Lectures }

// Handle allocates the task's id and adds it. Refusals: NOT_FOUND (lecture),
// FORBIDDEN, INVALID_REQUEST.
func (h AddTaskHandler) Handle(ctx context.Context, cmd AddTask) (LectureChange, error) {
	l := h.l
	// Refuse before allocating an id for a lecture that does not exist.
	lec, err := l.LoadLecture(ctx, cmd.LectureID)
	if err == nil && !lec.Exists() {
		err = domain.NotFound("lecture")
	}
	if err != nil {
		return LectureChange{}, err
	}
	taskID, err := l.allocateChild(ctx, "lecture_task_ids", "task_id", "task_ids", cmd.LectureID)
	if err != nil {
		return LectureChange{}, err
	}
	res, err := l.execLectureWith(ctx, cmd.LectureID, orderingDecider, cmd.toDomain(l.now(), taskID), cmd.Meta)
	return LectureChange{Lecture: res.State, ID: taskID}, err
}

// UpdateTask changes the fields of a task that are not nil.
type UpdateTask struct {
	Actor              domain.Actor
	TaskID             int64
	Title, Description *string
	OrderIndex         *int
	Meta               eventstore.Metadata
}

func (c UpdateTask) toDomain(at time.Time) domain.UpdateTask {
	return domain.UpdateTask{
		Actor: c.Actor, At: at, TaskID: c.TaskID,
		Title: c.Title, Description: c.Description, OrderIndex: c.OrderIndex,
	}
}

// UpdateTaskHandler handles UpdateTask.
type UpdateTaskHandler struct{ l *Lectures }

// Handle updates the task. Refusals: NOT_FOUND (task), FORBIDDEN, INVALID_REQUEST.
func (h UpdateTaskHandler) Handle(ctx context.Context, cmd UpdateTask) (LectureChange, error) {
	lectureID, err := h.l.LectureOfTask(ctx, cmd.TaskID)
	if err != nil {
		return LectureChange{}, err
	}
	res, err := h.l.execLecture(ctx, lectureID, cmd.toDomain(h.l.now()), cmd.Meta)
	return LectureChange{Lecture: res.State, ID: cmd.TaskID}, notFoundAs(err, "task")
}

// AddSubtask adds a subtask to a task. OrderIndex nil places it after the
// task's last subtask.
type AddSubtask struct {
	Actor              domain.Actor
	TaskID             int64
	Title, Description string
	OrderIndex         *int
	TargetAction       domain.TargetAction
	TargetElementHint  string
	GuideText          string
	VoiceGuideText     string
	Meta               eventstore.Metadata
}

func (c AddSubtask) toDomain(at time.Time, subtaskID int64) domain.AddSubtask {
	return domain.AddSubtask{
		Actor: c.Actor, At: at, TaskID: c.TaskID, SubtaskID: subtaskID,
		Title: c.Title, Description: c.Description, OrderIndex: orderOrAuto(c.OrderIndex),
		TargetAction: c.TargetAction, TargetElementHint: c.TargetElementHint,
		GuideText: c.GuideText, VoiceGuideText: c.VoiceGuideText,
	}
}

// AddSubtaskHandler handles AddSubtask.
type AddSubtaskHandler struct{ l *Lectures }

// Handle allocates the subtask's id and adds it. Refusals: NOT_FOUND (task),
// FORBIDDEN, INVALID_REQUEST.
func (h AddSubtaskHandler) Handle(ctx context.Context, cmd AddSubtask) (LectureChange, error) {
	l := h.l
	// Refuse before allocating an id for a task that does not exist (any more).
	lectureID, err := l.LectureOfTask(ctx, cmd.TaskID)
	if err == nil {
		var lec domain.Lecture
		if lec, err = l.LoadLecture(ctx, lectureID); err == nil {
			if _, ok := lec.Task(cmd.TaskID); !ok {
				err = domain.NotFound("task")
			}
		}
	}
	if err != nil {
		return LectureChange{}, err
	}
	subtaskID, err := l.allocateChild(ctx, "lecture_subtask_ids", "subtask_id", "subtask_ids", lectureID)
	if err != nil {
		return LectureChange{}, err
	}
	res, err := l.execLectureWith(ctx, lectureID, orderingDecider, cmd.toDomain(l.now(), subtaskID), cmd.Meta)
	return LectureChange{Lecture: res.State, ID: subtaskID}, notFoundAs(err, "task")
}

// UpdateSubtask changes the fields of a subtask that are not nil.
type UpdateSubtask struct {
	Actor              domain.Actor
	SubtaskID          int64
	Title, Description *string
	OrderIndex         *int
	TargetAction       *domain.TargetAction
	TargetElementHint  *string
	GuideText          *string
	VoiceGuideText     *string
	Meta               eventstore.Metadata
}

func (c UpdateSubtask) toDomain(at time.Time) domain.UpdateSubtask {
	return domain.UpdateSubtask{
		Actor: c.Actor, At: at, SubtaskID: c.SubtaskID,
		Title: c.Title, Description: c.Description, OrderIndex: c.OrderIndex, TargetAction: c.TargetAction,
		TargetElementHint: c.TargetElementHint, GuideText: c.GuideText, VoiceGuideText: c.VoiceGuideText,
	}
}

// UpdateSubtaskHandler handles UpdateSubtask.
type UpdateSubtaskHandler struct{ l *Lectures }

// Handle updates the subtask. Refusals: NOT_FOUND (subtask), FORBIDDEN, INVALID_REQUEST.
func (h UpdateSubtaskHandler) Handle(ctx context.Context, cmd UpdateSubtask) (LectureChange, error) {
	return h.l.onSubtask(ctx, cmd.SubtaskID, cmd.toDomain(h.l.now()), cmd.Meta)
}

// RemoveSubtask removes a subtask from its task (DELETE /api/subtasks/{id}).
type RemoveSubtask struct {
	Actor     domain.Actor
	SubtaskID int64
	Meta      eventstore.Metadata
}

// RemoveSubtaskHandler handles RemoveSubtask.
type RemoveSubtaskHandler struct{ l *Lectures }

// Handle removes the subtask. Refusals: NOT_FOUND (subtask), FORBIDDEN.
func (h RemoveSubtaskHandler) Handle(ctx context.Context, cmd RemoveSubtask) (LectureChange, error) {
	return h.l.onSubtask(ctx, cmd.SubtaskID, domain.RemoveSubtask{Actor: cmd.Actor, At: h.l.now(), SubtaskID: cmd.SubtaskID}, cmd.Meta)
}

// onSubtask runs cmd on the lecture of subtaskID.
func (l *Lectures) onSubtask(ctx context.Context, subtaskID int64, cmd domain.LectureCommand, meta eventstore.Metadata) (LectureChange, error) {
	lectureID, err := l.LectureOfSubtask(ctx, subtaskID)
	if err != nil {
		return LectureChange{}, err
	}
	res, err := l.execLecture(ctx, lectureID, cmd, meta)
	return LectureChange{Lecture: res.State, ID: subtaskID}, notFoundAs(err, "subtask")
}

// notFoundAs renames a NOT_FOUND about the lecture (a lookup row whose
// command was refused) after the resource the client addressed.
func notFoundAs(err error, what string) error {
	if errors.Is(err, domain.ErrNotFound) {
		return domain.NotFound(what)
	}
	return err
}
