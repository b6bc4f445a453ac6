package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/pgdb"
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

// Sessions holds the handlers of the commands of live sessions and their
// participants: create, join, start, next-step, pause, resume and end
// (http_sessions.go mounts them).
type Sessions struct {
	cfg SessionsConfig
	log *slog.Logger
	// snaps keeps each session's folded stream between commands and plans
	// the lectures' plans (a class of thirty rooms steps at once).
	snaps *Snapshots[domain.Session]
	plans lectureCache

	Create   CreateSessionHandler
	Join     JoinSessionHandler
	Start    StartSessionHandler
	NextStep NextStepHandler
	Pause    PauseSessionHandler
	Resume   ResumeSessionHandler
	End      EndSessionHandler
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
	s := &Sessions{cfg: cfg, log: cfg.Logger, snaps: NewSnapshots[domain.Session](maxSessionSnapshots)}
	s.Create, s.Join, s.Start, s.NextStep = CreateSessionHandler{s}, JoinSessionHandler{s}, StartSessionHandler{s}, NextStepHandler{s}
	s.Pause, s.Resume, s.End = PauseSessionHandler{s}, ResumeSessionHandler{s}, EndSessionHandler{s}
	return s
}

// maxSessionSnapshots bounds the kept session streams.
const maxSessionSnapshots = 10_000

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

// LectureRef is a lecture as the session answers name it.
type LectureRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

// SubtaskRef is a subtask as the session answers name it.
type SubtaskRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

// maxScheduleYears bounds scheduled_at around now: a class of year 1 or 9999
// is a client's bug, not a plan.
const maxScheduleYears = 10

// CreateSession opens a session of a lecture (POST /api/lectures/{id}/sessions).
type CreateSession struct {
	Actor     domain.Actor
	LectureID int64
	Title     string
	// ScheduledAt is an RFC 3339 time, or "" for none.
	ScheduledAt string
	Meta        eventstore.Metadata
}

// CreateSessionHandler handles CreateSession.
type CreateSessionHandler struct{ s *Sessions }

// Handle allocates the session's id and code and opens it. Refusals:
// INVALID_REQUEST (scheduled_at), NOT_FOUND (lecture), FORBIDDEN.
func (h CreateSessionHandler) Handle(ctx context.Context, cmd CreateSession) (domain.Session, error) {
	s := h.s
	var scheduled time.Time
	if cmd.ScheduledAt != "" {
		t, err := time.Parse(time.RFC3339, cmd.ScheduledAt)
		if err != nil {
			return domain.Session{}, domain.Invalid("invalid fields", map[string]string{"scheduled_at": "must be an RFC 3339 time"})
		}
		if now := s.now(); t.Before(now.AddDate(-maxScheduleYears, 0, 0)) || t.After(now.AddDate(maxScheduleYears, 0, 0)) {
			return domain.Session{}, domain.Invalid("invalid fields", map[string]string{"scheduled_at": fmt.Sprintf("must be within %d years of now", maxScheduleYears)})
		}
		scheduled = t.UTC()
	}
	lecture, _, err := Load(ctx, s.cfg.Store, domain.LectureStream(cmd.LectureID), domain.LectureDecider)
	if err != nil {
		return domain.Session{}, err
	}
	sessionID, err := pgdb.NextID(ctx, s.cfg.Pool, "session_ids", eventstore.CommandScope(ctx, "id:session_ids"))
	if err != nil {
		return domain.Session{}, err
	}
	code, err := s.reserveCode(ctx, sessionID)
	if err != nil {
		return domain.Session{}, err
	}
	meta := cmd.Meta
	meta.SessionID, meta.LectureID = sessionID, cmd.LectureID
	res, err := Execute(ctx, s.cfg.Store, domain.SessionStream(sessionID), domain.SessionDecider, domain.SessionCommand(domain.OpenSession{
		Actor: cmd.Actor, At: s.now(), SessionID: sessionID, Code: code, Lecture: lecture, Title: cmd.Title, ScheduledAt: scheduled,
	}), meta)
	if err != nil {
		s.releaseCode(context.WithoutCancel(ctx), sessionID)
		return domain.Session{}, err
	}
	s.wait(ctx, res.Position)
	return res.State, nil
}

// SessionControl is what every control command carries: who, which session,
// the message shown to the room.
type SessionControl struct {
	Actor     domain.Actor
	SessionID int64
	Message   string
	Meta      eventstore.Metadata
}

