package readapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
)

func (q *SessionQueries) gate(name string) live.Gate {
	return live.Gate{Hub: q.Hub, Tokens: q.Tokens, Log: q.logger(), Name: name}
}

// socketSession admits a session socket (live.Gate.Accept) and loads the
// session and what the actor may do there; an unknown session closes with
// 4404.
func (q *SessionQueries) socketSession(c *gin.Context, g live.Gate) (int64, domain.Actor, sessionAccess, live.Options, bool) {
	actor, opts, ok := g.Accept(c)
	if !ok {
		return 0, actor, sessionAccess{}, opts, false
	}
	id := sessionIDParam(c)
	if id == 0 {
		g.Reject(c, live.CloseNotFound, "session not found")
		return 0, actor, sessionAccess{}, opts, false
	}
	a, err := loadSessionAccess(c.Request.Context(), q.Pool, id, actor.UserID)
	if errors.Is(err, domain.ErrNotFound) {
		g.Reject(c, live.CloseNotFound, "session not found")
		return 0, actor, a, opts, false
	}
	if err != nil {
		q.logger().Error("socket: load session", "session_id", id, "error", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return 0, actor, a, opts, false
	}
	return id, actor, a, opts, true
}

// studentSocket serves WS /ws/session/{id}/student/: the session's
// participants (and its instructor or an admin, watching) get session_state
// on connect, then the students channel. A participant's socket counts for
// their presence.
func (q *SessionQueries) studentSocket(c *gin.Context) {
	g := q.gate("student socket")
	id, actor, a, opts, ok := q.socketSession(c, g)
	if !ok {
		return
	}
	if !a.participant && !a.owner(actor) && q.Joined != nil {
		// The read model may lag behind a join that was just answered: the
		// participant's own stream is the authority.
		joined, err := q.Joined(c.Request.Context(), id, actor.UserID)
		if err != nil {
			q.logger().Error("socket: check participation", "session_id", id, "error", err)
		}
		a.participant = joined
	}
	if !a.participant && !a.owner(actor) {
		g.Reject(c, live.CloseForbidden, "only the session's participants may connect")
		return
	}
	sub := opts.Follow(q.StudentsChannel(id), "student", q.Producer,
		live.Snapshot("session_state", func(ctx context.Context, tx pgx.Tx) (any, error) { return currentView(ctx, tx, id) }))
	if a.participant && q.Presence != nil {
		p := &socketPresence{presence: q.Presence, sessionID: id, userID: actor.UserID, ctx: context.WithoutCancel(c.Request.Context()), log: q.logger()}
		sub.OnOpen = func(*live.Conn) { p.open() }
		sub.OnClose = func(*live.Conn) { p.close() }
	}
	g.Serve(c, sub, "session_id", id)
}

// instructorSocket serves WS /ws/session/{id}/instructor/: the session's
// instructor (or an admin) gets participants on connect, then the instructor channel.
func (q *SessionQueries) instructorSocket(c *gin.Context) {
	g := q.gate("instructor socket")
	id, actor, a, opts, ok := q.socketSession(c, g)
	if !ok {
		return
	}
	if !a.owner(actor) {
		g.Reject(c, live.CloseForbidden, "only the session's instructor may connect")
		return
	}
	g.Serve(c, opts.Follow(q.InstructorChannel(id), "instructor", q.Producer,
		live.Snapshot("participants", func(ctx context.Context, tx pgx.Tx) (any, error) { return participantsView(ctx, tx, id) })),
		"session_id", id)
}

// socketPresence reports one student socket to StudentPresence. The hub may
// call close before (or instead of) open; the lock keeps them in order.
type socketPresence struct {
	presence          StudentPresence
	sessionID, userID int64
	ctx               context.Context
	log               interface {
		Error(msg string, args ...any)
	}

	mu       sync.Mutex
	socketID int64
	closed   bool
}

const presenceTimeout = 10 * time.Second

func (p *socketPresence) open() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, presenceTimeout)
	defer cancel()
	id, err := p.presence.Opened(ctx, p.sessionID, p.userID)
	if err != nil {
		p.log.Error("record student socket", "session_id", p.sessionID, "user_id", p.userID, "error", err)
	}
	p.socketID = id
}

func (p *socketPresence) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.socketID == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, presenceTimeout)
	defer cancel()
	if err := p.presence.Closed(ctx, p.sessionID, p.userID, p.socketID); err != nil {
		p.log.Error("record closed student socket", "session_id", p.sessionID, "user_id", p.userID, "error", err)
	}
}
