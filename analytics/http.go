package analytics

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
	"github.com/lockstep/lockstep/web"
)

// TokenVerifier checks a bearer token (*auth.Tokens).
type TokenVerifier = live.TokenVerifier

// Config configures the analytics endpoints.
type Config struct {
	Reader *Reader
	// Hub serves the replay sockets.
	Hub *live.Hub
	// Tokens authenticates replay sockets (?token= or the Authorization header).
	Tokens TokenVerifier
	// Channels names a session's live channels (student, instructor).
	Channels Channels
	// PublicURL is the base of xAPI ids ("" = the request's scheme and host).
	PublicURL string
	Logger    *slog.Logger
}

// Handlers serves the analytics endpoints and the replay socket.
type Handlers struct {
	cfg Config
	log *slog.Logger
}

// New returns the handlers; it panics without a reader, hub, tokens or channels.
func New(cfg Config) *Handlers {
	if cfg.Reader == nil || cfg.Hub == nil || cfg.Tokens == nil || cfg.Channels == nil {
		panic("analytics: New needs a Reader, a Hub, Tokens and Channels")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handlers{cfg: cfg, log: cfg.Logger}
}

// Limits of the paged event lists.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// NDJSON is the media type of the streamed exports.
const NDJSON = "application/x-ndjson"

// Routes mounts, behind authed, GET /api/analytics/sessions/:session_id/{events,state,xapi}
// and GET /api/analytics/lectures/:lecture_id/events, and the socket
// WS /ws/replay/session/:session_id/ (which authenticates itself).
func (h *Handlers) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	g := r.Group("/api/analytics", authed, auth.Require(domain.RoleInstructor, domain.RoleAnalyst))
	g.GET("/sessions/:session_id/events", h.sessionEvents)
	g.GET("/sessions/:session_id/state", h.sessionState)
	g.GET("/sessions/:session_id/xapi", h.sessionXAPI)
	g.GET("/lectures/:lecture_id/events", h.lectureEvents)
	r.GET("/ws/replay/session/:session_id", h.replaySocket)
	r.GET("/ws/replay/session/:session_id/", h.replaySocket)
}

// mayRead: ADMIN and ANALYST read every classroom, an instructor only their own.
func mayRead(a domain.Actor, owner int64) bool {
	return a.Role == domain.RoleAnalyst || a.Manages(owner)
}

// classroom loads the session named in the path and checks access.
func (h *Handlers) classroom(c *gin.Context) (*Classroom, bool) {
	id, ok := web.IDParam(c, "session_id")
	if !ok {
		return nil, false
	}
	cl, err := h.cfg.Reader.LoadClassroom(c.Request.Context(), id)
	if err != nil {
		web.Error(c, err)
		return nil, false
	}
	if !mayRead(auth.ActorFrom(c), cl.InstructorID) {
		web.Error(c, domain.Forbidden("only the session's instructor, analysts and admins may read it"))
		return nil, false
	}
	return cl, true
}

func badField(field, msg string) error {
	return domain.Invalid("invalid query", map[string]string{field: msg})
}

type pageQuery struct {
	after uint64
	limit int
}

func parsePage(c *gin.Context) (pageQuery, error) {
	q := pageQuery{limit: DefaultLimit}
	if s := c.Query("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return q, badField("after", "must be a non-negative integer position")
		}
		q.after = v
	}
	if s := c.Query("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > MaxLimit {
			return q, badField("limit", "must be an integer from 1 to "+strconv.Itoa(MaxLimit))
		}
		q.limit = v
	}
	return q, nil
}

func parseTime(c *gin.Context, name string) (time.Time, error) {
	s := c.Query(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badField(name, "must be an RFC 3339 time")
	}
	return t.UTC(), nil
}

func wantsNDJSON(c *gin.Context) bool {
	for _, part := range strings.Split(c.GetHeader("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), NDJSON) {
			return true
		}
	}
	return false
}

// eventsPage is the answer of the paged event lists.
type eventsPage struct {
	SessionID *int64        `json:"session_id,omitempty"`
	LectureID *int64        `json:"lecture_id,omitempty"`
	Events    []Event       `json:"events"`
	Logs      []ActivityLog `json:"logs,omitempty"`
	NextAfter *uint64       `json:"next_after"`
}

