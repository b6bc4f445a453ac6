package readapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

type notificationUser struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type notificationView struct {
	ID            int64             `json:"id"`
	Type          string            `json:"type"`
	Message       string            `json:"message"`
	RelatedUser   *notificationUser `json:"related_user"`
	HelpRequestID *int64            `json:"help_request_id"`
	IsRead        bool              `json:"is_read"`
	CreatedAt     time.Time         `json:"created_at"`
}

type notificationList struct {
	Notifications []notificationView `json:"notifications"`
	UnreadCount   int64              `json:"unread_count"`
	Pagination    web.Pagination     `json:"pagination"`
}

const notificationColumns = `n.id, n.type, n.message, n.related_user_id, n.related_user_name, n.help_request_id, r.notification_id IS NOT NULL, n.created_at`

func scanNotification(row pgx.Row) (notificationView, error) {
	var v notificationView
	var relID *int64
	var relName *string
	err := row.Scan(&v.ID, &v.Type, &v.Message, &relID, &relName, &v.HelpRequestID, &v.IsRead, &v.CreatedAt)
	if relID != nil {
		v.RelatedUser = &notificationUser{ID: *relID}
		if relName != nil {
			v.RelatedUser.Name = *relName
		}
	}
	v.CreatedAt = v.CreatedAt.UTC()
	return v, err
}

// notifications serves GET /api/notifications: the caller's notifications,
// newest first, paginated, with the number of unread ones. ?is_read=false
// (or true) filters.
func (q *HelpQueries) notifications(c *gin.Context) {
	page, ok := web.PageQuery(c)
	if !ok {
		return
	}
	var filter *bool
	switch c.Query("is_read") {
	case "":
	case "true":
		t := true
		filter = &t
	case "false":
		f := false
		filter = &f
	default:
		web.Error(c, domain.Invalid("invalid filter", map[string]string{"is_read": "must be true or false"}))
		return
	}
	user := auth.ActorFrom(c).UserID
	ctx := c.Request.Context()
	var total, unread int64
	err := q.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE $2::boolean IS NULL OR (r.notification_id IS NOT NULL) = $2),
			count(*) FILTER (WHERE r.notification_id IS NULL)
		FROM rm_notifications n LEFT JOIN notification_reads r ON r.notification_id = n.id
		WHERE n.user_id = $1`, user, filter).Scan(&total, &unread)
	if err != nil {
		web.Error(c, fmt.Errorf("count notifications: %w", err))
		return
	}
	rows, err := q.Pool.Query(ctx, `SELECT `+notificationColumns+`
		FROM rm_notifications n LEFT JOIN notification_reads r ON r.notification_id = n.id
		WHERE n.user_id = $1 AND ($2::boolean IS NULL OR (r.notification_id IS NOT NULL) = $2)
		ORDER BY n.created_at DESC, n.id DESC LIMIT $3 OFFSET $4`, user, filter, page.PageSize, page.Offset())
	if err != nil {
		web.Error(c, fmt.Errorf("list notifications: %w", err))
		return
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notificationView, error) { return scanNotification(r) })
	if err != nil {
		web.Error(c, fmt.Errorf("list notifications: %w", err))
		return
	}
	if list == nil {
		list = []notificationView{}
	}
	c.JSON(http.StatusOK, notificationList{Notifications: list, UnreadCount: unread, Pagination: page.Of(total)})
}

// markRead serves POST /api/notifications/{id}/read: idempotent (200 with
// the notification, read); another user's or an unknown notification → 404.
func (q *HelpQueries) markRead(c *gin.Context) {
	id, ok := web.IDParam(c, "notification_id")
	if !ok {
		return
	}
	user := auth.ActorFrom(c).UserID
	ctx := c.Request.Context()
	var v notificationView
	err := pgx.BeginFunc(ctx, q.Pool, func(tx pgx.Tx) error {
		var owner int64
		err := tx.QueryRow(ctx, `SELECT user_id FROM rm_notifications WHERE id = $1`, id).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != user) {
			return domain.NotFound("notification")
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO notification_reads (notification_id, user_id) VALUES ($1, $2) ON CONFLICT (notification_id) DO NOTHING`, id, user); err != nil {
			return err
		}
		v, err = scanNotification(tx.QueryRow(ctx, `SELECT `+notificationColumns+`
			FROM rm_notifications n LEFT JOIN notification_reads r ON r.notification_id = n.id WHERE n.id = $1`, id))
		return err
	})
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}
