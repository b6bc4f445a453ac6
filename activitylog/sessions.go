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

// Sessions tells which live session a user's logs belong to.
type Sessions interface {
	// Active returns the session the user currently takes part in (status
	// WAITING, IN_PROGRESS or PAUSED; the newest if several), or nil.
	Active(ctx context.Context, userID int64) (*int64, error)
	// Participates reports whether the user joined the session (in any status,
	// so logs sent late after the session ended still attach to it).
	Participates(ctx context.Context, userID, sessionID int64) (bool, error)
}

// ReadModelSessions answers from the sessions read model (tables
// session_participants and live_sessions of the "sessions" projector),
// caching answers for TTL so that a burst of logs from one student costs
// one query. Safe for concurrent use.
type ReadModelSessions struct {
	pool *pgxpool.Pool
	ttl  time.Duration
	now  func() time.Time

	mu     sync.Mutex
	active map[int64]cachedActive
	joined map[[2]int64]time.Time // (user, session) → cached until; positive answers only
}

type cachedActive struct {
	session *int64
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
		active: map[int64]cachedActive{}, joined: map[[2]int64]time.Time{}}
}

// Active implements Sessions.
func (s *ReadModelSessions) Active(ctx context.Context, userID int64) (*int64, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.active[userID]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.session, nil
	}
	var id int64
	err := s.pool.QueryRow(ctx, `
		SELECT p.session_id
		FROM session_participants p JOIN live_sessions s ON s.session_id = p.session_id
		WHERE p.user_id = $1 AND s.status IN ('WAITING', 'IN_PROGRESS', 'PAUSED')
		ORDER BY p.session_id DESC LIMIT 1`, userID).Scan(&id)
	var session *int64
	switch {
	case err == nil:
		session = &id
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

// Participates implements Sessions.
func (s *ReadModelSessions) Participates(ctx context.Context, userID, sessionID int64) (bool, error) {
	now := s.now()
	key := [2]int64{userID, sessionID}
	s.mu.Lock()
	until, ok := s.joined[key]
	s.mu.Unlock()
	if ok && now.Before(until) {
		return true, nil
	}
	var joined bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_participants WHERE session_id = $1 AND user_id = $2)`,
		sessionID, userID).Scan(&joined)
	if err != nil {
		return false, fmt.Errorf("participation of user %d in session %d: %w", userID, sessionID, err)
	}
	if joined && s.ttl > 0 {
		s.mu.Lock()
		if len(s.joined) >= maxCached {
			clear(s.joined)
		}
		s.joined[key] = now.Add(s.ttl)
		s.mu.Unlock()
	}
	return joined, nil
}
