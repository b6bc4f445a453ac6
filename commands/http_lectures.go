package commands

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/web"
)

// Routes mounts the lecture, task, subtask and enrollment command endpoints
// on r. authed authenticates; idem honours Idempotency-Key (after authed).
func (l *Lectures) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/lectures", authed, idem, route("", createLectureRequest.command, l.Create.Handle, answer(http.StatusCreated, lectureDocOf)))
	r.PUT("/api/lectures/:lecture_id", authed, idem, route("lecture_id", updateLectureRequest.command, l.Update.Handle, answer(http.StatusOK, lectureDocOf)))
	r.DELETE("/api/lectures/:lecture_id", authed, idem, route("lecture_id", deactivateLecture, l.Deactivate.Handle, noContent))
	r.POST("/api/lectures/:lecture_id/enroll", authed, idem, route("lecture_id", enrollRequest.command, l.Enroll.Handle, answerEnrolled))
	r.POST("/api/lectures/:lecture_id/tasks", authed, idem, route("lecture_id", taskRequest.addTask, l.AddTask.Handle, answer(http.StatusCreated, taskDocOf)))
	r.PUT("/api/tasks/:task_id", authed, idem, route("task_id", taskRequest.updateTask, l.UpdateTask.Handle, answer(http.StatusOK, taskDocOf)))
	r.POST("/api/tasks/:task_id/subtasks", authed, idem, route("task_id", subtaskRequest.addSubtask, l.AddSubtask.Handle, answer(http.StatusCreated, subtaskDocIn)))
	r.PUT("/api/subtasks/:subtask_id", authed, idem, route("subtask_id", subtaskRequest.updateSubtask, l.UpdateSubtask.Handle, answer(http.StatusOK, subtaskDocIn)))
	r.DELETE("/api/subtasks/:subtask_id", authed, idem, route("subtask_id", removeSubtask, l.RemoveSubtask.Handle, noContent))
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

type createLectureRequest struct {
	Title        string `json:"title"`
	Description  string `json:"description"`
	ThumbnailURL string `json:"thumbnail_url"`
}

func (in createLectureRequest) command(_ int64, actor domain.Actor, meta eventstore.Metadata) CreateLecture {
	return CreateLecture{Actor: actor, Title: in.Title, Description: in.Description, ThumbnailURL: in.ThumbnailURL, Meta: meta}
}

type updateLectureRequest struct {
	Title        *string `json:"title"`
	Description  *string `json:"description"`
	ThumbnailURL *string `json:"thumbnail_url"`
	IsActive     *bool   `json:"is_active"`
}

func (in updateLectureRequest) command(id int64, actor domain.Actor, meta eventstore.Metadata) UpdateLecture {
	return UpdateLecture{
		Actor: actor, LectureID: id, Meta: meta,
		Title: in.Title, Description: in.Description, ThumbnailURL: in.ThumbnailURL, IsActive: in.IsActive,
	}
}

func deactivateLecture(_ noBody, id int64, actor domain.Actor, meta eventstore.Metadata) DeactivateLecture {
	return DeactivateLecture{Actor: actor, LectureID: id, Meta: meta}
}

type enrollRequest struct {
	UserID int64 `json:"user_id" binding:"omitempty,gt=0"`
}

func (in enrollRequest) command(lectureID int64, actor domain.Actor, meta eventstore.Metadata) Enroll {
	return Enroll{Actor: actor, LectureID: lectureID, UserID: in.UserID, Meta: meta}
}

// answerEnrolled answers 201 with a new enrollment, 200 with an existing one.
func answerEnrolled(c *gin.Context, e Enrolled) {
	status := http.StatusOK
	if e.Created {
		status = http.StatusCreated
	}
	c.JSON(status, e.Enrollment)
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

// taskDocOf is the task a command addressed.
func taskDocOf(ch LectureChange) taskDoc {
	t, _ := ch.Lecture.Task(ch.ID)
	d := taskDoc{ID: t.ID, LectureID: t.LectureID, Title: t.Title, Description: t.Description, OrderIndex: t.OrderIndex, Subtasks: []subtaskDoc{}}
	for _, st := range ch.Lecture.Subtasks(ch.ID) {
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

// subtaskDocIn is the subtask a command addressed.
func subtaskDocIn(ch LectureChange) subtaskDoc {
	st, _ := ch.Lecture.Subtask(ch.ID)
	return subtaskDocOf(st)
}

type taskRequest struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
	OrderIndex  *int    `json:"order_index"`
}

func (in taskRequest) addTask(lectureID int64, actor domain.Actor, meta eventstore.Metadata) AddTask {
	return AddTask{
		Actor: actor, LectureID: lectureID, Meta: meta,
		Title: web.Deref(in.Title), Description: web.Deref(in.Description), OrderIndex: in.OrderIndex,
	}
}

func (in taskRequest) updateTask(taskID int64, actor domain.Actor, meta eventstore.Metadata) UpdateTask {
	return UpdateTask{
		Actor: actor, TaskID: taskID, Meta: meta,
		Title: in.Title, Description: in.Description, OrderIndex: in.OrderIndex,
	}
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

func (in subtaskRequest) addSubtask(taskID int64, actor domain.Actor, meta eventstore.Metadata) AddSubtask {
	return AddSubtask{
		Actor: actor, TaskID: taskID, Meta: meta,
		Title: web.Deref(in.Title), Description: web.Deref(in.Description), OrderIndex: in.OrderIndex,
		TargetAction: domain.TargetAction(web.Deref(in.TargetAction)), TargetElementHint: web.Deref(in.TargetElementHint),
		GuideText: web.Deref(in.GuideText), VoiceGuideText: web.Deref(in.VoiceGuideText),
	}
}

func (in subtaskRequest) updateSubtask(subtaskID int64, actor domain.Actor, meta eventstore.Metadata) UpdateSubtask {
	var action *domain.TargetAction
	if in.TargetAction != nil {
		a := domain.TargetAction(*in.TargetAction)
		action = &a
	}
	return UpdateSubtask{
		Actor: actor, SubtaskID: subtaskID, Meta: meta,
		Title: in.Title, Description: in.Description, OrderIndex: in.OrderIndex, TargetAction: action,
		TargetElementHint: in.TargetElementHint, GuideText: in.GuideText, VoiceGuideText: in.VoiceGuideText,
	}
}

func removeSubtask(_ noBody, subtaskID int64, actor domain.Actor, meta eventstore.Metadata) RemoveSubtask {
	return RemoveSubtask{Actor: actor, SubtaskID: subtaskID, Meta: meta}
}