// loadSession loads the session a command names (NOT_FOUND when there is none).
func (s *Sessions) loadSession(ctx context.Context, id int64) (domain.Session, error) {
	sess, _, err := Load(ctx, s.cfg.Store, domain.SessionStream(id), domain.SessionDecider)
	if err != nil {
		return domain.Session{}, err
	}
	if !sess.Exists() {
		return domain.Session{}, domain.NotFound("session")
	}
	return sess, nil
}

// controlSession is loadSession for the commands on the session's own
// stream (start, next-step, pause, resume, end): the session's kept
// snapshot serves, as what they check on it before deciding (that it
// exists, who controls it) never changes once true, and the command itself
// is decided and appended at the snapshot's version (execute), which a
// stale snapshot fails. A command on another stream (a join) loads.
func (s *Sessions) controlSession(ctx context.Context, id int64) (domain.Session, error) {
	if snap, ok := s.snaps.get(domain.SessionStream(id)); ok {
		return snap.state, nil
	}
	return s.loadSession(ctx, id)
}

// execute runs cmd on sess's stream and waits for the read models.
func (s *Sessions) execute(ctx context.Context, c SessionControl, sess domain.Session, cmd domain.SessionCommand) (Result[domain.Session], error) {
	meta := c.Meta
	meta.UserID, meta.SessionID, meta.LectureID = c.Actor.UserID, sess.ID(), sess.LectureID()
	res, err := ExecuteCached(ctx, s.cfg.Store, s.snaps, domain.SessionStream(sess.ID()), domain.SessionDecider, cmd, meta)
	if err != nil {
		return res, err
	}
	s.wait(ctx, res.Position)
	return res, nil
}

func (s *Sessions) activeParticipants(ctx context.Context, sessionID int64) int {
	var n int
	if err := s.cfg.Pool.QueryRow(ctx, `SELECT count(*) FROM session_participants WHERE session_id = $1 AND status = 'ACTIVE'`, sessionID).Scan(&n); err != nil {
		s.log.Error("count active participants", "session_id", sessionID, "error", err)
	}
	return n
}

// withPlan loads the session and, for the commands that move the room to a
// subtask, checks that the actor controls it and folds the lecture's plan
// for the decider.
func (s *Sessions) withPlan(ctx context.Context, c SessionControl) (domain.Session, domain.Lecture, error) {
	sess, err := s.controlSession(ctx, c.SessionID)
	if err != nil {
		return sess, domain.Lecture{}, err
	}
	if !sess.CanControl(c.Actor) {
		return sess, domain.Lecture{}, domain.Forbidden("only the session's instructor may control it")
	}
	plan, err := s.plans.load(ctx, s.cfg.Store, sess.LectureID())
	return sess, plan, err
}

// StartSession starts a WAITING session at FirstSubtaskID (0: the lecture's first).
type StartSession struct {
	SessionControl
	FirstSubtaskID int64
}

// Started is what StartSession did.
type Started struct {
	Session            domain.Session
	ActiveParticipants int
}

// StartSessionHandler handles StartSession.
type StartSessionHandler struct{ s *Sessions }

// Handle starts the session. Refusals: NOT_FOUND, FORBIDDEN, INVALID_REQUEST
// (a subtask not of the lecture), INVALID_STATE.
func (h StartSessionHandler) Handle(ctx context.Context, cmd StartSession) (Started, error) {
	sess, plan, err := h.s.withPlan(ctx, cmd.SessionControl)
	if err != nil {
		return Started{}, err
	}
	res, err := h.s.execute(ctx, cmd.SessionControl, sess, domain.StartSession{
		Actor: cmd.Actor, At: h.s.now(), Plan: plan, FirstSubtaskID: cmd.FirstSubtaskID, Message: cmd.Message,
	})
	if err != nil {
		return Started{}, err
	}
	return Started{Session: res.State, ActiveParticipants: h.s.activeParticipants(ctx, res.State.ID())}, nil
}

// NextStep moves an IN_PROGRESS session to NextSubtaskID (0: the next in order).
type NextStep struct {
	SessionControl
	NextSubtaskID int64
}

// StepMoved is what NextStep did.
type StepMoved struct {
	SessionID int64
	// Previous and Current are the subtasks' ids and titles.
	Previous, Current SubtaskRef
	At                time.Time
}

