package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/web"
)

// Waiter blocks until the read models reflect a global position
// (*projections.Group): command handlers answer only then, so that a client
// that reads next sees what it wrote.
type Waiter interface {
	WaitFor(ctx context.Context, position uint64) error
}

// SessionsConfig configures the session command handlers.
type SessionsConfig struct {
	Store eventstore.Store
	Pool  *pgxpool.Pool
	// Waiter makes answers read-your-writes (nil: answer at once).
	Waiter Waiter
	// PublicURL is the server's public base URL for qr_code_url ("" = the
	// request's scheme and host).
	PublicURL string
	Logger    *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// WaitTimeout bounds the read-your-writes wait (default 5s).
	WaitTimeout time.Duration
}

// Sessions handles the commands of live sessions and their participants:
// create, join, start, next-step, pause, resume and end.
type Sessions struct {
	cfg SessionsConfig
	log *slog.Logger
}

// NewSessions returns the handlers; it panics without a store or a pool (a wiring bug).
func NewSessions(cfg SessionsConfig) *Sessions {
	if cfg.Store == nil || cfg.Pool == nil {
		panic("commands: NewSessions needs a Store and a Pool")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 5 * time.Second
	}
	return &Sessions{cfg: cfg, log: cfg.Logger}
}

// Routes mounts the session command endpoints (absolute paths) behind authed
// and idem: POST /api/lectures/:lecture_id/sessions and POST
// /api/sessions/:session_id/{join,start,next-step,pause,resume,end}.
func (s *Sessions) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/lectures/:lecture_id/sessions", authed, idem, s.create)
	g := r.Group("/api/sessions/:session_id", authed, idem)
	g.POST("/join", s.join)
	g.POST("/start", s.start)
	g.POST("/next-step", s.nextStep)
	g.POST("/pause", s.pause)
	g.POST("/resume", s.resume)
	g.POST("/end", s.end)
}

// now is the clock at the database's precision (microseconds), so that what
// events carry and what read models return compare equal.
func (s *Sessions) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

func (s *Sessions) wait(ctx context.Context, position uint64) {
	if s.cfg.Waiter == nil || position == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WaitTimeout)
	defer cancel()
	if err := s.cfg.Waiter.WaitFor(wctx, position); err != nil && ctx.Err() == nil {
		readModelsBehind(ctx)
		s.log.Warn("read models did not catch up before answering", "position", position, "error", err)
	}
}

func metadata(c *gin.Context, actor domain.Actor, sessionID, lectureID int64) eventstore.Metadata {
	return eventstore.Metadata{CorrelationID: web.RequestID(c), UserID: actor.UserID, SessionID: sessionID, LectureID: lectureID}
}

