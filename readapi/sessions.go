package readapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
	"github.com/lockstep/lockstep/qr"
	"github.com/lockstep/lockstep/web"
)

// TokenVerifier checks an access token (*auth.Tokens).
type TokenVerifier = live.TokenVerifier

// StudentPresence is told when a student socket opens and closes
// (*presence.Tracker), so that absent participants become DISCONNECTED.
type StudentPresence interface {
	Opened(ctx context.Context, sessionID, userID int64) (socketID int64, err error)
	Closed(ctx context.Context, sessionID, userID, socketID int64) error
}

// SessionQueries answers the session queries and serves the session sockets:
// GET /api/sessions/my-active, GET /api/sessions/{session_code},
// GET /api/sessions/{session_id}/participants, GET /api/sessions/{session_id}/current,
// GET /qr/{session_code}.png, and WS /ws/session/{session_id}/student/ and
// /ws/session/{session_id}/instructor/.
type SessionQueries struct {
	Pool *pgxpool.Pool
	// PublicURL is the public base URL of join links ("" = the request's).
	PublicURL string
	// Hub serves the sockets (nil: no socket routes).
	Hub *live.Hub
	// Tokens verifies socket tokens.
	Tokens TokenVerifier
	// Joined, when set, tells from the event store whether a user joined a
	// session, for sockets that arrive before the read models show the join.
	Joined func(ctx context.Context, sessionID, userID int64) (bool, error)
	// Presence, when set, is told of student sockets.
	Presence StudentPresence
	// Lookups, when set, records who looked a session up by its code
	// (*commands.Admission): that admits them to join it for an hour.
	Lookups interface {
		RecordLookup(ctx context.Context, userID, sessionID int64) error
	}
	// Producer is the projector that feeds the session channels and whose
	// checkpoint the socket snapshots reflect.
	Producer string
	// StudentsChannel and InstructorChannel name a session's channels.
	StudentsChannel, InstructorChannel func(sessionID int64) string
	Logger                             *slog.Logger
}

// Routes mounts the queries behind authed, and the QR image and sockets
// (which authenticate themselves).
func (q *SessionQueries) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	r.GET("/api/sessions/my-active", authed, q.myActive)
	// One wildcard name for both: /api/sessions/{code} alone, and
	// /api/sessions/{id}/… with a further segment.
	r.GET("/api/sessions/:session_id", authed, q.byCode)
	r.GET("/api/sessions/:session_id/participants", authed, sessionView(q, sessionAccess.owner,
		"only the session's instructor may see its participants", participantsView))
	r.GET("/api/sessions/:session_id/current", authed, sessionView(q, sessionAccess.canReadCurrent,
		"only the session's participants and instructor may see it", currentView))
	r.GET("/qr/:file", q.qrImage)
	if q.Hub != nil {
		r.GET("/ws/session/:session_id/student", q.studentSocket)
		r.GET("/ws/session/:session_id/student/", q.studentSocket)
		r.GET("/ws/session/:session_id/instructor", q.instructorSocket)
		r.GET("/ws/session/:session_id/instructor/", q.instructorSocket)
	}
}

func (q *SessionQueries) logger() *slog.Logger {
	if q.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return q.Logger
}

// sessionQuerier is a pool or a transaction.
type sessionQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type sessionIDName struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type sessionLectureRef struct {
	ID          int64   `json:"id"`
	Title       string  `json:"title"`
	Description *string `json:"description,omitempty"`
}

type sessionSubtaskRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

type sessionSubtaskView struct {
	ID             int64  `json:"id"`
	Title          string `json:"title"`
	GuideText      string `json:"guide_text"`
	VoiceGuideText string `json:"voice_guide_text"`
}

// sessionAccess is what the access rules need to know of a session.
type sessionAccess struct {
	instructorID int64
	participant  bool
}

func loadSessionAccess(ctx context.Context, db sessionQuerier, sessionID, userID int64) (sessionAccess, error) {
	var a sessionAccess
	err := db.QueryRow(ctx, `SELECT s.instructor_id, EXISTS (SELECT 1 FROM session_participants p WHERE p.session_id = s.session_id AND p.user_id = $2)
		FROM live_sessions s WHERE s.session_id = $1`, sessionID, userID).Scan(&a.instructorID, &a.participant)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, domain.NotFound("session")
	}
	if err != nil {
		return a, fmt.Errorf("load session %d: %w", sessionID, err)
	}
	return a, nil
}

// owner: the session's instructor while still an INSTRUCTOR, or ADMIN.
func (a sessionAccess) owner(actor domain.Actor) bool {
	return actor.Manages(a.instructorID)
}

type sessionByCode struct {
	SessionID        int64             `json:"session_id"`
	SessionCode      string            `json:"session_code"`
	Title            string            `json:"title"`
	Status           string            `json:"status"`
	Lecture          sessionLectureRef `json:"lecture"`
	Instructor       sessionIDName     `json:"instructor"`
	ParticipantCount int               `json:"participant_count"`
	ScheduledAt      *time.Time        `json:"scheduled_at"`
}

