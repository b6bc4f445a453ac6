package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// LectureCache is a read-through cache of lecture and task documents (e.g.
// Redis). Get misses on any error and returns the key's generation, which
// Set gets back: Set stores the document only if the key was not
// invalidated in between (the lectures projector invalidates what each
// batch changes), so a stale read never outlives an invalidation.
type LectureCache interface {
	Get(ctx context.Context, key string) (doc []byte, generation string, ok bool)
	Set(ctx context.Context, key, generation string, doc []byte)
}

// LectureCacheKey and TaskCacheKey name the cached documents.
func LectureCacheKey(id int64) string { return "lockstep:lecture:" + strconv.FormatInt(id, 10) }

// TaskCacheKey names a cached task document.
func TaskCacheKey(id int64) string { return "lockstep:task:" + strconv.FormatInt(id, 10) }

// LectureQueries answers GET /api/lectures, GET /api/lectures/{id} and
// GET /api/tasks/{id} from the lectures projector's read models.
//
// Visibility: every authenticated user sees active lectures. An inactive
// lecture (and its tasks) is visible to its owner, ANALYST and ADMIN; to
// anyone else it does not exist (404).
type LectureQueries struct {
	Pool *pgxpool.Pool
	// Cache, when set, holds lecture and task documents.
	Cache LectureCache
}

// Routes mounts the lecture queries on r behind authed.
func (q *LectureQueries) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	r.GET("/api/lectures", authed, q.list)
	r.GET("/api/lectures/:lecture_id", authed, q.detail)
	r.GET("/api/tasks/:task_id", authed, q.task)
}

// canSeeInactiveLecture: the owner (while an INSTRUCTOR), ANALYST and ADMIN
// see inactive lectures.
func canSeeInactiveLecture(a domain.Actor, instructorID int64) bool {
	return a.Role == domain.RoleAnalyst || a.Manages(instructorID)
}

// lectureRef is the seed's {id, name} of a person.
type lectureRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type lectureListItem struct {
	ID            int64      `json:"id"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Instructor    lectureRef `json:"instructor"`
	ThumbnailURL  *string    `json:"thumbnail_url"`
	IsActive      bool       `json:"is_active"`
	EnrolledCount int        `json:"enrolled_count"`
	CreatedAt     time.Time  `json:"created_at"`
}

type lectureList struct {
	Lectures   []lectureListItem `json:"lectures"`
	Pagination web.Pagination    `json:"pagination"`
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (q *LectureQueries) list(c *gin.Context) {
	actor := auth.ActorFrom(c)
	bad := map[string]string{}
	active := true
	switch v := c.Query("is_active"); v {
	case "", "true", "1":
	case "false", "0":
		active = false
	default:
		bad["is_active"] = "must be true or false"
	}
	var instructor *int64
	if v := c.Query("instructor_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			bad["instructor_id"] = "must be a positive integer"
		}
		instructor = &id
	}
	if len(bad) > 0 {
		web.Error(c, domain.Invalid("invalid query", bad))
		return
	}
	page, ok := web.PageQuery(c)
	if !ok {
		return
	}
	// Inactive lectures: everyone's for ANALYST and ADMIN, one's own for an
	// instructor, none for anyone else (no lecture has instructor 0).
	var ownerOnly *int64
	if !active && !actor.IsAdmin() && actor.Role != domain.RoleAnalyst {
		var uid int64
		if actor.Role == domain.RoleInstructor {
			uid = actor.UserID
		}
		ownerOnly = &uid
	}
	const where = `WHERE l.is_active = $1 AND ($2::bigint IS NULL OR l.instructor_id = $2) AND ($3::bigint IS NULL OR l.instructor_id = $3)`
	ctx := c.Request.Context()
	var total int64
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM rm_lectures l `+where, active, instructor, ownerOnly).Scan(&total); err != nil {
		web.Error(c, fmt.Errorf("count lectures: %w", err))
		return
	}
	rows, err := q.Pool.Query(ctx, `SELECT l.id, l.title, l.description, l.instructor_id, COALESCE(u.name, ''), l.thumbnail_url,
			l.is_active, l.enrolled_count, l.created_at
		FROM rm_lectures l LEFT JOIN users u ON u.id = l.instructor_id `+where+`
		ORDER BY l.id DESC LIMIT $4 OFFSET $5`, active, instructor, ownerOnly, page.PageSize, page.Offset())
	if err != nil {
		web.Error(c, fmt.Errorf("list lectures: %w", err))
		return
	}
	defer rows.Close()
	out := lectureList{Lectures: []lectureListItem{}, Pagination: page.Of(total)}
	for rows.Next() {
		var it lectureListItem
		var thumb string
		if err := rows.Scan(&it.ID, &it.Title, &it.Description, &it.Instructor.ID, &it.Instructor.Name, &thumb,
			&it.IsActive, &it.EnrolledCount, &it.CreatedAt); err != nil {
			web.Error(c, fmt.Errorf("scan lecture: %w", err))
			return
		}
		it.ThumbnailURL = nonEmpty(thumb)
		it.CreatedAt = it.CreatedAt.UTC()
		out.Lectures = append(out.Lectures, it)
	}
	if err := rows.Err(); err != nil {
		web.Error(c, fmt.Errorf("list lectures: %w", err))
		return
	}
	c.JSON(http.StatusOK, out)
}