// BaseURL is the public base of links the server hands out: publicURL when
// set, else the request's scheme and host.
func BaseURL(publicURL string, r *http.Request) string {
	if b, ok := web.LinkBase(r); ok { // PUBLIC_URL, or the loopback rule (web.LinkBaseMiddleware)
		return b
	}
	if publicURL != "" {
		return strings.TrimRight(publicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// NewSessionCode returns a random 6-character code of domain.SessionCodeAlphabet.
func NewSessionCode() string {
	var b [domain.SessionCodeLen]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(b))
	for i, v := range b {
		// 256 is a multiple of the alphabet's 32 letters: no bias.
		out[i] = domain.SessionCodeAlphabet[int(v)%len(domain.SessionCodeAlphabet)]
	}
	return string(out)
}

// reserveCode reserves a code unique among open sessions.
func (s *Sessions) reserveCode(ctx context.Context, sessionID int64) (string, error) {
	for range 50 {
		code := NewSessionCode()
		tag, err := s.cfg.Pool.Exec(ctx, `INSERT INTO session_codes (code, session_id) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING`, code, sessionID)
		if err != nil {
			return "", fmt.Errorf("reserve session code: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return code, nil
		}
	}
	return "", errors.New("no free session code after 50 attempts")
}

func (s *Sessions) releaseCode(ctx context.Context, sessionID int64) {
	if _, err := s.cfg.Pool.Exec(ctx, `DELETE FROM session_codes WHERE session_id = $1`, sessionID); err != nil {
		s.log.Error("release session code", "session_id", sessionID, "error", err)
	}
}

type lectureRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

type subtaskRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

// maxScheduleYears bounds scheduled_at around now: a class of year 1 or 9999
// is a client's bug, not a plan.
const maxScheduleYears = 10

type createSessionRequest struct {
	Title       string  `json:"title" binding:"max=200"`
	ScheduledAt *string `json:"scheduled_at"`
}

func (s *Sessions) create(c *gin.Context) {
	lectureID, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	var req createSessionRequest
	if !web.Bind(c, &req) {
		return
	}
	var scheduled time.Time
	if req.ScheduledAt != nil && *req.ScheduledAt != "" {
		t, err := time.Parse(time.RFC3339, *req.ScheduledAt)
		if err != nil {
			web.Error(c, domain.Invalid("invalid fields", map[string]string{"scheduled_at": "must be an RFC 3339 time"}))
			return
		}
		if now := s.now(); t.Before(now.AddDate(-maxScheduleYears, 0, 0)) || t.After(now.AddDate(maxScheduleYears, 0, 0)) {
			web.Error(c, domain.Invalid("invalid fields", map[string]string{"scheduled_at": fmt.Sprintf("must be within %d years of now", maxScheduleYears)}))
			return
		}
		scheduled = t.UTC()
	}
	ctx := c.Request.Context()
	actor := auth.ActorFrom(c)
	lecture, _, err := Load(ctx, s.cfg.Store, domain.LectureStream(lectureID), domain.LectureDecider)
	if err != nil {
		web.Error(c, err)
		return
	}
	var sessionID int64
	if err := s.cfg.Pool.QueryRow(ctx, `SELECT nextval('session_ids')`).Scan(&sessionID); err != nil {
		web.Error(c, fmt.Errorf("allocate session id: %w", err))
		return
	}
	code, err := s.reserveCode(ctx, sessionID)
	if err != nil {
		web.Error(c, err)
		return
	}
	res, err := Execute(ctx, s.cfg.Store, domain.SessionStream(sessionID), domain.SessionDecider, domain.SessionCommand(domain.OpenSession{
		Actor: actor, At: s.now(), SessionID: sessionID, Code: code, Lecture: lecture, Title: req.Title, ScheduledAt: scheduled,
	}), metadata(c, actor, sessionID, lectureID))
	if err != nil {
		s.releaseCode(context.WithoutCancel(ctx), sessionID)
		web.Error(c, err)
		return
	}
	s.wait(ctx, res.Position)
	st := res.State
	var sched *time.Time
	if !st.ScheduledAt().IsZero() {
		t := st.ScheduledAt().UTC()
		sched = &t
	}
	c.JSON(http.StatusCreated, gin.H{
		"session_id":   st.ID(),
		"session_code": st.Code(),
		"qr_code_url":  BaseURL(s.cfg.PublicURL, c.Request) + "/qr/" + st.Code() + ".png",
		"status":       st.Status(),
		"title":        st.Title(),
		"scheduled_at": sched,
		"created_at":   st.OpenedAt().UTC(),
		"lecture":      lectureRef{ID: st.LectureID(), Title: st.LectureTitle()},
	})
}

type controlRequest struct {
	Message string `json:"message"`
}

// control loads the session for a control command and returns it (or
// answers 404 and returns ok == false).
func (s *Sessions) loadSession(c *gin.Context) (domain.Session, bool) {
	id, ok := web.IDParam(c, "session_id")
	if !ok {
		return domain.Session{}, false
	}
	sess, _, err := Load(c.Request.Context(), s.cfg.Store, domain.SessionStream(id), domain.SessionDecider)
	if err != nil {
		web.Error(c, err)
		return domain.Session{}, false
	}
	if !sess.Exists() {
		web.Error(c, domain.NotFound("session"))
		return domain.Session{}, false
	}
	return sess, true
}

func (s *Sessions) execute(c *gin.Context, sess domain.Session, cmd domain.SessionCommand) (Result[domain.Session], bool) {
	ctx := c.Request.Context()
	actor := auth.ActorFrom(c)
	res, err := Execute(ctx, s.cfg.Store, domain.SessionStream(sess.ID()), domain.SessionDecider, cmd, metadata(c, actor, sess.ID(), sess.LectureID()))
	if err != nil {
		web.Error(c, err)
		return res, false
	}
	s.wait(ctx, res.Position)
	return res, true
}

func (s *Sessions) plan(c *gin.Context, sess domain.Session) (domain.Lecture, bool) {
	l, _, err := Load(c.Request.Context(), s.cfg.Store, domain.LectureStream(sess.LectureID()), domain.LectureDecider)
	if err != nil {
		web.Error(c, err)
		return l, false
	}
	return l, true
}

func (s *Sessions) activeParticipants(ctx context.Context, sessionID int64) int {
	var n int
	if err := s.cfg.Pool.QueryRow(ctx, `SELECT count(*) FROM session_participants WHERE session_id = $1 AND status = 'ACTIVE'`, sessionID).Scan(&n); err != nil {
		s.log.Error("count active participants", "session_id", sessionID, "error", err)
	}
	return n
}

// begin binds a control request's body and loads the session the path
// names; on failure it has answered.
func (s *Sessions) begin(c *gin.Context, req any) (domain.Session, bool) {
	if !web.Bind(c, req) {
		return domain.Session{}, false
	}
	return s.loadSession(c)
}

// beginWithPlan is begin for the commands that move the room to a subtask:
// only the session's controller may, and the lecture's plan is folded for
// the decider.
func (s *Sessions) beginWithPlan(c *gin.Context, req any) (domain.Session, domain.Lecture, bool) {
	sess, ok := s.begin(c, req)
	if !ok {
		return sess, domain.Lecture{}, false
	}
	if !sess.CanControl(auth.ActorFrom(c)) {
		web.Error(c, domain.Forbidden("only the session's instructor may control it"))
		return sess, domain.Lecture{}, false
	}
	plan, ok := s.plan(c, sess)
	return sess, plan, ok
}

type startRequest struct {
	FirstSubtaskID int64  `json:"first_subtask_id"`
	Message        string `json:"message"`
}

func (s *Sessions) start(c *gin.Context) {
	var req startRequest
	sess, plan, ok := s.beginWithPlan(c, &req)
	if !ok {
		return
	}
	res, ok := s.execute(c, sess, domain.StartSession{
		Actor: auth.ActorFrom(c), At: s.now(), Plan: plan, FirstSubtaskID: req.FirstSubtaskID, Message: req.Message,
	})
	if !ok {
		return
	}
	cur, _ := res.State.CurrentSubtask()
	c.JSON(http.StatusOK, gin.H{
		"session_id":          res.State.ID(),
		"status":              res.State.Status(),
		"started_at":          res.State.StartedAt().UTC(),
		"current_subtask":     subtaskRef{ID: cur.ID, Title: cur.Title},
		"active_participants": s.activeParticipants(c.Request.Context(), res.State.ID()),
		"message":             "수업이 시작되었습니다",
	})
}

type nextStepRequest struct {
	NextSubtaskID int64  `json:"next_subtask_id"`
	Message       string `json:"message"`
}

func (s *Sessions) nextStep(c *gin.Context) {
	var req nextStepRequest
	sess, plan, ok := s.beginWithPlan(c, &req)
	if !ok {
		return
	}
	res, ok := s.execute(c, sess, domain.ChangeStep{
		Actor: auth.ActorFrom(c), At: s.now(), Plan: plan, NextSubtaskID: req.NextSubtaskID, Message: req.Message,
	})
	if !ok {
		return
	}
	var ev domain.StepChanged
	for _, e := range res.Events {
		if sc, ok := e.(domain.StepChanged); ok {
			ev = sc
		}
	}
	prev := subtaskRef{ID: ev.PreviousSubtaskID}
	if cur, ok := sess.CurrentSubtask(); ok && cur.ID == prev.ID {
		prev.Title = cur.Title
	} else if st, ok := plan.Subtask(prev.ID); ok {
		prev.Title = st.Title
	} else if st, ok := plan.RemovedSubtask(prev.ID); ok {
		prev.Title = st.Title
	}
	c.JSON(http.StatusOK, gin.H{
		"session_id":       res.State.ID(),
		"previous_subtask": prev,
		"current_subtask":  subtaskRef{ID: ev.CurrentSubtask.ID, Title: ev.CurrentSubtask.Title},
		"timestamp":        ev.ChangedAt.UTC(),
	})
}

func (s *Sessions) pause(c *gin.Context) {
	var req controlRequest
	sess, ok := s.begin(c, &req)
	if !ok {
		return
	}
	at := s.now()
	res, ok := s.execute(c, sess, domain.PauseSession{Actor: auth.ActorFrom(c), At: at, Message: req.Message})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"session_id": res.State.ID(),
		"action":     "PAUSE",
		"message":    "수업이 일시 정지되었습니다",
		"timestamp":  at,
	})
}

func (s *Sessions) resume(c *gin.Context) {
	var req controlRequest
	sess, ok := s.begin(c, &req)
	if !ok {
		return
	}
	at := s.now()
	res, ok := s.execute(c, sess, domain.ResumeSession{Actor: auth.ActorFrom(c), At: at, Message: req.Message})
	if !ok {
		return
	}
	cur, _ := res.State.CurrentSubtask()
	c.JSON(http.StatusOK, gin.H{
		"session_id":      res.State.ID(),
		"action":          "RESUME",
		"current_subtask": subtaskRef{ID: cur.ID, Title: cur.Title},
		"message":         "수업이 재개되었습니다",
		"timestamp":       at,
	})
}

func (s *Sessions) end(c *gin.Context) {
	var req controlRequest
	sess, ok := s.begin(c, &req)
	if !ok {
		return
	}
	res, ok := s.execute(c, sess, domain.EndSession{Actor: auth.ActorFrom(c), At: s.now(), Message: req.Message})
	if !ok {
		return
	}
	ctx := c.Request.Context()
	st := res.State
	s.releaseCode(context.WithoutCancel(ctx), st.ID())
	completed, total, err := s.completion(ctx, st)
	if err != nil {
		web.Error(c, err)
		return
	}
	minutes := 0
	if !st.StartedAt().IsZero() {
		minutes = int(st.EndedAt().Sub(st.StartedAt()) / time.Minute)
	}
	c.JSON(http.StatusOK, gin.H{
		"session_id":             st.ID(),
		"status":                 st.Status(),
		"ended_at":               st.EndedAt().UTC(),
		"duration_minutes":       minutes,
		"completed_participants": completed,
		"total_participants":     total,
		"message":                "수업이 종료되었습니다",
	})
}

// completion counts the session's participants, and those who completed (at
// any time) every subtask the session made current. A session that never
// started made no subtask current: nobody completed it.
func (s *Sessions) completion(ctx context.Context, st domain.Session) (completed, total int, err error) {
	err = s.cfg.Pool.QueryRow(ctx, `
		SELECT count(*),
		       count(*) FILTER (WHERE cardinality($2::bigint[]) > 0 AND NOT EXISTS (
		           SELECT 1 FROM unnest($2::bigint[]) AS step(id)
		           WHERE NOT EXISTS (SELECT 1 FROM session_completions c
		                             WHERE c.lecture_id = p.lecture_id AND c.user_id = p.user_id AND c.subtask_id = step.id)))
		FROM session_participants p WHERE p.session_id = $1`, st.ID(), st.Steps()).Scan(&total, &completed)
	if err != nil {
		return 0, 0, fmt.Errorf("count completions of session %d: %w", st.ID(), err)
	}
	return completed, total, nil
}
