package readapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
	"github.com/lockstep/lockstep/web"
)

// DashboardQueries answers the instructor dashboards (seed section 8) and
// the lecture dashboard socket from the dashboard projector's read models
// (dash_* tables); every answer is a handful of indexed reads.
//
// Access: a lecture's owner, ANALYST and ADMIN; other roles and other
// instructors 403; an unknown lecture 404. The pending help requests are the
// caller's lectures' (every lecture's for ANALYST and ADMIN).
//
// Definitions the seed leaves open:
//   - progress_rate = completed live subtasks / live subtasks, rounded to 4
//     decimals (0 when the lecture has no subtasks); average_progress_rate is
//     the mean over enrolled students, rounded the same way.
//   - progress_distribution buckets a student's percentage p = 100 ×
//     completed / total: "0-25%" p ≤ 25, "26-50%" 25 < p ≤ 50, "51-75%"
//     50 < p ≤ 75, "76-100%" p > 75 (exact integer comparisons; no subtasks
//     → p = 0).
//   - average_completion_time_minutes: over the students who completed every
//     live subtask, from their first progress (first SubtaskStarted, or
//     SubtaskCompleted when they never started one) to their latest
//     completion, averaged, rounded to whole minutes; null when none did.
//   - common_difficulties: up to 10 subtasks with help requests, most
//     requested first (then by id); average_stuck_time_seconds rounded to
//     whole seconds, null when no stuck time was measured (see
//     projections.Dashboard for how it is measured).
//   - daily_activity: the days (UTC dates) with an active student or a help
//     request, oldest first, at most the latest 90.
//   - last_activity: the student's latest act in the lecture (enrollment,
//     progress, manual help request, joining a session), or their latest
//     activity log in one of the lecture's sessions or on one of its
//     subtasks when that is later.
//   - progress-trend: the `days` UTC days ending today (the UTC date of the
//     request), oldest first; "평균 진행률" is the average progress in
//     percent (one decimal) as of the end of each day — the day's last
//     snapshot, or the previous day's when nothing happened that day (0
//     before any student enrolled); "도움 요청 수" counts the day's help
//     requests (MANUAL and AUTO), 0 on days without any.
type DashboardQueries struct {
	Pool *pgxpool.Pool
	// Hub serves the lecture dashboard socket; Tokens authenticates it.
	Hub    *live.Hub
	Tokens TokenVerifier
	// Producer is the projector whose checkpoint the socket's snapshot reflects.
	Producer string
	// Channel names a lecture's dashboard channel.
	Channel func(lectureID int64) string
	// Now is the clock that says which day is today (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Routes mounts the dashboard queries and the lecture dashboard socket on r.
func (q *DashboardQueries) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	staff := auth.Require(domain.RoleInstructor, domain.RoleAnalyst)
	r.GET("/api/dashboard/lectures/:lecture_id/students", authed, staff, q.students)
	r.GET("/api/dashboard/help-requests/pending", authed, staff, q.pending)
	r.GET("/api/dashboard/statistics/lecture/:lecture_id", authed, staff, q.statistics)
	r.GET("/api/dashboard/chart-data/progress-trend", authed, staff, q.progressTrend)
	for _, p := range []string{"/ws/dashboard/lecture/:lecture_id", "/ws/dashboard/lecture/:lecture_id/"} {
		r.GET(p, q.lectureSocket)
	}
}

func (q *DashboardQueries) logger() *slog.Logger {
	if q.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return q.Logger
}

func (q *DashboardQueries) now() time.Time {
	if q.Now == nil {
		return time.Now()
	}
	return q.Now()
}

// dashQuerier is what the dashboard reads run on (the pool, or the socket
// snapshot's transaction).
type dashQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// dashLecture is a lecture's row with its counters.
type dashLecture struct {
	id, instructorID int64
	total, enrolled  int64
	completions      int64
	helpRequests     int64
}

