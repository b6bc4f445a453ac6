package readapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// ProgressQueries answers GET /api/progress/me and
// GET /api/progress/users/{user_id}/lectures/{lecture_id} from the lectures
// projector's read models.
type ProgressQueries struct {
	Pool *pgxpool.Pool
}

// Routes mounts the progress queries on r behind authed.
func (q *ProgressQueries) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	r.GET("/api/progress/me", authed, q.me)
	r.GET("/api/progress/users/:user_id/lectures/:lecture_id", authed, q.ofUser)
}

type progressCurrentSubtask struct {
	ID        int64                 `json:"id"`
	TaskID    int64                 `json:"task_id"`
	Title     string                `json:"title"`
	GuideText string                `json:"guide_text"`
	Status    domain.ProgressStatus `json:"status"`
}

type progressSummary struct {
	CompletedSubtasks int     `json:"completed_subtasks"`
	TotalSubtasks     int     `json:"total_subtasks"`
	CompletionRate    float64 `json:"completion_rate"`
}

type progressMe struct {
	LectureID       int64                   `json:"lecture_id"`
	CurrentSubtask  *progressCurrentSubtask `json:"current_subtask"`
	ProgressSummary progressSummary         `json:"progress_summary"`
}

// me answers the caller's progress in one lecture: lecture_id, or when it is
// absent the lecture of the caller's most recent activity (enrollment or
// progress). Not enrolled → 404. The current subtask is the one the student
// started most recently and has not completed; else the first live subtask
// in lecture order they have not completed; null when none is left. Totals
// count the live plan (removed subtasks are not counted).
func (q *ProgressQueries) me(c *gin.Context) {
	actor := auth.ActorFrom(c)
	ctx := c.Request.Context()
	var lectureID int64
	if v := c.Query("lecture_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			web.Error(c, domain.Invalid("invalid query", map[string]string{"lecture_id": "must be a positive integer"}))
			return
		}
		lectureID = id
		var exists bool
		if err := q.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rm_lectures WHERE id = $1)`, id).Scan(&exists); err != nil {
			web.Error(c, fmt.Errorf("lecture exists: %w", err))
			return
		}
		if !exists {
			web.Error(c, domain.NotFound("lecture"))
			return
		}
		var enrolled bool
		if err := q.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rm_enrollments WHERE lecture_id = $1 AND user_id = $2)`, id, actor.UserID).Scan(&enrolled); err != nil {
			web.Error(c, fmt.Errorf("enrollment exists: %w", err))
			return
		}
		if !enrolled {
			web.Error(c, domain.Errorf(domain.CodeNotFound, "enrollment not found: you are not enrolled in lecture %d", id))
			return
		}
	} else {
		err := q.Pool.QueryRow(ctx, `SELECT lecture_id FROM rm_enrollments WHERE user_id = $1 ORDER BY last_activity DESC, enrollment_id DESC LIMIT 1`, actor.UserID).Scan(&lectureID)
		if errors.Is(err, pgx.ErrNoRows) {
			web.Error(c, domain.Errorf(domain.CodeNotFound, "enrollment not found: you are not enrolled in any lecture"))
			return
		}
		if err != nil {
			web.Error(c, fmt.Errorf("latest enrollment: %w", err))
			return
		}
	}
	out, err := q.summary(ctx, lectureID, actor.UserID)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (q *ProgressQueries) summary(ctx context.Context, lectureID, userID int64) (progressMe, error) {
	rows, err := q.Pool.Query(ctx, `SELECT s.id, s.task_id, s.title, s.guide_text, COALESCE(p.status, 'NOT_STARTED'), p.started_at
		FROM rm_lecture_subtasks s
		JOIN rm_lecture_tasks t ON t.id = s.task_id
		LEFT JOIN rm_subtask_progress p ON p.lecture_id = s.lecture_id AND p.user_id = $2 AND p.subtask_id = s.id
		WHERE s.lecture_id = $1 AND NOT s.removed
		ORDER BY t.order_index, t.id, s.order_index, s.id`, lectureID, userID)
	if err != nil {
		return progressMe{}, fmt.Errorf("progress of user %d in lecture %d: %w", userID, lectureID, err)
	}
	defer rows.Close()
	out := progressMe{LectureID: lectureID}
	var firstOpen, latestStarted *progressCurrentSubtask
	var latestAt time.Time
	for rows.Next() {
		var s progressCurrentSubtask
		var started *time.Time
		if err := rows.Scan(&s.ID, &s.TaskID, &s.Title, &s.GuideText, &s.Status, &started); err != nil {
			return progressMe{}, fmt.Errorf("scan progress: %w", err)
		}
		out.ProgressSummary.TotalSubtasks++
		switch s.Status {
		case domain.ProgressStatusCompleted:
			out.ProgressSummary.CompletedSubtasks++
		case domain.ProgressStatusInProgress:
			if latestStarted == nil || (started != nil && started.After(latestAt)) {
				latestStarted = &s
				if started != nil {
					latestAt = *started
				}
			}
		}
		if firstOpen == nil && s.Status != domain.ProgressStatusCompleted {
			firstOpen = &s
		}
	}
	if err := rows.Err(); err != nil {
		return progressMe{}, fmt.Errorf("progress of user %d in lecture %d: %w", userID, lectureID, err)
	}
	out.CurrentSubtask = firstOpen
	if latestStarted != nil {
		out.CurrentSubtask = latestStarted
	}
	if n := out.ProgressSummary.TotalSubtasks; n > 0 {
		out.ProgressSummary.CompletionRate = math.Round(float64(out.ProgressSummary.CompletedSubtasks)/float64(n)*10000) / 10000
	}
	return out, nil
}