func (h *Handlers) sessionEvents(c *gin.Context) {
	q, err := parsePage(c)
	if err != nil {
		web.Error(c, err)
		return
	}
	include := c.Query("include")
	if include != "" && include != "logs" {
		web.Error(c, badField("include", "must be logs"))
		return
	}
	cl, ok := h.classroom(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	iterate := func(after uint64) func(chunk int, yield func(Event) (bool, error)) error {
		return func(chunk int, yield func(Event) (bool, error)) error {
			return h.cfg.Reader.ClassroomEvents(ctx, cl, after, 0, chunk, yield)
		}
	}
	if wantsNDJSON(c) {
		var logs *logCursor
		if include == "logs" {
			logs = h.cfg.Reader.newLogCursor(cl.SessionID, q.after)
		}
		h.stream(c, func(yield func(Event) (bool, error)) error {
			return iterate(q.after)(500, yield)
		}, logs)
		return
	}
	events, next, err := Page(ctx, q.limit, iterate(q.after))
	if err != nil {
		web.Error(c, err)
		return
	}
	out := eventsPage{SessionID: &cl.SessionID, Events: events, NextAfter: next}
	if include == "logs" {
		if out.Logs, err = h.cfg.Reader.pageLogs(ctx, cl.SessionID, q.after, events, next == nil); err != nil {
			web.Error(c, err)
			return
		}
		if out.Logs == nil {
			out.Logs = []ActivityLog{}
		}
	}
	c.JSON(http.StatusOK, out)
}

func (h *Handlers) lectureEvents(c *gin.Context) {
	q, err := parsePage(c)
	if err != nil {
		web.Error(c, err)
		return
	}
	var tr TimeRange
	if tr.Since, err = parseTime(c, "since"); err == nil {
		tr.Until, err = parseTime(c, "until")
	}
	if err != nil {
		web.Error(c, err)
		return
	}
	id, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	owner, err := h.cfg.Reader.LectureOwner(ctx, id)
	if err != nil {
		web.Error(c, err)
		return
	}
	if !mayRead(auth.ActorFrom(c), owner) {
		web.Error(c, domain.Forbidden("only the lecture's instructor, analysts and admins may read its history"))
		return
	}
	iterate := func(chunk int, yield func(Event) (bool, error)) error {
		return h.cfg.Reader.LectureEvents(ctx, id, q.after, tr, chunk, yield)
	}
	if wantsNDJSON(c) {
		h.stream(c, func(yield func(Event) (bool, error)) error { return iterate(500, yield) }, nil)
		return
	}
	events, next, err := Page(ctx, q.limit, iterate)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, eventsPage{LectureID: &id, Events: events, NextAfter: next})
}

// flushEvery bounds how many lines wait in the buffer before a flush.
const flushEvery = 256

// stream writes every event as one NDJSON line, flushing as it goes, so a
// whole class streams without being held in memory. With logs, the
// session's activity logs are interleaved by time (a log line comes before
// the first event that occurred after it).
func (h *Handlers) stream(c *gin.Context, iterate func(yield func(Event) (bool, error)) error, logs *logCursor) {
	ctx := c.Request.Context()
	c.Header("Content-Type", NDJSON)
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Status(http.StatusOK)
	w := bufio.NewWriterSize(c.Writer, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	lines := 0
	flush := func() error {
		if err := w.Flush(); err != nil {
			return err
		}
		c.Writer.Flush()
		return nil
	}
	write := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		if lines++; lines%flushEvery == 0 {
			return flush()
		}
		return nil
	}
	err := iterate(func(e Event) (bool, error) {
		if logs != nil {
			if err := logs.until(ctx, e.OccurredAt, false, func(l ActivityLog) error { return write(l) }); err != nil {
				return false, err
			}
		}
		return true, write(e)
	})
	if err == nil && logs != nil {
		err = logs.until(ctx, time.Time{}, true, func(l ActivityLog) error { return write(l) })
	}
	if err == nil {
		err = flush()
	}
	if err != nil && ctx.Err() == nil {
		// The status is sent: end the response early; the client sees a
		// truncated stream (no final newline-terminated line is lost).
		h.log.Error("analytics: stream events", "path", c.FullPath(), "error", err)
		_ = c.Error(err)
		if hj, ok := c.Writer.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				_ = conn.Close()
			}
		}
	}
}

