package activitylog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// Routes and limits of the ingest endpoints.
const (
	ActivityPath = "/api/logs/activity"
	BatchPath    = "/api/logs/batch"
	// BatchBodyLimit is the body limit of BatchPath (every other route has
	// the engine's 1 MiB).
	BatchBodyLimit = 5 << 20
	// MaxBatch is the most logs one batch may carry.
	MaxBatch = 1000
	// maxProblems bounds the fields one 400 answer names.
	maxProblems = 50
)

// Publisher publishes bus messages durably (*bus.Bus).
type Publisher interface {
	Publish(ctx context.Context, topic string, msgs ...*message.Message) error
}

// IDSource hands out fresh log ids (*IDs).
type IDSource interface {
	Take(ctx context.Context, n int) ([]int64, error)
}

// HandlerConfig is what the ingest endpoints need.
type HandlerConfig struct {
	Bus      Publisher
	IDs      IDSource
	Sessions Sessions
	// Keys remembers Idempotency-Keys (*PGKeys); without it the header is
	// ignored.
	Keys   KeyStore
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
}

// Handler serves POST /api/logs/activity and POST /api/logs/batch.
type Handler struct {
	cfg HandlerConfig
}

// NewHandler returns the ingest endpoints. It panics on a missing dependency.
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.Bus == nil || cfg.IDs == nil || cfg.Sessions == nil {
		panic("activitylog: NewHandler needs Bus, IDs and Sessions")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg}
}

// Routes mounts both endpoints on r behind authed, for students,
// instructors and admins (an analyst writes nothing: 403). The batch route
// applies BatchBodyLimit itself: the engine's global 1 MiB limit must not
// run before it for BatchPath.
func (h *Handler) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	writers := auth.Require(domain.RoleStudent, domain.RoleInstructor) // and ADMIN
	r.POST(ActivityPath, authed, writers, keyed, h.activity)
	r.POST(BatchPath, authed, writers, web.BodyLimit(BatchBodyLimit), keyed, h.batch)
}

// logInput is one log as a client sends it. Pointers tell absent from zero.
type logInput struct {
	UserID     *int64          `json:"user_id"`
	SessionID  *int64          `json:"session_id"`
	SubtaskID  *int64          `json:"subtask_id"`
	EventType  *string         `json:"event_type"`
	EventData  json.RawMessage `json:"event_data"`
	ScreenInfo json.RawMessage `json:"screen_info"`
	Timestamp  *string         `json:"timestamp"`
}

// problems collects what is wrong with a request, by field.
type problems struct {
	invalid   map[string]string // → 400
	forbidden map[string]string // → 403
}

func (p *problems) bad(field, why string) {
	if p.invalid == nil {
		p.invalid = map[string]string{}
	}
	if len(p.invalid) < maxProblems {
		p.invalid[field] = why
	}
}

func (p *problems) deny(field, why string) {
	if p.forbidden == nil {
		p.forbidden = map[string]string{}
	}
	if len(p.forbidden) < maxProblems {
		p.forbidden[field] = why
	}
}

func (p *problems) err() error {
	if len(p.invalid) > 0 {
		return domain.Invalid("invalid activity log", p.invalid)
	}
	if len(p.forbidden) > 0 {
		d := make(map[string]any, len(p.forbidden))
		for k, v := range p.forbidden {
			d[k] = v
		}
		return &domain.Error{Code: domain.CodeForbidden, Message: "you may only send your own activity logs", Details: d}
	}
	return nil
}

func (h *Handler) activity(c *gin.Context) {
	actor := auth.ActorFrom(c)
	data, err := io.ReadAll(c.Request.Body)
	if err != nil {
		web.Error(c, web.BindError(err))
		return
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	var in logInput
	var p problems
	decodeEntry(data, "", &in, &p)
	now := h.cfg.Now().UTC()
	logs := []Log{{}}
	if len(p.invalid) == 0 {
		logs[0] = validate(&in, actor, now, "", &p)
	}
	if err := p.err(); err != nil {
		web.Error(c, err)
		return
	}
	if !h.store(c, actor, logs, []*logInput{&in}, func(i int) string { return "" }) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{"log_id": logs[0].LogID, "message": "Log saved successfully"})
}

func (h *Handler) batch(c *gin.Context) {
	actor := auth.ActorFrom(c)
	var body struct {
		Logs []json.RawMessage `json:"logs"`
	}
	if !web.Bind(c, &body) {
		return
	}
	if len(body.Logs) == 0 || len(body.Logs) > MaxBatch {
		web.Error(c, domain.Invalid("a batch carries 1 to 1000 logs",
			map[string]string{"logs": fmt.Sprintf("must have 1 to %d entries (got %d)", MaxBatch, len(body.Logs))}))
		return
	}
	now := h.cfg.Now().UTC()
	prefix := func(i int) string { return "logs[" + strconv.Itoa(i) + "]." }
	var p problems
	ins := make([]*logInput, len(body.Logs))
	logs := make([]Log, len(body.Logs))
	for i, raw := range body.Logs {
		ins[i] = &logInput{}
		before := len(p.invalid)
		decodeEntry(raw, prefix(i), ins[i], &p)
		if len(p.invalid) == before {
			logs[i] = validate(ins[i], actor, now, prefix(i), &p)
		}
	}
	if err := p.err(); err != nil {
		web.Error(c, err)
		return
	}
	if !h.store(c, actor, logs, ins, prefix) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{"accepted": len(logs)})
}