type progressEntry struct {
	SubtaskID    int64                 `json:"subtask_id"`
	TaskID       int64                 `json:"task_id"`
	TaskTitle    string                `json:"task_title"`
	SubtaskTitle string                `json:"subtask_title"`
	Status       domain.ProgressStatus `json:"status"`
	StartedAt    *time.Time            `json:"started_at,omitempty"`
	CompletedAt  *time.Time            `json:"completed_at,omitempty"`
}

type progressOfUser struct {
	User     lectureRef      `json:"user"`
	Lecture  progressLecture `json:"lecture"`
	Progress []progressEntry `json:"progress"`
}

type progressLecture struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

// ofUser answers one student's progress history in one lecture: every
// subtask they started or completed (removed subtasks included), in lecture
// order. Allowed: the lecture's owner, the student themself, ANALYST, ADMIN
// (else 403). Unknown lecture or user, or a user not enrolled → 404.
func (q *ProgressQueries) ofUser(c *gin.Context) {
	userID, ok := web.IDParam(c, "user_id")
	if !ok {
		return
	}
	lectureID, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	actor := auth.ActorFrom(c)
	var out progressOfUser
	var owner int64
	err := q.Pool.QueryRow(ctx, `SELECT id, title, instructor_id FROM rm_lectures WHERE id = $1`, lectureID).Scan(&out.Lecture.ID, &out.Lecture.Title, &owner)
	if errors.Is(err, pgx.ErrNoRows) {
		web.Error(c, domain.NotFound("lecture"))
		return
	}
	if err != nil {
		web.Error(c, fmt.Errorf("load lecture %d: %w", lectureID, err))
		return
	}
	if actor.Role != domain.RoleAnalyst && !actor.Manages(owner) && actor.UserID != userID {
		web.Error(c, domain.Forbidden("only the lecture's instructor, the student, analysts and admins see this progress"))
		return
	}
	err = q.Pool.QueryRow(ctx, `SELECT id, name FROM users WHERE id = $1`, userID).Scan(&out.User.ID, &out.User.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		web.Error(c, domain.NotFound("user"))
		return
	}
	if err != nil {
		web.Error(c, fmt.Errorf("load user %d: %w", userID, err))
		return
	}
	var enrolled bool
	if err := q.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rm_enrollments WHERE lecture_id = $1 AND user_id = $2)`, lectureID, userID).Scan(&enrolled); err != nil {
		web.Error(c, fmt.Errorf("enrollment exists: %w", err))
		return
	}
	if !enrolled {
		web.Error(c, domain.Errorf(domain.CodeNotFound, "enrollment not found: user %d is not enrolled in lecture %d", userID, lectureID))
		return
	}
	rows, err := q.Pool.Query(ctx, `SELECT p.subtask_id, p.task_id, COALESCE(t.title, ''), COALESCE(s.title, p.subtask_title), p.status, p.started_at, p.completed_at
		FROM rm_subtask_progress p
		LEFT JOIN rm_lecture_tasks t ON t.id = p.task_id
		LEFT JOIN rm_lecture_subtasks s ON s.id = p.subtask_id
		WHERE p.lecture_id = $1 AND p.user_id = $2
		ORDER BY t.order_index, t.id, s.order_index, p.subtask_id`, lectureID, userID)
	if err != nil {
		web.Error(c, fmt.Errorf("progress history: %w", err))
		return
	}
	out.Progress, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (progressEntry, error) {
		var e progressEntry
		err := r.Scan(&e.SubtaskID, &e.TaskID, &e.TaskTitle, &e.SubtaskTitle, &e.Status, &e.StartedAt, &e.CompletedAt)
		if e.StartedAt != nil {
			*e.StartedAt = e.StartedAt.UTC()
		}
		if e.CompletedAt != nil {
			*e.CompletedAt = e.CompletedAt.UTC()
		}
		return e, err
	})
	if err != nil {
		web.Error(c, fmt.Errorf("progress history: %w", err))
		return
	}
	if out.Progress == nil {
		out.Progress = []progressEntry{}
	}
	c.JSON(http.StatusOK, out)
}
