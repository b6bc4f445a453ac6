package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/pgdb"
)

type LecturesConfig struct {
	Store eventstore.Store
	// Pool holds the id sequences and the task/subtask → lecture lookup tables.
	Pool *pgxpool.Pool
	// WaitFor blocks until the read models reflect a global position
	// (read-your-writes); nil does not wait.
	WaitFor func(ctx context.Context, position uint64) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Lectures holds the handlers of the commands of the lecture-{id} streams
// (lectures, tasks, subtasks) and of enrollment (the first event of a
// progress-{lectureId}-{userId} stream); http_lectures.go mounts them.
type Lectures struct {
	cfg   LecturesConfig
	cache lectureCache

	Create        CreateLectureHandler
	Update        UpdateLectureHandler
	Deactivate    DeactivateLectureHandler
	Enroll        EnrollHandler
	AddTask       AddTaskHandler
	UpdateTask    UpdateTaskHandler
	AddSubtask    AddSubtaskHandler
	UpdateSubtask UpdateSubtaskHandler
	RemoveSubtask RemoveSubtaskHandler
}

// NewLectures returns the lecture commands; it panics without a store or pool
// (a wiring bug).
func NewLectures(cfg LecturesConfig) *Lectures {
	if cfg.Store == nil || cfg.Pool == nil {
		panic("commands: NewLectures needs a Store and a Pool")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Lectures{cfg: cfg}
	l.Create, l.Update, l.Deactivate, l.Enroll = CreateLectureHandler{l}, UpdateLectureHandler{l}, DeactivateLectureHandler{l}, EnrollHandler{l}
	l.AddTask, l.UpdateTask = AddTaskHandler{l}, UpdateTaskHandler{l}
	l.AddSubtask, l.UpdateSubtask, l.RemoveSubtask = AddSubtaskHandler{l}, UpdateSubtaskHandler{l}, RemoveSubtaskHandler{l}
	return l
}

// waitTimeout bounds how long a command answer waits for the read models.
const waitTimeout = 5 * time.Second

// now is the command time, at the microsecond precision PostgreSQL keeps, so
// that a command's answer and a later query show the same instant.
func (l *Lectures) now() time.Time { return lectureClock(l.cfg.Now) }

func lectureClock(now func() time.Time) time.Time {
	return now().UTC().Truncate(time.Microsecond)
}

// wait blocks (bounded) until the read models reflect position; a timeout is
// not an error for the command, which has happened.
func (l *Lectures) wait(ctx context.Context, position uint64) {
	waitReadModels(ctx, l.cfg.WaitFor, position)
}

func waitReadModels(ctx context.Context, waitFor func(context.Context, uint64) error, position uint64) {
	if waitFor == nil || position == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if err := waitFor(wctx, position); err != nil && ctx.Err() == nil {
		readModelsBehind(ctx)
	}
}

func (l *Lectures) nextID(ctx context.Context, sequence string) (int64, error) {
	return pgdb.NextID(ctx, l.cfg.Pool, sequence, eventstore.CommandScope(ctx, "id:"+sequence))
}

// allocateChild takes the next id of a task or subtask and records which
// lecture it belongs to.
func (l *Lectures) allocateChild(ctx context.Context, table, column, sequence string, lectureID int64) (int64, error) {
	var id int64
	err := l.cfg.Pool.QueryRow(ctx,
		`INSERT INTO `+table+` (`+column+`, lecture_id) VALUES (nextval('`+sequence+`'), $1) RETURNING `+column, lectureID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("allocate %s: %w", column, err)
	}
	return id, nil
}

// LectureOfTask returns the lecture a task id was allocated for (NOT_FOUND if none).
func (l *Lectures) LectureOfTask(ctx context.Context, taskID int64) (int64, error) {
	return lookupLecture(ctx, l.cfg.Pool, `SELECT lecture_id FROM lecture_task_ids WHERE task_id = $1`, taskID, "task")
}

// subtaskLectureQuery looks up the lecture a subtask id was allocated for.
const subtaskLectureQuery = `SELECT lecture_id FROM lecture_subtask_ids WHERE subtask_id = $1`

// LectureOfSubtask returns the lecture a subtask id was allocated for (NOT_FOUND if none).
func (l *Lectures) LectureOfSubtask(ctx context.Context, subtaskID int64) (int64, error) {
	if id, ok := l.cache.subtask(subtaskID); ok {
		return id, nil
	}
	id, err := lookupLecture(ctx, l.cfg.Pool, subtaskLectureQuery, subtaskID, "subtask")
	if err == nil {
		l.cache.storeSubtask(subtaskID, id)
	}
	return id, err
}

func lookupLecture(ctx context.Context, pool *pgxpool.Pool, query string, id int64, what string) (int64, error) {
	var lectureID int64
	err := pool.QueryRow(ctx, query, id).Scan(&lectureID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, domain.NotFound(what)
	}
	if err != nil {
		return 0, fmt.Errorf("look up the lecture of %s %d: %w", what, id, err)
	}
	return lectureID, nil
}

// LoadLecture folds the lecture-{id} stream (the write side's current truth).
// Between student commands the fold is kept (lecturecache.go): the store is
// asked only whether the stream grew.
func (l *Lectures) LoadLecture(ctx context.Context, lectureID int64) (domain.Lecture, error) {
	return l.cache.load(ctx, l.cfg.Store, lectureID)
}

func (l *Lectures) execLecture(ctx context.Context, lectureID int64, cmd domain.LectureCommand, meta eventstore.Metadata) (Result[domain.Lecture], error) {
	return l.execLectureWith(ctx, lectureID, domain.LectureDecider, cmd, meta)
}

func (l *Lectures) execLectureWith(ctx context.Context, lectureID int64, d domain.Decider[domain.Lecture, domain.LectureCommand], cmd domain.LectureCommand, meta eventstore.Metadata) (Result[domain.Lecture], error) {
	meta.LectureID = lectureID
	res, err := Execute(ctx, l.cfg.Store, domain.LectureStream(lectureID), d, cmd, meta)
	if err != nil {
		return res, err
	}
	l.wait(ctx, res.Position)
	return res, nil
}

// autoOrder marks an order_index the client left out: the command takes the
// place after the last task (or the task's last subtask) at decision time.
const autoOrder = -1 << 31

// orderingDecider is LectureDecider with autoOrder resolved against the state
// the command is decided on (so a retried command recomputes it).
var orderingDecider = domain.Decider[domain.Lecture, domain.LectureCommand]{
	Initial: domain.LectureDecider.Initial,
	Evolve:  domain.LectureDecider.Evolve,
	Decide: func(s domain.Lecture, c domain.LectureCommand) ([]domain.Event, error) {
		switch cmd := c.(type) {
		case domain.AddTask:
			if cmd.OrderIndex == autoOrder {
				cmd.OrderIndex = 1
				for _, t := range s.Tasks() {
					cmd.OrderIndex = max(cmd.OrderIndex, t.OrderIndex+1)
				}
				c = cmd
			}
		case domain.AddSubtask:
			if cmd.OrderIndex == autoOrder {
				cmd.OrderIndex = 1
				for _, st := range s.Subtasks(cmd.TaskID) {
					cmd.OrderIndex = max(cmd.OrderIndex, st.OrderIndex+1)
				}
				c = cmd
			}
		}
		return domain.LectureDecider.Decide(s, c)
	},
}

func orderOrAuto(v *int) int {
	switch {
	case v == nil:
		return autoOrder
	case *v == autoOrder:
		return 0 // a client's own value, never the marker: refused (below 1)
	}
	return *v
}

// checkUser refuses a body's user_id that names no user (an ADMIN acting
// for someone else), so that no stream is opened for a user who does not
// exist. Only an ADMIN or the server gets this far with another's id; anyone
// else is refused by the decider (403) without learning whether it exists.
func checkUser(ctx context.Context, pool *pgxpool.Pool, actor domain.Actor, userID int64) error {
	if userID == 0 || userID == actor.UserID || (!actor.IsAdmin() && !actor.IsSystem()) {
		return nil
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, userID).Scan(&exists); err != nil {
		return fmt.Errorf("look up user %d: %w", userID, err)
	}
	if !exists {
		return domain.Invalid("invalid field", map[string]string{"user_id": "is not a user"})
	}
	return nil
}

// CanSeeInactiveLecture reports whether actor may see an inactive lecture of
// instructorID: its owner, an ANALYST or an ADMIN. Everyone else is told it
// does not exist (404).
func CanSeeInactiveLecture(actor domain.Actor, instructorID int64) bool {
	return actor.Role == domain.RoleAnalyst || actor.Manages(instructorID)
}
