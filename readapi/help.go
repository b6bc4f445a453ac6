package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
	"github.com/lockstep/lockstep/web"
)

// HelpQueries answers GET /api/help/request/{id}, the notifications
// endpoints and the help sockets (/ws/dashboard/help-requests/,
// /ws/help/{user_id}) from the help projector's read models.
type HelpQueries struct {
	Pool *pgxpool.Pool
	// Hub serves the sockets; Tokens authenticates them.
	Hub    *live.Hub
	Tokens TokenVerifier
	// Producer is the projector whose checkpoint the sockets' snapshots reflect.
	Producer string
	// InstructorChannel and UserChannel name the help sockets' channels.
	InstructorChannel func(instructorID int64) string
	UserChannel       func(userID int64) string
	Logger            *slog.Logger
}

// Routes mounts the help and notification queries and sockets on r.
func (q *HelpQueries) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	r.GET("/api/help/request/:help_request_id", authed, q.helpRequest)
	r.GET("/api/notifications", authed, q.notifications)
	r.POST("/api/notifications/:notification_id/read", authed, q.markRead)
	for _, p := range []string{"/ws/dashboard/help-requests", "/ws/dashboard/help-requests/"} {
		r.GET(p, q.instructorHelpSocket)
	}
	for _, p := range []string{"/ws/help/:user_id", "/ws/help/:user_id/"} {
		r.GET(p, q.studentHelpSocket)
	}
}

func (q *HelpQueries) logger() *slog.Logger {
	if q.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return q.Logger
}

// helpRequestView is GET /api/help/request/{id}: the seed's shape plus the
// request's own fields, the response's id and responder, and its feedback.
type helpRequestView struct {
	HelpRequestID        int64             `json:"help_request_id"`
	Status               string            `json:"status"`
	UserID               int64             `json:"user_id"`
	LectureID            int64             `json:"lecture_id"`
	Subtask              helpSubtaskRef    `json:"subtask"`
	SessionID            *int64            `json:"session_id"`
	RequestType          string            `json:"request_type"`
	ContextData          json.RawMessage   `json:"context_data"`
	StuckDurationSeconds int               `json:"stuck_duration_seconds"`
	EscalationReason     *string           `json:"escalation_reason"`
	CreatedAt            time.Time         `json:"created_at"`
	ResolvedAt           *time.Time        `json:"resolved_at"`
	HelpResponse         *helpResponseView `json:"help_response"`
	Analysis             *helpAnalysisView `json:"analysis"`
}

type helpSubtaskRef struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

type helpResponseView struct {
	ID             int64             `json:"id"`
	HelpType       string            `json:"help_type"`
	HelpContent    string            `json:"help_content"`
	VoiceGuideText string            `json:"voice_guide_text"`
	Responder      string            `json:"responder"`
	ResponderID    *int64            `json:"responder_id"`
	ProvidedAt     time.Time         `json:"provided_at"`
	Feedback       *helpFeedbackView `json:"feedback"`
}

type helpFeedbackView struct {
	Rating       int        `json:"rating"`
	FeedbackText string     `json:"feedback_text"`
	CreatedAt    *time.Time `json:"created_at"`
}

type helpAnalysisView struct {
	ProblemDiagnosis string  `json:"problem_diagnosis"`
	ConfidenceScore  float64 `json:"confidence_score"`
}

// canSeeHelpRequest: the student who asked, the lecture's instructor, ANALYST and ADMIN.
func canSeeHelpRequest(a domain.Actor, userID, instructorID int64) bool {
	return a.Role == domain.RoleAnalyst || a.Manages(instructorID) || (a.UserID != 0 && a.UserID == userID)
}

func (q *HelpQueries) helpRequest(c *gin.Context) {
	id, ok := web.IDParam(c, "help_request_id")
	if !ok {
		return
	}
	v, instructorID, err := loadHelpRequest(c.Request.Context(), q.Pool, id)
	if err != nil {
		web.Error(c, err)
		return
	}
	if !canSeeHelpRequest(auth.ActorFrom(c), v.UserID, instructorID) {
		web.Error(c, domain.Forbidden("only the student who asked, the lecture's instructor, analysts and admins see a help request"))
		return
	}
	c.JSON(http.StatusOK, v)
}

type helpQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func loadHelpRequest(ctx context.Context, db helpQuerier, id int64) (helpRequestView, int64, error) {
	var v helpRequestView
	var instructorID int64
	var ctxData *string
	var reason string
	var diagnosis *string
	var confidence *float64
	err := db.QueryRow(ctx, `SELECT id, status, user_id, lecture_id, instructor_id, subtask_id, subtask_title, session_id, request_type,
			context_data::text, stuck_duration_seconds, escalation_reason, requested_at, resolved_at, problem_diagnosis, confidence_score
		FROM rm_help_requests WHERE id = $1`, id).Scan(&v.HelpRequestID, &v.Status, &v.UserID, &v.LectureID, &instructorID,
		&v.Subtask.ID, &v.Subtask.Title, &v.SessionID, &v.RequestType, &ctxData, &v.StuckDurationSeconds, &reason,
		&v.CreatedAt, &v.ResolvedAt, &diagnosis, &confidence)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, 0, domain.NotFound("help request")
	}
	if err != nil {
		return v, 0, fmt.Errorf("load help request %d: %w", id, err)
	}
	v.CreatedAt = v.CreatedAt.UTC()
	v.ResolvedAt = helpUTCPtr(v.ResolvedAt)
	if ctxData != nil {
		v.ContextData = json.RawMessage(*ctxData)
	}
	if reason != "" {
		v.EscalationReason = &reason
	}
	if diagnosis != nil && confidence != nil {
		v.Analysis = &helpAnalysisView{ProblemDiagnosis: *diagnosis, ConfidenceScore: *confidence}
	}
	var r helpResponseView
	var rating *int
	var text *string
	var fbAt *time.Time
	err = db.QueryRow(ctx, `SELECT id, help_type, help_content, voice_guide_text, responder, responder_id, provided_at, rating, feedback_text, feedback_at
		FROM rm_help_responses WHERE help_request_id = $1 ORDER BY provided_at DESC, id DESC LIMIT 1`, id).Scan(
		&r.ID, &r.HelpType, &r.HelpContent, &r.VoiceGuideText, &r.Responder, &r.ResponderID, &r.ProvidedAt, &rating, &text, &fbAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return v, 0, fmt.Errorf("load the response of help request %d: %w", id, err)
	default:
		r.ProvidedAt = r.ProvidedAt.UTC()
		r.VoiceGuideText = domain.SpokenText(r.VoiceGuideText, r.HelpContent, "")
		if rating != nil {
			r.Feedback = &helpFeedbackView{Rating: *rating, CreatedAt: helpUTCPtr(fbAt)}
			if text != nil {
				r.Feedback.FeedbackText = *text
			}
		}
		v.HelpResponse = &r
	}
	return v, instructorID, nil
}

func helpUTCPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
