package commands

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

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
