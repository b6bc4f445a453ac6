package readapi

import (
	"context"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
)

func (q *HelpQueries) gate(name string) live.Gate {
	return live.Gate{Hub: q.Hub, Tokens: q.Tokens, Log: q.logger(), Name: name}
}

type pendingHelpRequest struct {
	HelpRequestID        int64          `json:"help_request_id"`
	Lecture              helpSubtaskRef `json:"lecture"`
	UserRef              helpUserRef    `json:"user"`
	Subtask              helpSubtaskRef `json:"subtask"`
	RequestType          string         `json:"request_type"`
	Status               string         `json:"status"`
	SessionID            *int64         `json:"session_id"`
	StuckDurationSeconds int            `json:"stuck_duration_seconds"`
	CreatedAt            time.Time      `json:"created_at"`
}

type helpUserRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// instructorHelpSocket serves WS /ws/dashboard/help-requests/: an
// instructor (or an admin) gets, on connect, {"type": "help_requests",
// "data": {"pending_requests": […]}} — the open (ANALYZING or ESCALATED)
// requests of their lectures, newest first, at most 100 — then
// new_help_request and help_request_updated for every request of their
// lectures. Other roles: 4403.
func (q *HelpQueries) instructorHelpSocket(c *gin.Context) {
	g := q.gate("instructor help socket")
	actor, opts, ok := g.Accept(c)
	if !ok {
		return
	}
	if actor.Role != domain.RoleInstructor && !actor.IsAdmin() {
		g.Reject(c, live.CloseForbidden, "only instructors receive help requests")
		return
	}
	snapshot := live.Snapshot("help_requests", func(ctx context.Context, tx pgx.Tx) (any, error) {
		rows, err := tx.Query(ctx, `SELECT h.id, h.lecture_id, coalesce(l.title, ''), h.user_id, coalesce(u.name, ''), h.subtask_id, h.subtask_title,
					h.request_type, h.status, h.session_id, h.stuck_duration_seconds, h.requested_at
				FROM rm_help_requests h LEFT JOIN rm_help_lectures l USING (lecture_id) LEFT JOIN users u ON u.id = h.user_id
				WHERE h.instructor_id = $1 AND h.status IN ('ANALYZING', 'ESCALATED')
				ORDER BY h.requested_at DESC, h.id DESC LIMIT 100`, actor.UserID)
		if err != nil {
			return nil, err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingHelpRequest, error) {
			var p pendingHelpRequest
			err := r.Scan(&p.HelpRequestID, &p.Lecture.ID, &p.Lecture.Title, &p.UserRef.ID, &p.UserRef.Name, &p.Subtask.ID, &p.Subtask.Title,
				&p.RequestType, &p.Status, &p.SessionID, &p.StuckDurationSeconds, &p.CreatedAt)
			p.CreatedAt = p.CreatedAt.UTC()
			return p, err
		})
		if err != nil {
			return nil, err
		}
		if list == nil {
			list = []pendingHelpRequest{}
		}
		return gin.H{"pending_requests": list}, nil
	})
	g.Serve(c, opts.Follow(q.InstructorChannel(actor.UserID), "help_instructor", q.Producer, snapshot))
}

type studentHelpStatus struct {
	HelpRequestID int64          `json:"help_request_id"`
	Subtask       helpSubtaskRef `json:"subtask"`
	Status        string         `json:"status"`
	CreatedAt     time.Time      `json:"created_at"`
}

// studentHelpSocket serves WS /ws/help/{user_id}: that student alone (anyone
// else: 4403) gets, on connect, {"type": "help_status", "data":
// {"open_requests": […]}} — their requests still waiting for help — then
// HELP_AVAILABLE whenever help arrives.
func (q *HelpQueries) studentHelpSocket(c *gin.Context) {
	g := q.gate("student help socket")
	actor, opts, ok := g.Accept(c)
	if !ok {
		return
	}
	userID, err := strconv.ParseInt(c.Param("user_id"), 10, 64)
	if err != nil || userID <= 0 || userID != actor.UserID {
		g.Reject(c, live.CloseForbidden, "only that student receives their help")
		return
	}
	snapshot := live.Snapshot("help_status", func(ctx context.Context, tx pgx.Tx) (any, error) {
		rows, err := tx.Query(ctx, `SELECT id, subtask_id, subtask_title, status, requested_at FROM rm_help_requests
				WHERE user_id = $1 AND status IN ('ANALYZING', 'ESCALATED') ORDER BY requested_at DESC, id DESC LIMIT 100`, userID)
		if err != nil {
			return nil, err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (studentHelpStatus, error) {
			var s studentHelpStatus
			err := r.Scan(&s.HelpRequestID, &s.Subtask.ID, &s.Subtask.Title, &s.Status, &s.CreatedAt)
			s.CreatedAt = s.CreatedAt.UTC()
			return s, err
		})
		if err != nil {
			return nil, err
		}
		if list == nil {
			list = []studentHelpStatus{}
		}
		return gin.H{"open_requests": list}, nil
	})
	g.Serve(c, opts.Follow(q.UserChannel(userID), "help_student", q.Producer, snapshot), "user_id", userID)
}