// decodeEntry decodes one log object, naming a bad field under prefix.
func decodeEntry(data []byte, prefix string, in *logInput, p *problems) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		p.bad(fieldName(prefix, ""), "must be a JSON object")
		return
	}
	err := json.Unmarshal(data, in)
	if err == nil {
		return
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		p.bad(prefix+typeErr.Field, "has the wrong type")
		return
	}
	p.bad(fieldName(prefix, ""), "is not valid JSON")
}

// fieldName is prefix+field, or the entry itself ("logs[3]", "body").
func fieldName(prefix, field string) string {
	if field != "" {
		return prefix + field
	}
	if prefix == "" {
		return "body"
	}
	return prefix[:len(prefix)-1]
}

// validate checks one decoded log and builds it (without log id and
// session): every value must be storable as it is (text and jsonb columns,
// a timestamp within domain.TimeProblem's window of now), so that a log
// answered 201 can never stop the writer. References (session, subtask) are
// checked against the read models by resolve.
func validate(in *logInput, actor domain.Actor, now time.Time, prefix string, p *problems) Log {
	l := Log{UserID: actor.UserID, ReceivedAt: now, OccurredAt: now}
	if in.EventType == nil {
		p.bad(prefix+"event_type", "is required")
	} else if !ValidEventType(*in.EventType) {
		p.bad(prefix+"event_type", "must match ^[A-Z][A-Z_]{0,63}$")
	} else {
		l.EventType = *in.EventType
	}
	if in.UserID != nil {
		switch {
		case *in.UserID <= 0:
			p.bad(prefix+"user_id", "must be a positive integer")
		case *in.UserID != actor.UserID && !actor.IsAdmin():
			p.deny(prefix+"user_id", "must be your own user id")
		default:
			l.UserID = *in.UserID
		}
	}
	if in.SubtaskID != nil {
		if *in.SubtaskID <= 0 {
			p.bad(prefix+"subtask_id", "must be a positive integer")
		}
		l.SubtaskID = in.SubtaskID
	}
	if in.SessionID != nil {
		if *in.SessionID <= 0 {
			p.bad(prefix+"session_id", "must be a positive integer")
		}
		l.SessionID = in.SessionID
	}
	l.EventData = jsonObject(in.EventData, prefix+"event_data", p)
	l.ScreenInfo = jsonObject(in.ScreenInfo, prefix+"screen_info", p)
	if in.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *in.Timestamp)
		switch {
		case err != nil:
			p.bad(prefix+"timestamp", "must be an RFC 3339 time")
		case domain.TimeProblem(t, now) != "":
			p.bad(prefix+"timestamp", domain.TimeProblem(t, now))
		default:
			l.OccurredAt = t.UTC()
		}
	}
	return l
}

// jsonObject accepts an absent or null value (nil) or a JSON object that
// PostgreSQL's jsonb can store (domain.JSONProblem: valid UTF-8, no \u0000,
// no lone surrogate, in keys as in values, numbers a float64 holds).
func jsonObject(raw json.RawMessage, field string, p *problems) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		p.bad(field, "must be a JSON object")
		return nil
	}
	if why := domain.JSONProblem(raw); why != "" {
		p.bad(field, why)
		return nil
	}
	return raw
}

