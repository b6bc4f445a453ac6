package commands

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/web"
)

// Routes mounts the session command endpoints (absolute paths) behind authed
// and idem: POST /api/lectures/:lecture_id/sessions and POST
// /api/sessions/:session_id/{join,start,next-step,pause,resume,end}.
func (s *Sessions) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/lectures/:lecture_id/sessions", authed, idem, route("lecture_id", createSessionRequest.command, s.Create.Handle, s.answerCreated))
	g := r.Group("/api/sessions/:session_id", authed, idem)
	g.POST("/join", bodyFirstRoute("session_id", joinRequest.command, s.Join.Handle, answerJoined))
	g.POST("/start", bodyFirstRoute("session_id", startRequest.command, s.Start.Handle, answer(http.StatusOK, startedView)))
	g.POST("/next-step", bodyFirstRoute("session_id", nextStepRequest.command, s.NextStep.Handle, answer(http.StatusOK, stepMovedView)))
	g.POST("/pause", bodyFirstRoute("session_id", controlRequest.command, s.Pause.Handle, answer(http.StatusOK, pausedView)))
	g.POST("/resume", bodyFirstRoute("session_id", controlRequest.command, s.Resume.Handle, answer(http.StatusOK, resumedView)))
	g.POST("/end", bodyFirstRoute("session_id", controlRequest.command, s.End.Handle, answer(http.StatusOK, endedView)))
}

type createSessionRequest struct {
	Title       string  `json:"title" binding:"max=200"`
	ScheduledAt *string `json:"scheduled_at"`
}

func (in createSessionRequest) command(lectureID int64, actor domain.Actor, meta eventstore.Metadata) CreateSession {
	return CreateSession{Actor: actor, LectureID: lectureID, Title: in.Title, ScheduledAt: web.Deref(in.ScheduledAt), Meta: meta}
}

func (s *Sessions) answerCreated(c *gin.Context, st domain.Session) {
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

func (in joinRequest) command(sessionID int64, actor domain.Actor, meta eventstore.Metadata) JoinSession {
	return JoinSession{Actor: actor, SessionID: sessionID, UserID: in.UserID, SessionCode: in.SessionCode, Meta: meta}
}

// answerJoined answers 201 for a first join, 200 for the existing participant.
func answerJoined(c *gin.Context, j Joined) {
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

// controlRequest is the body of pause, resume and end.
type controlRequest struct {
	Message string `json:"message"`
}

func (in controlRequest) command(sessionID int64, actor domain.Actor, meta eventstore.Metadata) SessionControl {
	return SessionControl{Actor: actor, SessionID: sessionID, Message: in.Message, Meta: meta}
}

type startRequest struct {
	FirstSubtaskID int64  `json:"first_subtask_id"`
	Message        string `json:"message"`
}

func (in startRequest) command(sessionID int64, actor domain.Actor, meta eventstore.Metadata) StartSession {
	return StartSession{SessionControl: controlRequest{in.Message}.command(sessionID, actor, meta), FirstSubtaskID: in.FirstSubtaskID}
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

func (in nextStepRequest) command(sessionID int64, actor domain.Actor, meta eventstore.Metadata) NextStep {
	return NextStep{SessionControl: controlRequest{in.Message}.command(sessionID, actor, meta), NextSubtaskID: in.NextSubtaskID}
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