type lectureTaskItem struct {
	ID          int64  `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	OrderIndex  int    `json:"order_index"`
}

type lectureDetail struct {
	ID            int64             `json:"id"`
	Title         string            `json:"title"`
	Description   string            `json:"description"`
	Instructor    lectureRef        `json:"instructor"`
	ThumbnailURL  *string           `json:"thumbnail_url"`
	IsActive      bool              `json:"is_active"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	Tasks         []lectureTaskItem `json:"tasks"`
	EnrolledCount int               `json:"enrolled_count"`
}

func (q *LectureQueries) detail(c *gin.Context) {
	id, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	d, err := q.lecture(c.Request.Context(), id)
	if err == nil && !d.IsActive && !canSeeInactiveLecture(auth.ActorFrom(c), d.Instructor.ID) {
		err = domain.NotFound("lecture")
	}
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, d)
}

// cached reads key from the cache, else loads and stores it.
func cached[T any](ctx context.Context, cache LectureCache, key string, load func() (T, error)) (T, error) {
	var gen string
	if cache != nil {
		var data []byte
		var ok bool
		if data, gen, ok = cache.Get(ctx, key); ok {
			var v T
			if json.Unmarshal(data, &v) == nil {
				return v, nil
			}
		}
	}
	v, err := load()
	if err != nil || cache == nil {
		return v, err
	}
	if data, err := json.Marshal(v); err == nil {
		cache.Set(ctx, key, gen, data)
	}
	return v, nil
}

// lecture returns lecture id's document (NOT_FOUND if none), whatever its
// visibility: callers apply canSeeInactiveLecture.
func (q *LectureQueries) lecture(ctx context.Context, id int64) (lectureDetail, error) {
	return cached(ctx, q.Cache, LectureCacheKey(id), func() (lectureDetail, error) { return q.loadLecture(ctx, id) })
}

