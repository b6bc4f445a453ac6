package commands

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/web"
)

// Routes mounts the session command endpoints (absolute paths) behind authed
// and idem: POST /api/lectures/:lecture_id/sessions and POST
// /api/sessions/:session_id/{join,start,next-step,pause,resume,end}.
func (s *Sessions) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/lectures/:lecture_id/sessions", authed, idem, s.httpCreate)
	g := r.Group("/api/sessions/:session_id", authed, idem)
	g.POST("/join", s.httpJoin)
	g.POST("/start", controlRoute(startRequest.command, s.Start.Handle, startedView))
	g.POST("/next-step", controlRoute(nextStepRequest.command, s.NextStep.Handle, stepMovedView))
	g.POST("/pause", controlRoute(controlRequest.command, s.Pause.Handle, pausedView))
	g.POST("/resume", controlRoute(controlRequest.command, s.Resume.Handle, resumedView))
	g.POST("/end", controlRoute(controlRequest.command, s.End.Handle, endedView))
}

type createSessionRequest struct {
	Title       string  `json:"title" binding:"max=200"`
	ScheduledAt *string `json:"scheduled_at"`
}

func (s *Sessions) httpCreate(c *gin.Context) {
	lectureID, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	var req createSessionRequest
	if !web.Bind(c, &req) {
		return
	}
	actor, meta := request(c, lectureID)
	st, ok := call(c, s.Create.Handle, CreateSession{
		Actor: actor, LectureID: lectureID, Title: req.Title, ScheduledAt: web.Deref(req.ScheduledAt), Meta: meta,
	})
	if !ok {
		return
	}
	var sched *time.Time
	if !st.ScheduledAt().IsZero() {
		t := st.ScheduledAt().UTC()
		sched = &t
	}
	c.JSON(http.StatusCreated, gin.H{
		"session_id":   st.ID(),
		"session_code": st.Code(),
		"qr_code_url":  web.BaseURL(s.cfg.PublicURL, c.Request) + "/qr/" + st.Code() + ".png",
		"status":       st.Status(),
		"title":        st.Title(),
		"scheduled_at": sched,
		"created_at":   st.OpenedAt().UTC(),
		"lecture":      LectureRef{ID: st.LectureID(), Title: st.LectureTitle()},
	})
}

type joinRequest struct {
	UserID      int64  `json:"user_id" binding:"gte=0"`
	SessionCode string `json:"session_code" binding:"max=64"`
}

func (s *Sessions) httpJoin(c *gin.Context) {
	var req joinRequest
	if !web.Bind(c, &req) {
		return
	}
	id, ok := web.IDParam(c, "session_id")
	if !ok {
		return
	}
	actor, meta := request(c, 0)
	j, ok := call(c, s.Join.Handle, JoinSession{Actor: actor, SessionID: id, UserID: req.UserID, SessionCode: req.SessionCode, Meta: meta})
	if !ok {
		return
	}
	status := http.StatusOK
	if j.Created {
		status = http.StatusCreated
	}
	p := j.Participant
	c.JSON(status, gin.H{
		"participant_id": p.ID(),
		"session_id":     p.SessionID(),
		"user_id":        p.UserID(),
		"status":         p.Status(j.SessionStatus),
		"joined_at":      p.JoinedAt().UTC(),
		"message":        joinMessages[j.SessionStatus],
	})
}

// controlRoute is the adapter of the session control commands: it binds
// the body (B), takes the session id from the path, builds the command from
// the common part and the body, calls handle and answers 200 with view.
func controlRoute[B, C, R any](command func(B, SessionControl) C, handle func(context.Context, C) (R, error), view func(R) gin.H) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req B
		if !web.Bind(c, &req) {
			return
		}
		id, ok := web.IDParam(c, "session_id")
		if !ok {
			return
		}
		actor, meta := request(c, 0)
		if res, ok := call(c, handle, command(req, SessionControl{Actor: actor, SessionID: id, Meta: meta})); ok {
			c.JSON(http.StatusOK, view(res))
		}
	}
}

// controlRequest is the body of pause, resume and end.
type controlRequest struct {
	Message string `json:"message"`
}

func (in controlRequest) command(ctl SessionControl) SessionControl {
	ctl.Message = in.Message
	return ctl
}

type startRequest struct {
	FirstSubtaskID int64  `json:"first_subtask_id"`
	Message        string `json:"message"`
}

func (in startRequest) command(ctl SessionControl) StartSession {
	ctl.Message = in.Message
	return StartSession{SessionControl: ctl, FirstSubtaskID: in.FirstSubtaskID}
}

func startedView(res Started) gin.H {
	st := res.Session
	cur, _ := st.CurrentSubtask()
	return gin.H{
		"session_id":          st.ID(),
		"status":              st.Status(),
		"started_at":          st.StartedAt().UTC(),
		"current_subtask":     SubtaskRef{ID: cur.ID, Title: cur.Title},
		"active_participants": res.ActiveParticipants,
		"message":             "수업이 시작되었습니다",
	}
}

type nextStepRequest struct {
	NextSubtaskID int64  `json:"next_subtask_id"`
	Message       string `json:"message"`
}

func (in nextStepRequest) command(ctl SessionControl) NextStep {
	ctl.Message = in.Message
	return NextStep{SessionControl: ctl, NextSubtaskID: in.NextSubtaskID}
}

func stepMovedView(res StepMoved) gin.H {
	return gin.H{
		"session_id":       res.SessionID,
		"previous_subtask": res.Previous,
		"current_subtask":  res.Current,
		"timestamp":        res.At,
	}
}

func pausedView(res Controlled) gin.H {
	return gin.H{
		"session_id": res.Session.ID(),
		"action":     "PAUSE",
		"message":    "수업이 일시 정지되었습니다",
		"timestamp":  res.At,
	}
}

func resumedView(res Controlled) gin.H {
	cur, _ := res.Session.CurrentSubtask()
	return gin.H{
		"session_id":      res.Session.ID(),
		"action":          "RESUME",
		"current_subtask": SubtaskRef{ID: cur.ID, Title: cur.Title},
		"message":         "수업이 재개되었습니다",
		"timestamp":       res.At,
	}
}

func endedView(res Ended) gin.H {
	st := res.Session
	minutes := 0
	if !st.StartedAt().IsZero() {
		minutes = int(st.EndedAt().Sub(st.StartedAt()) / time.Minute)
	}
	return gin.H{
		"session_id":             st.ID(),
		"status":                 st.Status(),
		"ended_at":               st.EndedAt().UTC(),
		"duration_minutes":       minutes,
		"completed_participants": res.Completed,
		"total_participants":     res.Total,
		"message":                "수업이 종료되었습니다",
	}
}