// byCode serves GET /api/sessions/{session_code}; the code is matched
// ignoring case, spaces and hyphens (domain.NormalizeSessionCode).
func (q *SessionQueries) byCode(c *gin.Context) {
	code := domain.NormalizeSessionCode(c.Param("session_id"))
	if !domain.ValidSessionCode(code) {
		web.Error(c, domain.NotFound("session"))
		return
	}
	var v sessionByCode
	var desc string
	err := q.Pool.QueryRow(c.Request.Context(), `
		SELECT s.session_id, s.session_code, s.title, s.status, s.lecture_id, coalesce(l.title, s.lecture_title), coalesce(l.description, ''),
		       s.instructor_id, coalesce(u.name, ''), s.participant_count, s.scheduled_at
		FROM live_sessions s
		LEFT JOIN session_lectures l ON l.lecture_id = s.lecture_id
		LEFT JOIN users u ON u.id = s.instructor_id
		WHERE s.session_code = $1
		ORDER BY s.status = 'REVIEW_MODE', s.session_id DESC LIMIT 1`, code).Scan(
		&v.SessionID, &v.SessionCode, &v.Title, &v.Status, &v.Lecture.ID, &v.Lecture.Title, &desc,
		&v.Instructor.ID, &v.Instructor.Name, &v.ParticipantCount, &v.ScheduledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		web.Error(c, domain.NotFound("session"))
		return
	}
	if err != nil {
		web.Error(c, fmt.Errorf("session by code: %w", err))
		return
	}
	if q.Lookups != nil {
		if err := q.Lookups.RecordLookup(c.Request.Context(), auth.ActorFrom(c).UserID, v.SessionID); err != nil {
			web.Error(c, err)
			return
		}
	}
	v.Lecture.Description = &desc
	v.ScheduledAt = utcPtr(v.ScheduledAt)
	c.JSON(http.StatusOK, v)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

type sessionParticipant struct {
	UserID   int64     `json:"user_id"`
	Name     string    `json:"name"`
	Email    string    `json:"email"`
	Status   string    `json:"status"`
	JoinedAt time.Time `json:"joined_at"`
}

type sessionParticipants struct {
	SessionID    int64                `json:"session_id"`
	Participants []sessionParticipant `json:"participants"`
	TotalCount   int                  `json:"total_count"`
}

// participantsView is GET …/participants and the instructor socket's snapshot.
func participantsView(ctx context.Context, db sessionQuerier, sessionID int64) (sessionParticipants, error) {
	rows, err := db.Query(ctx, `SELECT p.user_id, coalesce(u.name, ''), coalesce(u.email, ''), p.status, p.joined_at
		FROM session_participants p LEFT JOIN users u ON u.id = p.user_id
		WHERE p.session_id = $1 ORDER BY p.joined_at, p.user_id`, sessionID)
	if err != nil {
		return sessionParticipants{}, fmt.Errorf("participants of session %d: %w", sessionID, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sessionParticipant, error) {
		var p sessionParticipant
		err := r.Scan(&p.UserID, &p.Name, &p.Email, &p.Status, &p.JoinedAt)
		p.JoinedAt = p.JoinedAt.UTC()
		return p, err
	})
	if err != nil {
		return sessionParticipants{}, fmt.Errorf("participants of session %d: %w", sessionID, err)
	}
	if list == nil {
		list = []sessionParticipant{}
	}
	return sessionParticipants{SessionID: sessionID, Participants: list, TotalCount: len(list)}, nil
}

// sessionView answers a GET of session :session_id with view, to the actors
// allowed lets through (FORBIDDEN with deny to the others).
func sessionView[T any](q *SessionQueries, allowed func(sessionAccess, domain.Actor) bool, deny string,
	view func(context.Context, sessionQuerier, int64) (T, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := web.IDParam(c, "session_id")
		if !ok {
			return
		}
		ctx := c.Request.Context()
		actor := auth.ActorFrom(c)
		a, err := loadSessionAccess(ctx, q.Pool, id, actor.UserID)
		if err != nil {
			web.Error(c, err)
			return
		}
		if !allowed(a, actor) {
			web.Error(c, domain.Forbidden(deny))
			return
		}
		v, err := view(ctx, q.Pool, id)
		if err != nil {
			web.Error(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

type sessionCurrent struct {
	SessionID          int64               `json:"session_id"`
	Status             string              `json:"status"`
	CurrentSubtask     *sessionSubtaskView `json:"current_subtask"`
	StartedAt          *time.Time          `json:"started_at"`
	ActiveParticipants int                 `json:"active_participants"`
	InstructorMessage  string              `json:"instructor_message"`
}

// currentView is GET …/current and the student socket's snapshot.
func currentView(ctx context.Context, db sessionQuerier, sessionID int64) (sessionCurrent, error) {
	var v sessionCurrent
	var subID *int64
	var title, guide, voice *string
	err := db.QueryRow(ctx, `SELECT s.session_id, s.status, s.current_subtask_id, s.current_title, s.current_guide_text, s.current_voice_guide,
			s.started_at, s.instructor_message,
			(SELECT count(*) FROM session_participants p WHERE p.session_id = s.session_id AND p.status = 'ACTIVE')
		FROM live_sessions s WHERE s.session_id = $1`, sessionID).Scan(
		&v.SessionID, &v.Status, &subID, &title, &guide, &voice, &v.StartedAt, &v.InstructorMessage, &v.ActiveParticipants)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, domain.NotFound("session")
	}
	if err != nil {
		return v, fmt.Errorf("current state of session %d: %w", sessionID, err)
	}
	if subID != nil {
		// The text to speak: never "" (the guide text, then the title, when
		// the subtask has no voice guide text).
		v.CurrentSubtask = &sessionSubtaskView{ID: *subID, Title: deref(title), GuideText: deref(guide),
			VoiceGuideText: domain.SpokenText(deref(voice), deref(guide), deref(title))}
	}
	v.StartedAt = utcPtr(v.StartedAt)
	return v, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// canReadCurrent: the session's participants, its instructor, ANALYST and ADMIN.
func (a sessionAccess) canReadCurrent(actor domain.Actor) bool {
	return a.owner(actor) || a.participant || actor.Role == domain.RoleAnalyst
}

type activeSession struct {
	SessionID      int64              `json:"session_id"`
	SessionCode    string             `json:"session_code"`
	Lecture        sessionLectureRef  `json:"lecture"`
	Status         string             `json:"status"`
	CurrentSubtask *sessionSubtaskRef `json:"current_subtask"`
	MyStatus       string             `json:"my_status"`
	JoinedAt       time.Time          `json:"joined_at"`
}

func (q *SessionQueries) myActive(c *gin.Context) {
	actor := auth.ActorFrom(c)
	var v activeSession
	var subID *int64
	var subTitle *string
	err := q.Pool.QueryRow(c.Request.Context(), `
		SELECT s.session_id, s.session_code, s.lecture_id, coalesce(l.title, s.lecture_title), s.status,
		       s.current_subtask_id, s.current_title, p.status, p.joined_at
		FROM session_participants p
		JOIN live_sessions s ON s.session_id = p.session_id
		LEFT JOIN session_lectures l ON l.lecture_id = s.lecture_id
		WHERE p.user_id = $1 AND s.status <> 'REVIEW_MODE'
		ORDER BY s.session_id DESC LIMIT 1`, actor.UserID).Scan(
		&v.SessionID, &v.SessionCode, &v.Lecture.ID, &v.Lecture.Title, &v.Status, &subID, &subTitle, &v.MyStatus, &v.JoinedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		// The seed's own 404 body (the one exception to the error shape).
		c.JSON(http.StatusNotFound, gin.H{"active_session": nil, "message": "참가 중인 활성 세션이 없습니다"})
		return
	}
	if err != nil {
		web.Error(c, fmt.Errorf("active session of user %d: %w", actor.UserID, err))
		return
	}
	if subID != nil {
		v.CurrentSubtask = &sessionSubtaskRef{ID: *subID, Title: deref(subTitle)}
	}
	v.JoinedAt = v.JoinedAt.UTC()
	c.JSON(http.StatusOK, gin.H{"active_session": v})
}

func (q *SessionQueries) baseURL(r *http.Request) string {
	if b, ok := web.LinkBase(r); ok { // PUBLIC_URL, or the loopback rule (web.LinkBaseMiddleware)
		return b
	}
	if q.PublicURL != "" {
		return strings.TrimRight(q.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// qrImage serves GET /qr/{code}.png: a QR code of the join link
// <base>/join/{code}, the code matched (and written in the link) as
// domain.NormalizeSessionCode gives it.
func (q *SessionQueries) qrImage(c *gin.Context) {
	code, ok := strings.CutSuffix(c.Param("file"), ".png")
	code = domain.NormalizeSessionCode(code)
	if !ok || !domain.ValidSessionCode(code) {
		web.Error(c, domain.NotFound("session"))
		return
	}
	var known bool
	err := q.Pool.QueryRow(c.Request.Context(), `SELECT EXISTS (SELECT 1 FROM live_sessions WHERE session_code = $1)
		OR EXISTS (SELECT 1 FROM session_codes WHERE code = $1)`, code).Scan(&known)
	if err != nil {
		web.Error(c, fmt.Errorf("look up session code: %w", err))
		return
	}
	if !known {
		web.Error(c, domain.NotFound("session"))
		return
	}
	img, err := qr.PNG(q.baseURL(c.Request)+"/join/"+code, qr.Size)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "image/png", img)
}

// sessionIDParam parses the :session_id of a socket path (0 when invalid).
func sessionIDParam(c *gin.Context) int64 {
	id, err := strconv.ParseInt(c.Param("session_id"), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}