// dashboardLecture loads the lecture and checks that a may watch it:
// NOT_FOUND for an unknown lecture, FORBIDDEN for anyone but the owner,
// ANALYST and ADMIN.
func dashboardLecture(ctx context.Context, db dashQuerier, a domain.Actor, lectureID int64) (dashLecture, error) {
	l := dashLecture{id: lectureID}
	err := db.QueryRow(ctx, `SELECT instructor_id, total_subtasks, enrolled, completions, help_requests FROM dash_lectures WHERE lecture_id = $1`,
		lectureID).Scan(&l.instructorID, &l.total, &l.enrolled, &l.completions, &l.helpRequests)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, domain.NotFound("lecture")
	}
	if err != nil {
		return l, fmt.Errorf("load lecture %d: %w", lectureID, err)
	}
	if !canWatchLecture(a, l.instructorID) {
		return l, domain.Forbidden("only the lecture's instructor, analysts and admins see its dashboard")
	}
	return l, nil
}

func canWatchLecture(a domain.Actor, instructorID int64) bool {
	return a.Role == domain.RoleAnalyst || a.Manages(instructorID)
}

func round4(v float64) float64 { return math.Round(v*10000) / 10000 }

// rate is part/whole rounded to 4 decimals (0 when whole is 0).
func rate(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return round4(float64(part) / float64(whole))
}

type dashCurrentSubtask struct {
	ID     int64  `json:"id"`
	Title  string `json:"title"`
	Status string `json:"status"`
}

type dashStudent struct {
	UserID            int64               `json:"user_id"`
	Name              string              `json:"name"`
	Email             string              `json:"email"`
	ProgressRate      float64             `json:"progress_rate"`
	CompletedSubtasks int64               `json:"completed_subtasks"`
	TotalSubtasks     int64               `json:"total_subtasks"`
	CurrentSubtask    *dashCurrentSubtask `json:"current_subtask"`
	HelpCount         int64               `json:"help_count"`
	LastActivity      *time.Time          `json:"last_activity"`
	EnrolledAt        time.Time           `json:"enrolled_at"`
}

// dashStudents lists the lecture's enrolled students in enrollment order.
func dashStudents(ctx context.Context, db dashQuerier, l dashLecture, limit, offset int) ([]dashStudent, error) {
	rows, err := db.Query(ctx, `SELECT ds.user_id, COALESCE(u.name, ''), COALESCE(u.email, ''), ds.completed_count,
			ds.current_subtask_id, COALESCE(ds.current_subtask_title, ''), COALESCE(ds.current_status, ''), ds.help_count,
			GREATEST(ds.last_activity, lg.occurred_at), ds.enrolled_at
		FROM dash_students ds
		LEFT JOIN users u ON u.id = ds.user_id
		LEFT JOIN LATERAL (
			SELECT a.occurred_at FROM activity_logs a
			WHERE a.user_id = ds.user_id
				AND (a.session_id IN (SELECT session_id FROM dash_sessions WHERE lecture_id = $1)
					OR a.subtask_id IN (SELECT subtask_id FROM dash_subtasks WHERE lecture_id = $1))
			ORDER BY a.occurred_at DESC LIMIT 1
		) lg ON true
		WHERE ds.lecture_id = $1 AND ds.enrolled
		ORDER BY ds.enrolled_at, ds.user_id
		LIMIT $2 OFFSET $3`, l.id, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("students of lecture %d: %w", l.id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dashStudent, error) {
		var s dashStudent
		var curID *int64
		var cur dashCurrentSubtask
		err := r.Scan(&s.UserID, &s.Name, &s.Email, &s.CompletedSubtasks, &curID, &cur.Title, &cur.Status, &s.HelpCount, &s.LastActivity, &s.EnrolledAt)
		if curID != nil {
			cur.ID = *curID
			s.CurrentSubtask = &cur
		}
		s.TotalSubtasks = l.total
		s.ProgressRate = rate(s.CompletedSubtasks, l.total)
		s.EnrolledAt = s.EnrolledAt.UTC()
		if s.LastActivity != nil {
			t := s.LastActivity.UTC()
			s.LastActivity = &t
		}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("students of lecture %d: %w", l.id, err)
	}
	if out == nil {
		out = []dashStudent{}
	}
	return out, nil
}

// lecture is lecture id's dashboard row if the caller may see it; otherwise
// it answers the error and ok is false.
func (q *DashboardQueries) lecture(c *gin.Context, id int64) (l dashLecture, ok bool) {
	l, err := dashboardLecture(c.Request.Context(), q.Pool, auth.ActorFrom(c), id)
	if err != nil {
		web.Error(c, err)
		return dashLecture{}, false
	}
	return l, true
}

// students answers GET /api/dashboard/lectures/{id}/students (paginated).
func (q *DashboardQueries) students(c *gin.Context) {
	id, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	page, ok := web.PageQuery(c)
	if !ok {
		return
	}
	l, ok := q.lecture(c, id)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	list, err := dashStudents(ctx, q.Pool, l, page.PageSize, page.Offset())
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"lecture_id": id, "students": list, "pagination": page.Of(l.enrolled)})
}