// NextStepHandler handles NextStep.
type NextStepHandler struct{ s *Sessions }

// Handle moves the room on. Refusals: NOT_FOUND, FORBIDDEN, INVALID_REQUEST,
// INVALID_STATE (not IN_PROGRESS, or no step left).
func (h NextStepHandler) Handle(ctx context.Context, cmd NextStep) (StepMoved, error) {
	sess, plan, err := h.s.withPlan(ctx, cmd.SessionControl)
	if err != nil {
		return StepMoved{}, err
	}
	res, err := h.s.execute(ctx, cmd.SessionControl, sess, domain.ChangeStep{
		Actor: cmd.Actor, At: h.s.now(), Plan: plan, NextSubtaskID: cmd.NextSubtaskID, Message: cmd.Message,
	})
	if err != nil {
		return StepMoved{}, err
	}
	var ev domain.StepChanged
	for _, e := range res.Events {
		if sc, ok := e.(domain.StepChanged); ok {
			ev = sc
		}
	}
	prev := SubtaskRef{ID: ev.PreviousSubtaskID}
	if cur, ok := sess.CurrentSubtask(); ok && cur.ID == prev.ID {
		prev.Title = cur.Title
	} else if st, ok := plan.Subtask(prev.ID); ok {
		prev.Title = st.Title
	} else if st, ok := plan.RemovedSubtask(prev.ID); ok {
		prev.Title = st.Title
	}
	return StepMoved{SessionID: res.State.ID(), Previous: prev, Current: SubtaskRef{ID: ev.CurrentSubtask.ID, Title: ev.CurrentSubtask.Title}, At: ev.ChangedAt.UTC()}, nil
}

// Controlled is what PauseSession, ResumeSession did.
type Controlled struct {
	Session domain.Session
	At      time.Time
}

// PauseSessionHandler pauses an IN_PROGRESS session.
type PauseSessionHandler struct{ s *Sessions }

// Handle pauses. Refusals: NOT_FOUND, FORBIDDEN, INVALID_STATE.
func (h PauseSessionHandler) Handle(ctx context.Context, cmd SessionControl) (Controlled, error) {
	sess, err := h.s.controlSession(ctx, cmd.SessionID)
	if err != nil {
		return Controlled{}, err
	}
	at := h.s.now()
	res, err := h.s.execute(ctx, cmd, sess, domain.PauseSession{Actor: cmd.Actor, At: at, Message: cmd.Message})
	return Controlled{Session: res.State, At: at}, err
}

// ResumeSessionHandler resumes a PAUSED session.
type ResumeSessionHandler struct{ s *Sessions }

// Handle resumes. Refusals: NOT_FOUND, FORBIDDEN, INVALID_STATE.
func (h ResumeSessionHandler) Handle(ctx context.Context, cmd SessionControl) (Controlled, error) {
	sess, err := h.s.controlSession(ctx, cmd.SessionID)
	if err != nil {
		return Controlled{}, err
	}
	at := h.s.now()
	res, err := h.s.execute(ctx, cmd, sess, domain.ResumeSession{Actor: cmd.Actor, At: at, Message: cmd.Message})
	return Controlled{Session: res.State, At: at}, err
}

// Ended is what EndSession did.
type Ended struct {
	Session          domain.Session
	Completed, Total int
}

// EndSessionHandler ends a session (into REVIEW_MODE) and frees its code.
type EndSessionHandler struct{ s *Sessions }

// Handle ends the session. Refusals: NOT_FOUND, FORBIDDEN, INVALID_STATE.
func (h EndSessionHandler) Handle(ctx context.Context, cmd SessionControl) (Ended, error) {
	sess, err := h.s.controlSession(ctx, cmd.SessionID)
	if err != nil {
		return Ended{}, err
	}
	res, err := h.s.execute(ctx, cmd, sess, domain.EndSession{Actor: cmd.Actor, At: h.s.now(), Message: cmd.Message})
	if err != nil {
		return Ended{}, err
	}
	st := res.State
	h.s.releaseCode(context.WithoutCancel(ctx), st.ID())
	completed, total, err := h.s.completion(ctx, st)
	if err != nil {
		return Ended{}, err
	}
	return Ended{Session: st, Completed: completed, Total: total}, nil
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