func (q *LectureQueries) loadLecture(ctx context.Context, id int64) (lectureDetail, error) {
	var d lectureDetail
	var thumb string
	err := q.Pool.QueryRow(ctx, `SELECT l.id, l.title, l.description, l.instructor_id, COALESCE(u.name, ''), l.thumbnail_url,
			l.is_active, l.created_at, l.updated_at, l.enrolled_count
		FROM rm_lectures l LEFT JOIN users u ON u.id = l.instructor_id WHERE l.id = $1`, id).
		Scan(&d.ID, &d.Title, &d.Description, &d.Instructor.ID, &d.Instructor.Name, &thumb, &d.IsActive, &d.CreatedAt, &d.UpdatedAt, &d.EnrolledCount)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, domain.NotFound("lecture")
	}
	if err != nil {
		return d, fmt.Errorf("load lecture %d: %w", id, err)
	}
	d.ThumbnailURL = nonEmpty(thumb)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	rows, err := q.Pool.Query(ctx, `SELECT id, title, description, order_index FROM rm_lecture_tasks WHERE lecture_id = $1 ORDER BY order_index, id`, id)
	if err != nil {
		return d, fmt.Errorf("load tasks of lecture %d: %w", id, err)
	}
	d.Tasks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (lectureTaskItem, error) {
		var t lectureTaskItem
		err := r.Scan(&t.ID, &t.Title, &t.Description, &t.OrderIndex)
		return t, err
	})
	if err != nil {
		return d, fmt.Errorf("load tasks of lecture %d: %w", id, err)
	}
	if d.Tasks == nil {
		d.Tasks = []lectureTaskItem{}
	}
	return d, nil
}

type taskSubtaskItem struct {
	ID                int64  `json:"id"`
	Title             string `json:"title"`
	Description       string `json:"description"`
	OrderIndex        int    `json:"order_index"`
	TargetAction      string `json:"target_action"`
	TargetElementHint string `json:"target_element_hint"`
	GuideText         string `json:"guide_text"`
	VoiceGuideText    string `json:"voice_guide_text"`
}

type taskDetail struct {
	ID          int64             `json:"id"`
	LectureID   int64             `json:"lecture_id"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	OrderIndex  int               `json:"order_index"`
	Subtasks    []taskSubtaskItem `json:"subtasks"`
}

// cachedTask is a task document with what its visibility depends on.
type cachedTask struct {
	Task          taskDetail `json:"task"`
	LectureActive bool       `json:"lecture_active"`
	LectureOwner  int64      `json:"lecture_owner"`
}

func (q *LectureQueries) task(c *gin.Context) {
	id, ok := web.IDParam(c, "task_id")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	t, err := cached(ctx, q.Cache, TaskCacheKey(id), func() (cachedTask, error) { return q.loadTask(ctx, id) })
	if err == nil && !t.LectureActive && !canSeeInactiveLecture(auth.ActorFrom(c), t.LectureOwner) {
		err = domain.NotFound("task")
	}
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, t.Task)
}

func (q *LectureQueries) loadTask(ctx context.Context, id int64) (cachedTask, error) {
	var t cachedTask
	err := q.Pool.QueryRow(ctx, `SELECT t.id, t.lecture_id, t.title, t.description, t.order_index, l.is_active, l.instructor_id
		FROM rm_lecture_tasks t JOIN rm_lectures l ON l.id = t.lecture_id WHERE t.id = $1`, id).
		Scan(&t.Task.ID, &t.Task.LectureID, &t.Task.Title, &t.Task.Description, &t.Task.OrderIndex, &t.LectureActive, &t.LectureOwner)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, domain.NotFound("task")
	}
	if err != nil {
		return t, fmt.Errorf("load task %d: %w", id, err)
	}
	rows, err := q.Pool.Query(ctx, `SELECT id, title, description, order_index, target_action, target_element_hint, guide_text, voice_guide_text
		FROM rm_lecture_subtasks WHERE task_id = $1 AND NOT removed ORDER BY order_index, id`, id)
	if err != nil {
		return t, fmt.Errorf("load subtasks of task %d: %w", id, err)
	}
	t.Task.Subtasks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (taskSubtaskItem, error) {
		var s taskSubtaskItem
		err := r.Scan(&s.ID, &s.Title, &s.Description, &s.OrderIndex, &s.TargetAction, &s.TargetElementHint, &s.GuideText, &s.VoiceGuideText)
		return s, err
	})
	if err != nil {
		return t, fmt.Errorf("load subtasks of task %d: %w", id, err)
	}
	if t.Task.Subtasks == nil {
		t.Task.Subtasks = []taskSubtaskItem{}
	}
	return t, nil
}
