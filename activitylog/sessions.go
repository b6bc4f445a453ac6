package activitylog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SessionRef is a live session and the lecture it teaches.
type SessionRef struct {
	ID        int64
	LectureID int64
}

// Sessions tells which live session and lecture a user's logs belong to.
type Sessions interface {
	// Active returns the session the user currently takes part in (status
	// WAITING, IN_PROGRESS or PAUSED; the newest if several), or nil.
	Active(ctx context.Context, userID int64) (*SessionRef, error)
	// Session returns the session (nil when there is none) and whether the
	// user joined it (in any status, so logs sent late after the session
	// ended still attach to it).
	Session(ctx context.Context, userID, sessionID int64) (s *SessionRef, joined bool, err error)
	// SubtaskLecture returns the lecture of a subtask (removed ones too: a
	// late log may name one), ok false when there is no such subtask.
	SubtaskLecture(ctx context.Context, subtaskID int64) (lectureID int64, ok bool, err error)
	// InLecture reports whether the user is enrolled in the lecture or
	// teaches it.
	InLecture(ctx context.Context, userID, lectureID int64) (bool, error)
}

// ReadModelSessions answers from the read models (session_participants and
// live_sessions of the "sessions" projector; rm_lecture_subtasks,
// rm_enrollments and rm_lectures of the "lectures" projector), caching
// answers for TTL so that a burst of logs from one student costs one query.
// What never changes (a subtask's lecture, a session's lecture) is cached
// without expiry. Safe for concurrent use.
type ReadModelSessions struct {
	pool *pgxpool.Pool
	ttl  time.Duration
	now  func() time.Time

	mu       sync.Mutex
	active   map[int64]cachedActive
	joined   map[[2]int64]time.Time // (user, session) → cached until; positive answers only
	member   map[[2]int64]time.Time // (user, lecture) → cached until; positive answers only
	sessions map[int64]int64        // session → lecture
	subtasks map[int64]int64        // subtask → lecture
}

type cachedActive struct {
	session *SessionRef
	until   time.Time
}

// maxCached bounds each cache; it is emptied when full.
const maxCached = 100000

// NewReadModelSessions returns a Sessions over pool with answers cached for
// ttl (0: no caching). A student who just joined may be logged without a
// session for up to ttl.
func NewReadModelSessions(pool *pgxpool.Pool, ttl time.Duration) *ReadModelSessions {
	if pool == nil {
		panic("activitylog: NewReadModelSessions needs a pool")
	}
	return &ReadModelSessions{pool: pool, ttl: ttl, now: time.Now,
		active: map[int64]cachedActive{}, joined: map[[2]int64]time.Time{}, member: map[[2]int64]time.Time{},
		sessions: map[int64]int64{}, subtasks: map[int64]int64{}}
}

// Active implements Sessions.
func (s *ReadModelSessions) Active(ctx context.Context, userID int64) (*SessionRef, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.active[userID]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.session, nil
	}
	var ref SessionRef
	err := s.pool.QueryRow(ctx, `
		SELECT p.session_id, s.lecture_id
		FROM session_participants p JOIN live_sessions s ON s.session_id = p.session_id
		WHERE p.user_id = $1 AND s.status IN ('WAITING', 'IN_PROGRESS', 'PAUSED')
		ORDER BY p.session_id DESC LIMIT 1`, userID).Scan(&ref.ID, &ref.LectureID)
	var session *SessionRef
	switch {
	case err == nil:
		session = &ref
	case errors.Is(err, pgx.ErrNoRows):
	default:
		return nil, fmt.Errorf("active session of user %d: %w", userID, err)
	}
	if s.ttl > 0 {
		s.mu.Lock()
		if len(s.active) >= maxCached {
			clear(s.active)
		}
		s.active[userID] = cachedActive{session: session, until: now.Add(s.ttl)}
		s.mu.Unlock()
	}
	return session, nil
}

// Session implements Sessions.
func (s *ReadModelSessions) Session(ctx context.Context, userID, sessionID int64) (*SessionRef, bool, error) {
	now := s.now()
	key := [2]int64{userID, sessionID}
	s.mu.Lock()
	lecture, known := s.sessions[sessionID]
	until, ok := s.joined[key]
	s.mu.Unlock()
	if known && ok && now.Before(until) {
		return &SessionRef{ID: sessionID, LectureID: lecture}, true, nil
	}
	var joined bool
	err := s.pool.QueryRow(ctx, `
		SELECT s.lecture_id, EXISTS (SELECT 1 FROM session_participants p WHERE p.session_id = s.session_id AND p.user_id = $2)
		FROM live_sessions s WHERE s.session_id = $1`, sessionID, userID).Scan(&lecture, &joined)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("session %d of user %d: %w", sessionID, userID, err)
	}
	s.mu.Lock()
	if len(s.sessions) >= maxCached {
		clear(s.sessions)
	}
	s.sessions[sessionID] = lecture
	if joined && s.ttl > 0 {
		if len(s.joined) >= maxCached {
			clear(s.joined)
		}
		s.joined[key] = now.Add(s.ttl)
	}
	s.mu.Unlock()
	return &SessionRef{ID: sessionID, LectureID: lecture}, joined, nil
}

// SubtaskLecture implements Sessions.
func (s *ReadModelSessions) SubtaskLecture(ctx context.Context, subtaskID int64) (int64, bool, error) {
	s.mu.Lock()
	lecture, ok := s.subtasks[subtaskID]
	s.mu.Unlock()
	if ok {
		return lecture, true, nil
	}
	err := s.pool.QueryRow(ctx, `SELECT lecture_id FROM rm_lecture_subtasks WHERE id = $1`, subtaskID).Scan(&lecture)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("lecture of subtask %d: %w", subtaskID, err)
	}
	s.mu.Lock()
	if len(s.subtasks) >= maxCached {
		clear(s.subtasks)
	}
	s.subtasks[subtaskID] = lecture
	s.mu.Unlock()
	return lecture, true, nil
}

// InLecture implements Sessions.
func (s *ReadModelSessions) InLecture(ctx context.Context, userID, lectureID int64) (bool, error) {
	now := s.now()
	key := [2]int64{userID, lectureID}
	s.mu.Lock()
	until, ok := s.member[key]
	s.mu.Unlock()
	if ok && now.Before(until) {
		return true, nil
	}
	var in bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rm_enrollments WHERE lecture_id = $1 AND user_id = $2)
		OR EXISTS (SELECT 1 FROM rm_lectures WHERE id = $1 AND instructor_id = $2)`, lectureID, userID).Scan(&in)
	if err != nil {
		return false, fmt.Errorf("membership of user %d in lecture %d: %w", userID, lectureID, err)
	}
	if in && s.ttl > 0 {
		s.mu.Lock()
		if len(s.member) >= maxCached {
			clear(s.member)
		}
		s.member[key] = now.Add(s.ttl)
		s.mu.Unlock()
	}
	return in, nil
}
