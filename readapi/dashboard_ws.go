package readapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
)

// dashboardSnapshotStudents caps the students the socket's snapshot lists.
const dashboardSnapshotStudents = 1000

// lectureSocket serves WS /ws/dashboard/lecture/{lecture_id}/: the lecture's
// owner, ANALYST or ADMIN get, on connect, {"type": "dashboard_state",
// "data": {"lecture_id", "students": [… as GET …/students, up to 1000],
// "pending_requests": [… the lecture's open help requests, oldest first]}},
// then progress_update, help_request and student_activity messages, each
// with "position"; ?after= resumes without a snapshot. A bad token closes
// with 4401, another role or instructor with 4403, an unknown lecture 4404.
func (q *DashboardQueries) lectureSocket(c *gin.Context) {
	g := live.Gate{Hub: q.Hub, Tokens: q.Tokens, Log: q.logger(), Name: "dashboard socket"}
	actor, opts, ok := g.Accept(c)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(c.Param("lecture_id"), 10, 64)
	if err != nil || id <= 0 {
		g.Reject(c, live.CloseNotFound, "lecture not found")
		return
	}
	if _, err := dashboardLecture(c.Request.Context(), q.Pool, actor, id); err != nil {
		switch {
		case errors.Is(err, domain.ErrNotFound):
			g.Reject(c, live.CloseNotFound, "lecture not found")
		case errors.Is(err, domain.ErrForbidden):
			g.Reject(c, live.CloseForbidden, "only the lecture's instructor, analysts and admins may connect")
		default:
			q.logger().Error("dashboard socket: load lecture", "lecture_id", id, "error", err)
			c.AbortWithStatus(http.StatusInternalServerError)
		}
		return
	}
	snapshot := live.Snapshot("dashboard_state", func(ctx context.Context, tx pgx.Tx) (any, error) {
		l, err := dashboardLecture(ctx, tx, actor, id)
		if err != nil {
			return nil, err
		}
		students, err := dashStudents(ctx, tx, l, dashboardSnapshotStudents, 0)
		if err != nil {
			return nil, err
		}
		rows, err := tx.Query(ctx, dashPendingColumns+`WHERE h.lecture_id = $1 ORDER BY h.requested_at, h.help_request_id LIMIT 1000`, id)
		if err != nil {
			return nil, err
		}
		pending, err := scanPending(rows)
		if err != nil {
			return nil, err
		}
		return gin.H{"lecture_id": id, "students": students, "pending_requests": pending}, nil
	})
	g.Serve(c, opts.Follow(q.Channel(id), "dashboard", q.Producer, snapshot), "lecture_id", id)
}