// ValidEventType reports whether s matches ^[A-Z][A-Z_]{0,63}$.
func ValidEventType(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// store resolves the logs' references (resolve), gives them log ids and
// publishes them. On failure it answers and returns false.
func (h *Handler) store(c *gin.Context, actor domain.Actor, logs []Log, ins []*logInput, prefix func(int) string) bool {
	ctx := c.Request.Context()
	var p problems
	if err := h.resolve(ctx, actor, logs, ins, prefix, &p); err != nil {
		h.fail(c, "check the logs' session and subtask", err)
		return false
	}
	if err := p.err(); err != nil {
		web.Error(c, err)
		return false
	}
	ids, err := h.ids(c, actor, logs, ins)
	if errors.Is(err, ErrKeyReused) {
		web.Error(c, domain.Errorf(domain.CodeConflict, "%s", ErrKeyReused.Error()))
		return false
	}
	if err != nil {
		h.fail(c, "allocate log ids", err)
		return false
	}
	for i := range logs {
		logs[i].LogID = ids[i]
	}
	msgs, err := NewMessages(logs)
	if err != nil {
		h.fail(c, "encode logs", err)
		return false
	}
	if err := h.cfg.Bus.Publish(ctx, bus.TopicActivityLogs, msgs...); err != nil {
		h.fail(c, "publish logs", err)
		return false
	}
	return true
}

// ids gives the logs their ids: fresh ones, or, for a request with an
// Idempotency-Key, the ids the key's first request reserved. A retry thus
// publishes the same log ids again (the writer stores each id once), with
// the first request's received time (and occurred time where the client
// sent none), and answers what the first answered.
func (h *Handler) ids(c *gin.Context, actor domain.Actor, logs []Log, ins []*logInput) ([]int64, error) {
	ctx := c.Request.Context()
	v, ok := c.Get(ctxKey)
	if !ok || h.cfg.Keys == nil {
		return h.cfg.IDs.Take(ctx, len(logs))
	}
	kf := v.([2]string)
	now := logs[0].ReceivedAt
	ids, first, replay, err := h.cfg.Keys.Reserve(ctx, actor.UserID, kf[0], kf[1], len(logs), now, h.cfg.IDs.Take)
	if err != nil {
		return nil, err
	}
	if replay {
		c.Header("Idempotent-Replayed", "true")
		for i := range logs {
			logs[i].ReceivedAt = first
			if ins[i].Timestamp == nil {
				logs[i].OccurredAt = first
			}
		}
	}
	return ids, nil
}

// resolve checks and attaches each log's session and subtask:
//   - a session_id the log names must exist (400) and, but for ADMIN, be
//     one the log's user joined (403); without one the user's active
//     session, if any, is attached;
//   - a subtask_id must exist (400) and belong to the lecture of the
//     session the log names (400); with an attached active session of
//     another lecture, or none, the user must be enrolled in the subtask's
//     lecture or teach it (ADMIN excepted; 400), and the log is stored
//     without that other lecture's session.
//
// It returns an error only when the read models cannot be asked.
func (h *Handler) resolve(ctx context.Context, actor domain.Actor, logs []Log, ins []*logInput, prefix func(int) string, p *problems) error {
	active := map[int64]*SessionRef{}
	// Answers within one request, so a batch asks once per distinct value
	// (the Sessions cache keeps only positive answers).
	type subtaskAnswer struct {
		lecture int64
		ok      bool
	}
	subtasks := map[int64]subtaskAnswer{}
	members := map[[2]int64]bool{}
	for i := range logs {
		l := &logs[i]
		var session *SessionRef
		if ins[i].SessionID != nil {
			s, joined, err := h.cfg.Sessions.Session(ctx, l.UserID, *l.SessionID)
			switch {
			case err != nil:
				return err
			case s == nil:
				p.bad(prefix(i)+"session_id", "no such session")
				continue
			case !joined && !actor.IsAdmin():
				p.deny(prefix(i)+"session_id", "you did not join this session")
				continue
			}
			session = s
		} else {
			s, seen := active[l.UserID]
			if !seen {
				var err error
				if s, err = h.cfg.Sessions.Active(ctx, l.UserID); err != nil {
					return err
				}
				active[l.UserID] = s
			}
			if s != nil {
				l.SessionID = &s.ID
			}
		}
		if l.SubtaskID == nil {
			continue
		}
		field := prefix(i) + "subtask_id"
		ans, seen := subtasks[*l.SubtaskID]
		if !seen {
			lecture, ok, err := h.cfg.Sessions.SubtaskLecture(ctx, *l.SubtaskID)
			if err != nil {
				return err
			}
			ans = subtaskAnswer{lecture, ok}
			subtasks[*l.SubtaskID] = ans
		}
		lecture := ans.lecture
		switch {
		case !ans.ok:
			p.bad(field, "no such subtask")
			continue
		case session != nil && lecture != session.LectureID:
			p.bad(field, fmt.Sprintf("belongs to another lecture than session %d", session.ID))
			continue
		case session != nil:
			continue
		}
		if l.SessionID != nil && active[l.UserID].LectureID == lecture {
			continue
		}
		if !actor.IsAdmin() {
			key := [2]int64{l.UserID, lecture}
			in, seen := members[key]
			if !seen {
				var err error
				if in, err = h.cfg.Sessions.InLecture(ctx, l.UserID, lecture); err != nil {
					return err
				}
				members[key] = in
			}
			if !in {
				p.bad(field, "belongs to a lecture you are neither enrolled in nor teach")
				continue
			}
		}
		l.SessionID = nil // the active session teaches another lecture
	}
	return nil
}

// fail answers 503 (the client should retry) and logs the cause.
func (h *Handler) fail(c *gin.Context, what string, err error) {
	h.cfg.Logger.Error("activity log ingest failed", "step", what, "error", err)
	web.Error(c, &domain.Error{Code: domain.CodeUnavailable, Message: "logs could not be stored; retry later"})
}
