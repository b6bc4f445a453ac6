package commands

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/web"
)

// LecturesConfig configures the lecture commands.
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

// Lectures handles the commands of the lecture-{id} streams (lectures, tasks,
// subtasks) and enrollment (the first event of a progress-{lectureId}-{userId}
// stream), and serves their HTTP endpoints.
type Lectures struct {
	cfg LecturesConfig
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
	return &Lectures{cfg: cfg}
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
	var id int64
	if err := l.cfg.Pool.QueryRow(ctx, `SELECT nextval($1::regclass)`, sequence).Scan(&id); err != nil {
		return 0, fmt.Errorf("allocate id from %s: %w", sequence, err)
	}
	return id, nil
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

// LectureOfSubtask returns the lecture a subtask id was allocated for (NOT_FOUND if none).
func (l *Lectures) LectureOfSubtask(ctx context.Context, subtaskID int64) (int64, error) {
	return lookupLecture(ctx, l.cfg.Pool, `SELECT lecture_id FROM lecture_subtask_ids WHERE subtask_id = $1`, subtaskID, "subtask")
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
func (l *Lectures) LoadLecture(ctx context.Context, lectureID int64) (domain.Lecture, error) {
	s, _, err := Load(ctx, l.cfg.Store, domain.LectureStream(lectureID), domain.LectureDecider)
	return s, err
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

// CreateLectureInput is what POST /api/lectures carries.
type CreateLectureInput struct {
	Title        string `json:"title"`
	Description  string `json:"description"`
	ThumbnailURL string `json:"thumbnail_url"`
}

// CreateLecture allocates a lecture id and creates the lecture, owned by actor.
func (l *Lectures) CreateLecture(ctx context.Context, actor domain.Actor, in CreateLectureInput, meta eventstore.Metadata) (domain.Lecture, error) {
	if actor.Role != domain.RoleInstructor && !actor.IsAdmin() {
		return domain.Lecture{}, domain.Forbidden("only instructors create lectures")
	}
	id, err := l.nextID(ctx, "lecture_ids")
	if err != nil {
		return domain.Lecture{}, err
	}
	res, err := l.execLecture(ctx, id, in.command(actor, l.now(), id), meta)
	return res.State, err
}

func (in CreateLectureInput) command(actor domain.Actor, at time.Time, id int64) domain.CreateLecture {
	return domain.CreateLecture{
		Actor: actor, At: at, LectureID: id,
		Title: in.Title, Description: in.Description, ThumbnailURL: in.ThumbnailURL,
	}
}

// Enrollment is a student's enrollment in a lecture.
type Enrollment struct {
	EnrollmentID int64     `json:"enrollment_id"`
	LectureID    int64     `json:"lecture_id"`
	UserID       int64     `json:"user_id"`
	EnrolledAt   time.Time `json:"enrolled_at"`
	// Position is the global position of the StudentEnrolled event (0 when
	// the student was already enrolled); the read models reflect it on return.
	Position uint64 `json:"-"`
}

// Enroll enrolls userID (0 = the actor) in lectureID. created is false when
// the student was already enrolled: the enrollment is then the existing one
// and no event is appended. sessionID is the session whose join enrolls the
// student (0 for an explicit enrollment); it goes into the event and its
// metadata. An explicit enrollment (sessionID 0) in an inactive lecture is
// NOT_FOUND unless the actor may see inactive lectures (its owner, ANALYST,
// ADMIN); a session join enrolls whatever the lecture's state. Other
// refusals: NOT_FOUND (no such lecture), FORBIDDEN (not a STUDENT enrolling
// themself, nor an ADMIN). The caller's meta is completed with the lecture,
// session and acting user.
func (l *Lectures) Enroll(ctx context.Context, actor domain.Actor, userID, lectureID, sessionID int64, meta eventstore.Metadata) (e Enrollment, created bool, err error) {
	lec, err := l.LoadLecture(ctx, lectureID)
	if err != nil {
		return Enrollment{}, false, err
	}
	if !lec.Exists() {
		return Enrollment{}, false, domain.NotFound("lecture")
	}
	if sessionID == 0 && !lec.IsActive() && !CanSeeInactiveLecture(actor, lec.InstructorID()) {
		return Enrollment{}, false, domain.NotFound("lecture")
	}
	if userID == 0 {
		userID = actor.UserID
	}
	stream := domain.ProgressStream(lectureID, userID)
	cmd := domain.Enroll{Actor: actor, At: l.now(), LectureID: lectureID, UserID: userID, SessionID: sessionID}
	state, _, err := Load(ctx, l.cfg.Store, stream, domain.ProgressDecider)
	if err != nil {
		return Enrollment{}, false, err
	}
	// Already enrolled: the decider still rules on who may ask (FORBIDDEN).
	if state.Enrolled() {
		if _, err := domain.ProgressDecider.Decide(state, cmd); err != nil {
			return Enrollment{}, false, err
		}
		return enrollmentOf(state, 0), false, nil
	}
	if cmd.EnrollmentID, err = l.nextID(ctx, "enrollment_ids"); err != nil {
		return Enrollment{}, false, err
	}
	if meta.UserID == 0 {
		meta.UserID = actor.UserID
	}
	meta.LectureID = lectureID
	if sessionID != 0 {
		meta.SessionID = sessionID
	}
	res, err := Execute(ctx, l.cfg.Store, stream, domain.ProgressDecider, domain.ProgressCommand(cmd), meta)
	if err != nil {
		return Enrollment{}, false, err
	}
	l.wait(ctx, res.Position)
	return enrollmentOf(res.State, res.Position), len(res.Events) > 0, nil
}

func enrollmentOf(p domain.Progress, position uint64) Enrollment {
	return Enrollment{EnrollmentID: p.EnrollmentID(), LectureID: p.LectureID(), UserID: p.UserID(), EnrolledAt: p.EnrolledAt().UTC(), Position: position}
}

// CanSeeInactiveLecture reports whether actor may see an inactive lecture of
// instructorID: its owner, an ANALYST or an ADMIN. Everyone else is told it
// does not exist (404).
func CanSeeInactiveLecture(actor domain.Actor, instructorID int64) bool {
	return actor.Role == domain.RoleAnalyst || actor.Manages(instructorID)
}

// Routes mounts the lecture, task, subtask and enrollment command endpoints
// on r. authed authenticates; idem honours Idempotency-Key (after authed).
func (l *Lectures) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/lectures", authed, idem, l.postLecture)
	r.PUT("/api/lectures/:lecture_id", authed, idem, l.putLecture)
	r.DELETE("/api/lectures/:lecture_id", authed, idem, l.deleteLecture)
	r.POST("/api/lectures/:lecture_id/enroll", authed, idem, l.postEnroll)
	r.POST("/api/lectures/:lecture_id/tasks", authed, idem, l.postTask)
	r.PUT("/api/tasks/:task_id", authed, idem, l.putTask)
	r.POST("/api/tasks/:task_id/subtasks", authed, idem, l.postSubtask)
	r.PUT("/api/subtasks/:subtask_id", authed, idem, l.putSubtask)
	r.DELETE("/api/subtasks/:subtask_id", authed, idem, l.deleteSubtask)
}

// lectureDoc is a lecture as the lecture commands answer it.
type lectureDoc struct {
	ID           int64     `json:"id"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	ThumbnailURL *string   `json:"thumbnail_url"`
	InstructorID int64     `json:"instructor_id"`
	IsActive     bool      `json:"is_active"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func lectureDocOf(s domain.Lecture) lectureDoc {
	var thumb *string
	if u := s.ThumbnailURL(); u != "" {
		thumb = &u
	}
	return lectureDoc{
		ID: s.ID(), Title: s.Title(), Description: s.Description(), ThumbnailURL: thumb,
		InstructorID: s.InstructorID(), IsActive: s.IsActive(), CreatedAt: s.CreatedAt().UTC(), UpdatedAt: s.UpdatedAt().UTC(),
	}
}

func (l *Lectures) postLecture(c *gin.Context) {
	var in CreateLectureInput
	if !web.Bind(c, &in) {
		return
	}
	s, err := l.CreateLecture(c.Request.Context(), auth.ActorFrom(c), in, LectureRequestMeta(c, 0))
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusCreated, lectureDocOf(s))
}

type updateLectureRequest struct {
	Title        *string `json:"title"`
	Description  *string `json:"description"`
	ThumbnailURL *string `json:"thumbnail_url"`
	IsActive     *bool   `json:"is_active"`
}

func (l *Lectures) putLecture(c *gin.Context) {
	id, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	var in updateLectureRequest
	if !web.Bind(c, &in) {
		return
	}
	res, err := l.execLecture(c.Request.Context(), id, domain.UpdateLecture{
		Actor: auth.ActorFrom(c), At: l.now(),
		Title: in.Title, Description: in.Description, ThumbnailURL: in.ThumbnailURL, IsActive: in.IsActive,
	}, LectureRequestMeta(c, id))
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, lectureDocOf(res.State))
}

func (l *Lectures) deleteLecture(c *gin.Context) {
	id, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	_, err := l.execLecture(c.Request.Context(), id, domain.DeactivateLecture{Actor: auth.ActorFrom(c), At: l.now()}, LectureRequestMeta(c, id))
	if err != nil {
		web.Error(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type enrollRequest struct {
	UserID int64 `json:"user_id" binding:"omitempty,gt=0"`
}

func (l *Lectures) postEnroll(c *gin.Context) {
	id, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	var in enrollRequest
	if !web.Bind(c, &in) {
		return
	}
	if err := checkUser(c.Request.Context(), l.cfg.Pool, auth.ActorFrom(c), in.UserID); err != nil {
		web.Error(c, err)
		return
	}
	e, created, err := l.Enroll(c.Request.Context(), auth.ActorFrom(c), in.UserID, id, 0, LectureRequestMeta(c, id))
	if err != nil {
		web.Error(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, e)
}

// taskDoc is a task as the task commands answer it (the shape of GET /api/tasks/{id}).
type taskDoc struct {
	ID          int64        `json:"id"`
	LectureID   int64        `json:"lecture_id"`
	Title       string       `json:"title"`
	Description string       `json:"description"`
	OrderIndex  int          `json:"order_index"`
	Subtasks    []subtaskDoc `json:"subtasks"`
}

func taskDocOf(s domain.Lecture, taskID int64) taskDoc {
	t, _ := s.Task(taskID)
	d := taskDoc{ID: t.ID, LectureID: t.LectureID, Title: t.Title, Description: t.Description, OrderIndex: t.OrderIndex, Subtasks: []subtaskDoc{}}
	for _, st := range s.Subtasks(taskID) {
		d.Subtasks = append(d.Subtasks, subtaskDocOf(st))
	}
	return d
}

// subtaskDoc is a subtask as the subtask commands answer it.
type subtaskDoc struct {
	ID                int64  `json:"id"`
	TaskID            int64  `json:"task_id"`
	LectureID         int64  `json:"lecture_id"`
	Title             string `json:"title"`
	Description       string `json:"description"`
	OrderIndex        int    `json:"order_index"`
	TargetAction      string `json:"target_action"`
	TargetElementHint string `json:"target_element_hint"`
	GuideText         string `json:"guide_text"`
	VoiceGuideText    string `json:"voice_guide_text"`
}

func subtaskDocOf(s domain.Subtask) subtaskDoc {
	return subtaskDoc{
		ID: s.ID, TaskID: s.TaskID, LectureID: s.LectureID, Title: s.Title, Description: s.Description,
		OrderIndex: s.OrderIndex, TargetAction: string(s.TargetAction), TargetElementHint: s.TargetElementHint,
		GuideText: s.GuideText, VoiceGuideText: s.VoiceGuideText,
	}
}

type taskRequest struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
	OrderIndex  *int    `json:"order_index"`
}

func (in taskRequest) addTask(actor domain.Actor, at time.Time, taskID int64) domain.AddTask {
	return domain.AddTask{
		Actor: actor, At: at, TaskID: taskID,
		Title: deref(in.Title), Description: deref(in.Description), OrderIndex: orderOrAuto(in.OrderIndex),
	}
}

func (in taskRequest) updateTask(actor domain.Actor, at time.Time, taskID int64) domain.UpdateTask {
	return domain.UpdateTask{
		Actor: actor, At: at, TaskID: taskID,
		Title: in.Title, Description: in.Description, OrderIndex: in.OrderIndex,
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (l *Lectures) postTask(c *gin.Context) {
	lectureID, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	var in taskRequest
	if !web.Bind(c, &in) {
		return
	}
	ctx := c.Request.Context()
	// Refuse before allocating an id for a lecture that does not exist.
	lec, err := l.LoadLecture(ctx, lectureID)
	if err == nil && !lec.Exists() {
		err = domain.NotFound("lecture")
	}
	if err != nil {
		web.Error(c, err)
		return
	}
	taskID, err := l.allocateChild(ctx, "lecture_task_ids", "task_id", "task_ids", lectureID)
	if err != nil {
		web.Error(c, err)
		return
	}
	res, err := l.execLectureWith(ctx, lectureID, orderingDecider, in.addTask(auth.ActorFrom(c), l.now(), taskID), LectureRequestMeta(c, lectureID))
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusCreated, taskDocOf(res.State, taskID))
}

func (l *Lectures) putTask(c *gin.Context) {
	taskID, ok := web.IDParam(c, "task_id")
	if !ok {
		return
	}
	var in taskRequest
	if !web.Bind(c, &in) {
		return
	}
	ctx := c.Request.Context()
	lectureID, err := l.LectureOfTask(ctx, taskID)
	if err != nil {
		web.Error(c, err)
		return
	}
	res, err := l.execLecture(ctx, lectureID, in.updateTask(auth.ActorFrom(c), l.now(), taskID), LectureRequestMeta(c, lectureID))
	if err != nil {
		web.Error(c, notFoundAs(err, "task"))
		return
	}
	c.JSON(http.StatusOK, taskDocOf(res.State, taskID))
}

// notFoundAs renames a NOT_FOUND about the lecture (a lookup row whose
// command was refused) after the resource the client addressed.
func notFoundAs(err error, what string) error {
	if errors.Is(err, domain.ErrNotFound) {
		return domain.NotFound(what)
	}
	return err
}

type subtaskRequest struct {
	Title             *string `json:"title"`
	Description       *string `json:"description"`
	OrderIndex        *int    `json:"order_index"`
	TargetAction      *string `json:"target_action"`
	TargetElementHint *string `json:"target_element_hint"`
	GuideText         *string `json:"guide_text"`
	VoiceGuideText    *string `json:"voice_guide_text"`
}

func (in subtaskRequest) addSubtask(actor domain.Actor, at time.Time, taskID, subtaskID int64) domain.AddSubtask {
	return domain.AddSubtask{
		Actor: actor, At: at, TaskID: taskID, SubtaskID: subtaskID,
		Title: deref(in.Title), Description: deref(in.Description), OrderIndex: orderOrAuto(in.OrderIndex),
		TargetAction: domain.TargetAction(deref(in.TargetAction)), TargetElementHint: deref(in.TargetElementHint),
		GuideText: deref(in.GuideText), VoiceGuideText: deref(in.VoiceGuideText),
	}
}

func (in subtaskRequest) updateSubtask(actor domain.Actor, at time.Time, subtaskID int64) domain.UpdateSubtask {
	var action *domain.TargetAction
	if in.TargetAction != nil {
		a := domain.TargetAction(*in.TargetAction)
		action = &a
	}
	return domain.UpdateSubtask{
		Actor: actor, At: at, SubtaskID: subtaskID,
		Title: in.Title, Description: in.Description, OrderIndex: in.OrderIndex, TargetAction: action,
		TargetElementHint: in.TargetElementHint, GuideText: in.GuideText, VoiceGuideText: in.VoiceGuideText,
	}
}

func (l *Lectures) postSubtask(c *gin.Context) {
	taskID, ok := web.IDParam(c, "task_id")
	if !ok {
		return
	}
	var in subtaskRequest
	if !web.Bind(c, &in) {
		return
	}
	ctx := c.Request.Context()
	lectureID, err := l.LectureOfTask(ctx, taskID)
	if err == nil {
		var lec domain.Lecture
		if lec, err = l.LoadLecture(ctx, lectureID); err == nil {
			if _, ok := lec.Task(taskID); !ok {
				err = domain.NotFound("task")
			}
		}
	}
	if err != nil {
		web.Error(c, err)
		return
	}
	subtaskID, err := l.allocateChild(ctx, "lecture_subtask_ids", "subtask_id", "subtask_ids", lectureID)
	if err != nil {
		web.Error(c, err)
		return
	}
	res, err := l.execLectureWith(ctx, lectureID, orderingDecider, in.addSubtask(auth.ActorFrom(c), l.now(), taskID, subtaskID), LectureRequestMeta(c, lectureID))
	if err != nil {
		web.Error(c, notFoundAs(err, "task"))
		return
	}
	st, _ := res.State.Subtask(subtaskID)
	c.JSON(http.StatusCreated, subtaskDocOf(st))
}

func (l *Lectures) putSubtask(c *gin.Context) {
	subtaskID, ok := web.IDParam(c, "subtask_id")
	if !ok {
		return
	}
	var in subtaskRequest
	if !web.Bind(c, &in) {
		return
	}
	ctx := c.Request.Context()
	lectureID, err := l.LectureOfSubtask(ctx, subtaskID)
	if err != nil {
		web.Error(c, err)
		return
	}
	res, err := l.execLecture(ctx, lectureID, in.updateSubtask(auth.ActorFrom(c), l.now(), subtaskID), LectureRequestMeta(c, lectureID))
	if err != nil {
		web.Error(c, notFoundAs(err, "subtask"))
		return
	}
	st, _ := res.State.Subtask(subtaskID)
	c.JSON(http.StatusOK, subtaskDocOf(st))
}

func (l *Lectures) deleteSubtask(c *gin.Context) {
	subtaskID, ok := web.IDParam(c, "subtask_id")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	lectureID, err := l.LectureOfSubtask(ctx, subtaskID)
	if err != nil {
		web.Error(c, err)
		return
	}
	_, err = l.execLecture(ctx, lectureID, domain.RemoveSubtask{Actor: auth.ActorFrom(c), At: l.now(), SubtaskID: subtaskID}, LectureRequestMeta(c, lectureID))
	if err != nil {
		web.Error(c, notFoundAs(err, "subtask"))
		return
	}
	c.Status(http.StatusNoContent)
}