func (h *Handlers) sessionState(c *gin.Context) {
	raw := c.Query("at")
	if raw == "" {
		web.Error(c, badField("at", "is required (RFC 3339)"))
		return
	}
	at, err := parseTime(c, "at")
	if err != nil {
		web.Error(c, err)
		return
	}
	cl, ok := h.classroom(c)
	if !ok {
		return
	}
	st, err := h.cfg.Reader.StateAt(c.Request.Context(), cl, at)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (h *Handlers) sessionXAPI(c *gin.Context) {
	cl, ok := h.classroom(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	x := NewXAPI(cl, web.BaseURL(h.cfg.PublicURL, c.Request))
	var statements []Statement
	err := h.cfg.Reader.ClassroomEvents(ctx, cl, 0, 0, 1000, func(e Event) (bool, error) {
		if st, ok := x.Statement(e); ok {
			statements = append(statements, st)
		}
		return true, nil
	})
	if err != nil {
		web.Error(c, err)
		return
	}
	if statements == nil {
		statements = []Statement{}
	}
	c.JSON(http.StatusOK, gin.H{"statements": statements})
}

// replaySocket serves WS /ws/replay/session/{id}/?speed=x: the classroom's
// student and instructor messages, each exactly as the live socket sent it
// (payload and original position), in position order with the original gaps
// divided by speed (default 1; 0 = as fast as the client reads), then
// replay_finished. The socket stays open afterwards: the client may seek
// and play again, and closes it when done. Client messages: see Control.
func (h *Handlers) replaySocket(c *gin.Context) {
	speed := 1.0
	if s := c.Query("speed"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v != v || v > 1e6 {
			web.Error(c, badField("speed", "must be a number >= 0"))
			return
		}
		speed = v
	}
	g := live.Gate{Hub: h.cfg.Hub, Tokens: h.cfg.Tokens, Log: h.log, Name: "replay socket"}
	actor, opts, ok := g.Accept(c)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(c.Param("session_id"), 10, 64)
	if err != nil || id <= 0 {
		g.Reject(c, live.CloseNotFound, "session not found")
		return
	}
	cl, err := h.cfg.Reader.LoadClassroom(c.Request.Context(), id)
	if errors.Is(err, domain.ErrNotFound) {
		g.Reject(c, live.CloseNotFound, "session not found")
		return
	}
	if err != nil {
		h.log.Error("replay socket: load session", "session_id", id, "error", err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	if !mayRead(actor, cl.InstructorID) {
		g.Reject(c, live.CloseForbidden, "only the session's instructor, analysts and admins may replay it")
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Request.Context()))
	defer cancel()
	player := &Player{
		Reader: h.cfg.Reader, SessionID: id, Channels: h.cfg.Channels(id), Speed: speed, Linger: true,
	}
	sub := h.replaySubscription(ctx, cancel, player, opts.Batch)
	g.Serve(c, sub, "session_id", id)
}

// replaySubscription runs player on the socket once it opens and feeds it
// the client's control messages; closing the socket cancels ctx.
func (h *Handlers) replaySubscription(ctx context.Context, cancel context.CancelFunc, player *Player, batch time.Duration) live.Subscription {
	controls := make(chan Control, 64)
	player.Controls = controls
	return live.Subscription{
		Kind:  "replay",
		Batch: batch,
		OnOpen: func(conn *live.Conn) {
			player.Send = conn.Send
			player.Errors = func(ctx context.Context, msg string) { sendError(ctx, conn, msg) }
			if err := player.Run(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("replay failed", "session_id", player.SessionID, "error", err)
				conn.Close(1011, "replay failed")
			}
		},
		OnClose: func(*live.Conn) { cancel() },
		OnMessage: func(conn *live.Conn, data []byte) {
			var ctl Control
			if err := json.Unmarshal(data, &ctl); err != nil {
				sendError(ctx, conn, "control messages are JSON objects")
				return
			}
			select {
			case controls <- ctl:
			default:
				sendError(ctx, conn, "too many control messages")
			}
		},
	}
}

// sendError tells a replay's client about a message it could not apply.
func sendError(ctx context.Context, conn *live.Conn, msg string) {
	b, _ := json.Marshal(gin.H{"type": "error", "data": gin.H{"message": msg}})
	_ = conn.Send(ctx, b)
}