type dashPending struct {
	HelpRequestID int64          `json:"help_request_id"`
	User          helpUserRef    `json:"user"`
	Subtask       helpSubtaskRef `json:"subtask"`
	CreatedAt     time.Time      `json:"created_at"`
	Status        string         `json:"status"`
}

const dashPendingColumns = `SELECT h.help_request_id, h.user_id, COALESCE(u.name, ''), h.subtask_id, h.subtask_title, h.requested_at, h.status
	FROM dash_help_open h LEFT JOIN users u ON u.id = h.user_id `

func scanPending(rows pgx.Rows) ([]dashPending, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (dashPending, error) {
		var p dashPending
		err := r.Scan(&p.HelpRequestID, &p.User.ID, &p.User.Name, &p.Subtask.ID, &p.Subtask.Title, &p.CreatedAt, &p.Status)
		p.CreatedAt = p.CreatedAt.UTC()
		return p, err
	})
	if out == nil {
		out = []dashPending{}
	}
	return out, err
}

// pending answers GET /api/dashboard/help-requests/pending: open (ANALYZING
// or ESCALATED) requests, oldest first, paginated.
func (q *DashboardQueries) pending(c *gin.Context) {
	page, ok := web.PageQuery(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	a := auth.ActorFrom(c)
	all := a.IsAdmin() || a.Role == domain.RoleAnalyst
	var total int64
	var rows pgx.Rows
	var err error
	if all {
		if err = q.Pool.QueryRow(ctx, `SELECT count(*) FROM dash_help_open`).Scan(&total); err == nil {
			rows, err = q.Pool.Query(ctx, dashPendingColumns+`ORDER BY h.requested_at, h.help_request_id LIMIT $1 OFFSET $2`, page.PageSize, page.Offset())
		}
	} else {
		if err = q.Pool.QueryRow(ctx, `SELECT count(*) FROM dash_help_open WHERE instructor_id = $1`, a.UserID).Scan(&total); err == nil {
			rows, err = q.Pool.Query(ctx, dashPendingColumns+`WHERE h.instructor_id = $3 ORDER BY h.requested_at, h.help_request_id LIMIT $1 OFFSET $2`,
				page.PageSize, page.Offset(), a.UserID)
		}
	}
	if err != nil {
		web.Error(c, fmt.Errorf("pending help requests: %w", err))
		return
	}
	list, err := scanPending(rows)
	if err != nil {
		web.Error(c, fmt.Errorf("pending help requests: %w", err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"pending_requests": list, "pagination": page.Of(total)})
}

type dashDifficulty struct {
	SubtaskID               int64  `json:"subtask_id"`
	SubtaskTitle            string `json:"subtask_title"`
	HelpCount               int64  `json:"help_count"`
	AverageStuckTimeSeconds *int64 `json:"average_stuck_time_seconds"`
}

type dashDay struct {
	Date           string `json:"date"`
	ActiveStudents int64  `json:"active_students"`
	HelpRequests   int64  `json:"help_requests"`
}

type dashStatistics struct {
	LectureID                    int64            `json:"lecture_id"`
	TotalStudents                int64            `json:"total_students"`
	AverageProgressRate          float64          `json:"average_progress_rate"`
	TotalHelpRequests            int64            `json:"total_help_requests"`
	AverageCompletionTimeMinutes *int64           `json:"average_completion_time_minutes"`
	CommonDifficulties           []dashDifficulty `json:"common_difficulties"`
	DailyActivity                []dashDay        `json:"daily_activity"`
	ProgressDistribution         map[string]int64 `json:"progress_distribution"`
}

// The progress_distribution buckets, as the seed names them.
const (
	bucket0to25   = "0-25%"
	bucket26to50  = "26-50%"
	bucket51to75  = "51-75%"
	bucket76to100 = "76-100%"
)

// statistics answers GET /api/dashboard/statistics/lecture/{id}.
func (q *DashboardQueries) statistics(c *gin.Context) {
	id, ok := web.IDParam(c, "lecture_id")
	if !ok {
		return
	}
	l, ok := q.lecture(c, id)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	out, err := lectureStatistics(ctx, q.Pool, l)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func lectureStatistics(ctx context.Context, db dashQuerier, l dashLecture) (dashStatistics, error) {
	out := dashStatistics{
		LectureID: l.id, TotalStudents: l.enrolled, TotalHelpRequests: l.helpRequests,
		AverageProgressRate: rate(l.completions, l.enrolled*l.total),
		CommonDifficulties:  []dashDifficulty{}, DailyActivity: []dashDay{},
	}
	var b [4]int64
	var completionSeconds *float64
	err := db.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE 4 * completed_count <= $2),
			count(*) FILTER (WHERE 4 * completed_count > $2 AND 2 * completed_count <= $2),
			count(*) FILTER (WHERE 2 * completed_count > $2 AND 4 * completed_count <= 3 * $2),
			count(*) FILTER (WHERE 4 * completed_count > 3 * $2),
			avg(extract(epoch FROM last_completed_at - first_progress_at)) FILTER (WHERE $2 > 0 AND completed_count >= $2)::float8
		FROM dash_students WHERE lecture_id = $1 AND enrolled`, l.id, l.total).Scan(&b[0], &b[1], &b[2], &b[3], &completionSeconds)
	if err != nil {
		return out, fmt.Errorf("statistics of lecture %d: %w", l.id, err)
	}
	out.ProgressDistribution = map[string]int64{bucket0to25: b[0], bucket26to50: b[1], bucket51to75: b[2], bucket76to100: b[3]}
	if completionSeconds != nil {
		m := int64(math.Round(*completionSeconds / 60))
		out.AverageCompletionTimeMinutes = &m
	}

	rows, err := db.Query(ctx, `SELECT subtask_id, title, help_count, stuck_count, stuck_seconds FROM dash_subtasks
		WHERE lecture_id = $1 AND help_count > 0 ORDER BY help_count DESC, subtask_id LIMIT 10`, l.id)
	if err != nil {
		return out, fmt.Errorf("difficulties of lecture %d: %w", l.id, err)
	}
	out.CommonDifficulties, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (dashDifficulty, error) {
		var d dashDifficulty
		var n int64
		var sum float64
		err := r.Scan(&d.SubtaskID, &d.SubtaskTitle, &d.HelpCount, &n, &sum)
		if n > 0 {
			avg := int64(math.Round(sum / float64(n)))
			d.AverageStuckTimeSeconds = &avg
		}
		return d, err
	})
	if err != nil {
		return out, fmt.Errorf("difficulties of lecture %d: %w", l.id, err)
	}
	if out.CommonDifficulties == nil {
		out.CommonDifficulties = []dashDifficulty{}
	}

	rows, err = db.Query(ctx, `SELECT day, active_students, help_requests FROM dash_daily
		WHERE lecture_id = $1 AND (active_students > 0 OR help_requests > 0) ORDER BY day DESC LIMIT 90`, l.id)
	if err != nil {
		return out, fmt.Errorf("daily activity of lecture %d: %w", l.id, err)
	}
	out.DailyActivity, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (dashDay, error) {
		var d dashDay
		var day time.Time
		err := r.Scan(&day, &d.ActiveStudents, &d.HelpRequests)
		d.Date = day.Format(time.DateOnly)
		return d, err
	})
	if err != nil {
		return out, fmt.Errorf("daily activity of lecture %d: %w", l.id, err)
	}
	if out.DailyActivity == nil {
		out.DailyActivity = []dashDay{}
	}
	slices.Reverse(out.DailyActivity)
	return out, nil
}

type chartDataset struct {
	Label string    `json:"label"`
	Data  []float64 `json:"data"`
}

type chartData struct {
	Labels   []string       `json:"labels"`
	Datasets []chartDataset `json:"datasets"`
}

// Chart.js dataset labels of the progress trend, as the seed names them.
const (
	trendProgressLabel = "평균 진행률"
	trendHelpLabel     = "도움 요청 수"
	trendDefaultDays   = 7
	trendMaxDays       = 90
)

// progressTrend answers GET /api/dashboard/chart-data/progress-trend?lecture_id=&days=.
func (q *DashboardQueries) progressTrend(c *gin.Context) {
	bad := map[string]string{}
	lectureID, err := strconv.ParseInt(c.Query("lecture_id"), 10, 64)
	if err != nil || lectureID <= 0 {
		bad["lecture_id"] = "is required: a positive integer"
	}
	days := trendDefaultDays
	if s := c.Query("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > trendMaxDays {
			bad["days"] = fmt.Sprintf("must be an integer from 1 to %d", trendMaxDays)
		}
		days = n
	}
	if len(bad) > 0 {
		web.Error(c, domain.Invalid("invalid query", bad))
		return
	}
	l, ok := q.lecture(c, lectureID)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	out, err := progressTrend(ctx, q.Pool, l.id, days, q.now())
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// progressTrend computes the trend of the `days` UTC days ending at now's date.
func progressTrend(ctx context.Context, db dashQuerier, lectureID int64, days int, now time.Time) (chartData, error) {
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	start := today.AddDate(0, 0, -(days - 1))

	type snapshot struct{ enrolled, completions, total int64 }
	var carried snapshot
	err := db.QueryRow(ctx, `SELECT enrolled, completions, total_subtasks FROM dash_daily
		WHERE lecture_id = $1 AND day < $2 ORDER BY day DESC LIMIT 1`, lectureID, start).Scan(&carried.enrolled, &carried.completions, &carried.total)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return chartData{}, fmt.Errorf("progress trend of lecture %d: %w", lectureID, err)
	}
	type dayRow struct {
		snapshot
		help int64
	}
	byDay := map[string]dayRow{}
	rows, err := db.Query(ctx, `SELECT day, help_requests, enrolled, completions, total_subtasks FROM dash_daily
		WHERE lecture_id = $1 AND day BETWEEN $2 AND $3`, lectureID, start, today)
	if err != nil {
		return chartData{}, fmt.Errorf("progress trend of lecture %d: %w", lectureID, err)
	}
	var day time.Time
	var r dayRow
	_, err = pgx.ForEachRow(rows, []any{&day, &r.help, &r.enrolled, &r.completions, &r.total}, func() error {
		byDay[day.Format(time.DateOnly)] = r
		return nil
	})
	if err != nil {
		return chartData{}, fmt.Errorf("progress trend of lecture %d: %w", lectureID, err)
	}
	out := chartData{
		Labels: make([]string, 0, days),
		Datasets: []chartDataset{
			{Label: trendProgressLabel, Data: make([]float64, 0, days)},
			{Label: trendHelpLabel, Data: make([]float64, 0, days)},
		},
	}
	for i := range days {
		d := start.AddDate(0, 0, i)
		var help int64
		if row, ok := byDay[d.Format(time.DateOnly)]; ok {
			carried, help = row.snapshot, row.help
		}
		pct := 0.0
		if den := carried.enrolled * carried.total; den > 0 {
			pct = math.Round(float64(carried.completions)/float64(den)*1000) / 10
		}
		out.Labels = append(out.Labels, d.Format("01/02"))
		out.Datasets[0].Data = append(out.Datasets[0].Data, pct)
		out.Datasets[1].Data = append(out.Datasets[1].Data, float64(help))
	}
	return out, nil
}
