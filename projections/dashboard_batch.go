package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/outbox"
)

// HandleBatch implements BatchHandler. Runs of consecutive StudentEnrolled,
// SubtaskStarted and SubtaskCompleted events (a class's progress and its
// students' enrolments, nearly every event; an enrolment no longer cuts the
// run short, so a class's batch is usually one run) are
// folded in memory and written with a fixed number of set-based statements
// per run (about fifteen, whatever the run's length) instead of about twelve
// per event; every other event goes through Handle. The result equals Handle
// on each record in order (dashboard_batch_test.go compares the tables): the
// fold reads the rows the run touches first, and the set-based refresh of the
// students' counts is checked against the fold's own completion counts; on a
// difference the run is rolled back to a savepoint and applied event by event.
func (p *Dashboard) HandleBatch(ctx context.Context, tx pgx.Tx, records []Record) error {
	return applyRuns(ctx, tx, records, foldedRunEnd, p.progressRun, p.Handle)
}

// dashboardFallbacks counts runs applied event by event after the fold
// disagreed with the database (tests assert none).
var dashboardFallbacks atomic.Int64

// foldedRunEnd is the end of the run of folded events from i: it stops
// before an event progressRun does not fold, and before the enrolment of a
// student who progressed earlier in the run (the enrolment counts the
// student's completions, which the database refreshes only after the run;
// the next run starts with it and reads them fresh).
func foldedRunEnd(records []Record, i int) int {
	progressed := map[dashStudentKey]bool{}
	j := i
	for ; j < len(records) && isFoldedEvent(records[j]); j++ {
		switch x := records[j].Payload.(type) {
		case domain.StudentEnrolled:
			if progressed[dashStudentKey{x.LectureID, x.UserID}] {
				return j
			}
		case domain.SubtaskStarted:
			progressed[dashStudentKey{x.LectureID, x.UserID}] = true
		case domain.SubtaskCompleted:
			progressed[dashStudentKey{x.LectureID, x.UserID}] = true
		}
	}
	return j
}

// isFoldedEvent: the events progressRun folds.
func isFoldedEvent(r Record) bool {
	switch r.Payload.(type) {
	case domain.StudentEnrolled, domain.SubtaskStarted, domain.SubtaskCompleted:
		return true
	}
	return false
}

// progressRun applies a run of progress events in a savepoint, falling back
// to Handle per event when the fold's completion counts disagree with the
// database's recomputation.
func (p *Dashboard) progressRun(ctx context.Context, tx pgx.Tx, run []Record) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	ok, err := p.foldProgress(ctx, sp, run)
	if err != nil || !ok {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return rbErr
		}
		if err != nil {
			return err
		}
		dashboardFallbacks.Add(1)
		for _, r := range run {
			if err := p.Handle(ctx, tx, r); err != nil {
				return fmt.Errorf("%s at position %d (%s): %w", r.Type, r.Position, r.Stream, err)
			}
		}
		return nil
	}
	return sp.Commit(ctx)
}

type dashStudentKey struct{ lecture, user int64 }

type dashProgressKey struct{ lecture, user, subtask int64 }

type dashDayKey struct {
	lecture int64
	day     time.Time
}

type dashActiveKey struct {
	lecture int64
	day     time.Time
	user    int64
}

type dashChannelPos struct {
	channel  string
	position uint64
}

// dashProgressState is a dash_progress row as the fold goes.
type dashProgressState struct {
	status                                      domain.ProgressStatus
	startedAt, completedAt, currentAt, stuckEnd *time.Time
	changed                                     bool
}

type dashSubtaskState struct {
	live         bool
	stuckCount   int64
	stuckSeconds float64
	changed      bool
}

type dashLectureState struct {
	enrolled, total, completions int64
	delta                        int64 // completions counted by the run's progress
	changed                      bool  // enrolled or completions changed
}

type dashDayState struct {
	active                       int64
	enrolled, completions, total int64
}

type dashStudentState struct {
	enrolled       bool
	completedCount int64      // as read
	enrolledAt     *time.Time // enrolled by the run
	lastActivity   time.Time
	firstProgress  *time.Time
	refresh        bool
}

// dbTime is t as PostgreSQL stores it (microseconds; pgx truncates).
func dbTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func (p *Dashboard) foldProgress(ctx context.Context, tx pgx.Tx, run []Record) (bool, error) {
	f := newProgressFold(run)
	// Read what the run touches, in one round trip.
	if err := tx.SendBatch(ctx, queued(f.readRows, f.readContext)).Close(); err != nil {
		return false, err
	}
	if ok, err := f.fold(); !ok || err != nil {
		return ok, err
	}
	// Write: one round trip for the rows, then the students' refresh and the messages.
	if err := tx.SendBatch(ctx, queued(f.writeRows, f.writeCounts)).Close(); err != nil {
		return false, err
	}
	if ok, err := f.checkRefresh(ctx, tx); !ok || err != nil {
		return ok, err
	}
	if len(f.msgs) > 0 {
		if err := outbox.Record(ctx, tx, DashboardProjector, f.msgs...); err != nil {
			return false, err
		}
	}
	return true, nil
}

// progressFold is a run of progress events folded in memory: the rows it
// touches (read first), their state after the run, and the messages.
type progressFold struct {
	evs           []foldEvent
	students      map[dashStudentKey]*dashStudentState
	studentOrder  []dashStudentKey
	progress      map[dashProgressKey]*dashProgressState
	progressOrder []dashProgressKey
	subtasks      map[int64]*dashSubtaskState
	lectures      map[int64]*dashLectureState
	actives       map[dashActiveKey]bool
	activeOrder   []dashActiveKey
	users         map[int64]string
	taken         map[dashChannelPos]bool // messages on the channels at the positions the run looks at
	days          map[dashDayKey]*dashDayState
	dayOrder      []dashDayKey
	msgs          []outbox.Message
	refreshLs     []int64 // the students whose counts are refreshed
	refreshUs     []int64
}

// foldEvent is one event of the run.
type foldEvent struct {
	r         Record
	enrol     bool // StudentEnrolled (no subtask)
	completed bool
	lecture   int64
	user      int64
	subtask   int64
	title     string
	at        time.Time
}

// newProgressFold collects the keys the run touches, in the run's order.
func newProgressFold(run []Record) *progressFold {
	f := &progressFold{
		students: map[dashStudentKey]*dashStudentState{}, progress: map[dashProgressKey]*dashProgressState{},
		subtasks: map[int64]*dashSubtaskState{}, lectures: map[int64]*dashLectureState{},
		actives: map[dashActiveKey]bool{}, users: map[int64]string{}, taken: map[dashChannelPos]bool{},
		days: map[dashDayKey]*dashDayState{},
	}
	f.evs = make([]foldEvent, len(run))
	for i, r := range run {
		e := foldEvent{r: r}
		switch x := r.Payload.(type) {
		case domain.SubtaskStarted:
			e.lecture, e.user, e.subtask, e.title, e.at = x.LectureID, x.UserID, x.SubtaskID, x.SubtaskTitle, x.StartedAt
		case domain.SubtaskCompleted:
			e.completed = true
			e.lecture, e.user, e.subtask, e.title, e.at = x.LectureID, x.UserID, x.SubtaskID, x.SubtaskTitle, x.CompletedAt
		case domain.StudentEnrolled:
			e.enrol = true
			e.lecture, e.user, e.at = x.LectureID, x.UserID, x.EnrolledAt
		}
		f.evs[i] = e
		sk := dashStudentKey{e.lecture, e.user}
		if _, ok := f.students[sk]; !ok {
			f.students[sk] = &dashStudentState{}
			f.studentOrder = append(f.studentOrder, sk)
		}
		if _, ok := f.lectures[e.lecture]; !ok {
			f.lectures[e.lecture] = nil
		}
		ak := dashActiveKey{e.lecture, DayOf(e.at), e.user}
		if _, ok := f.actives[ak]; !ok {
			f.actives[ak] = false
			f.activeOrder = append(f.activeOrder, ak)
		}
		f.users[e.user] = ""
		if e.enrol {
			continue
		}
		pk := dashProgressKey{e.lecture, e.user, e.subtask}
		if _, ok := f.progress[pk]; !ok {
			f.progress[pk] = &dashProgressState{status: domain.ProgressStatusNotStarted}
			f.progressOrder = append(f.progressOrder, pk)
		}
		if _, ok := f.subtasks[e.subtask]; !ok {
			f.subtasks[e.subtask] = &dashSubtaskState{}
		}
	}
	return f
}

// readRows queues the reads of the run's rows: progress, students, subtasks
// and lectures.
func (f *progressFold) readRows(reads *pgx.Batch) {
	{
		ls, us, ss := make([]int64, len(f.progressOrder)), make([]int64, len(f.progressOrder)), make([]int64, len(f.progressOrder))
		for i, k := range f.progressOrder {
			ls[i], us[i], ss[i] = k.lecture, k.user, k.subtask
		}
		reads.Queue(`SELECT p.lecture_id, p.user_id, p.subtask_id, p.status, p.started_at, p.completed_at, p.current_at, p.stuck_end_at
			FROM dash_progress p JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS k(l, u, s)
				ON p.lecture_id = k.l AND p.user_id = k.u AND p.subtask_id = k.s FOR UPDATE OF p`, ls, us, ss).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k dashProgressKey
				st := &dashProgressState{}
				if err := rows.Scan(&k.lecture, &k.user, &k.subtask, &st.status, &st.startedAt, &st.completedAt, &st.currentAt, &st.stuckEnd); err != nil {
					return err
				}
				f.progress[k] = st
			}
			return rows.Err()
		})
	}
	{
		ls, us := make([]int64, len(f.studentOrder)), make([]int64, len(f.studentOrder))
		for i, k := range f.studentOrder {
			ls[i], us[i] = k.lecture, k.user
		}
		reads.Queue(`SELECT s.lecture_id, s.user_id, s.enrolled, s.completed_count FROM dash_students s
			JOIN unnest($1::bigint[], $2::bigint[]) AS k(l, u) ON s.lecture_id = k.l AND s.user_id = k.u`, ls, us).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k dashStudentKey
				var enrolled bool
				var completed int64
				if err := rows.Scan(&k.lecture, &k.user, &enrolled, &completed); err != nil {
					return err
				}
				f.students[k].enrolled, f.students[k].completedCount = enrolled, completed
			}
			return rows.Err()
		})
	}
	{
		ids := make([]int64, 0, len(f.subtasks))
		for id := range f.subtasks {
			ids = append(ids, id)
		}
		reads.Queue(`SELECT subtask_id, NOT removed, stuck_count, stuck_seconds FROM dash_subtasks WHERE subtask_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id int64
				st := &dashSubtaskState{}
				if err := rows.Scan(&id, &st.live, &st.stuckCount, &st.stuckSeconds); err != nil {
					return err
				}
				f.subtasks[id] = st
			}
			return rows.Err()
		})
	}
	{
		ids := make([]int64, 0, len(f.lectures))
		for id := range f.lectures {
			ids = append(ids, id)
		}
		reads.Queue(`SELECT lecture_id, enrolled, total_subtasks, completions FROM dash_lectures WHERE lecture_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id int64
				st := &dashLectureState{}
				if err := rows.Scan(&id, &st.enrolled, &st.total, &st.completions); err != nil {
					return err
				}
				f.lectures[id] = st
			}
			return rows.Err()
		})
	}
}

// readContext queues the reads the messages need: who was active that day,
// the students' names, and the messages already on the channels just below
// the run's positions (for STARTED_LEARNING).
func (f *progressFold) readContext(reads *pgx.Batch) {
	{
		ls, ds, us := make([]int64, len(f.activeOrder)), make([]time.Time, len(f.activeOrder)), make([]int64, len(f.activeOrder))
		for i, k := range f.activeOrder {
			ls[i], ds[i], us[i] = k.lecture, k.day, k.user
		}
		reads.Queue(`SELECT a.lecture_id, a.day::timestamp AT TIME ZONE 'UTC', a.user_id FROM dash_daily_active a
			JOIN unnest($1::bigint[], $2::timestamptz[], $3::bigint[]) AS k(l, d, u)
				ON a.lecture_id = k.l AND a.day = (k.d AT TIME ZONE 'UTC')::date AND a.user_id = k.u`, ls, ds, us).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k dashActiveKey
				if err := rows.Scan(&k.lecture, &k.day, &k.user); err != nil {
					return err
				}
				k.day = DayOf(k.day)
				f.actives[k] = true
			}
			return rows.Err()
		})
	}
	{
		ids := make([]int64, 0, len(f.users))
		for id := range f.users {
			if id != 0 {
				ids = append(ids, id)
			}
		}
		reads.Queue(`SELECT id, name FROM users WHERE id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id int64
				var name string
				if err := rows.Scan(&id, &name); err != nil {
					return err
				}
				f.users[id] = name
			}
			return rows.Err()
		})
	}
	// Messages already on the channels just below the run's positions (for
	// STARTED_LEARNING).
	{
		chs, pos := make([]string, 0, len(f.evs)), make([]int64, 0, len(f.evs))
		for _, e := range f.evs {
			if e.r.Position > 1 {
				chs = append(chs, DashboardLectureChannel(e.lecture))
				pos = append(pos, int64(e.r.Position-1))
			}
		}
		reads.Queue(`SELECT m.channel, m.position FROM live_messages m
			JOIN unnest($1::text[], $2::bigint[]) AS k(c, p) ON m.channel = k.c AND m.position = k.p`, chs, pos).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var c string
				var p int64
				if err := rows.Scan(&c, &p); err != nil {
					return err
				}
				f.taken[dashChannelPos{c, uint64(p)}] = true
			}
			return rows.Err()
		})
	}

}

func (f *progressFold) record(channel string, pos uint64, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode message for %s: %w", channel, err)
	}
	f.msgs = append(f.msgs, outbox.Message{Channel: channel, Position: pos, Payload: data})
	f.taken[dashChannelPos{channel, pos}] = true
	return nil
}

// fold applies the run, event by event, as Handle would; false: a case the
// fold leaves to Handle.
func (f *progressFold) fold() (bool, error) {
	// Fold, event by event, as Handle would.
	for _, e := range f.evs {
		st := f.students[dashStudentKey{e.lecture, e.user}]
		at := dbTime(e.at)
		if st.lastActivity.IsZero() || at.After(st.lastActivity) {
			st.lastActivity = at
		}
		ak := dashActiveKey{e.lecture, DayOf(e.at), e.user}
		first := !f.actives[ak]
		f.actives[ak] = true
		if e.enrol {
			if ok := f.enrol(e, st, first); !ok {
				return false, nil
			}
			if first {
				msg := dashMessage{Type: "student_activity", Data: DashboardStudentActivity{UserID: e.user, UserName: f.users[e.user], Activity: ActivityStartedLearning, Timestamp: e.at.UTC()}}
				if err := f.record(DashboardLectureChannel(e.lecture), e.r.Position, msg); err != nil {
					return false, err
				}
			}
			continue
		}
		pk := dashProgressKey{e.lecture, e.user, e.subtask}
		row := f.progress[pk]
		old := row.status
		var own *DashboardProgressUpdate
		if old != domain.ProgressStatusCompleted {
			row.changed = true
			if e.completed {
				row.status = domain.ProgressStatusCompleted
				row.completedAt = &at
				if row.stuckEnd == nil {
					if sub := f.subtasks[e.subtask]; sub != nil && row.currentAt != nil && !e.at.Before(*row.currentAt) {
						sub.stuckCount++
						sub.stuckSeconds += e.at.Sub(*row.currentAt).Seconds()
						sub.changed = true
					}
					row.stuckEnd = &at
				}
			} else {
				row.status = domain.ProgressStatusInProgress
				row.startedAt = &at
				if row.stuckEnd == nil && (row.currentAt == nil || at.Before(*row.currentAt)) {
					row.currentAt = &at
				}
			}
			if st.firstProgress == nil || at.Before(*st.firstProgress) {
				st.firstProgress = &at
			}
			st.refresh = true
			if e.completed && st.enrolled {
				if sub := f.subtasks[e.subtask]; sub != nil && sub.live {
					if l := f.lectures[e.lecture]; l != nil {
						l.completions++
						l.delta++
					} else {
						// Counted in no lecture row: leave it to Handle.
						return false, nil
					}
				}
			}
			status := domain.ProgressStatusInProgress
			if e.completed {
				status = domain.ProgressStatusCompleted
			}
			own = progressUpdate(e.user, e.subtask, e.title, old, status, e.at)
		}
		f.touchDay(e, first)
		// emit
		if own == nil && !first {
			continue
		}
		channel := DashboardLectureChannel(e.lecture)
		name := f.users[e.user]
		if first {
			pos := e.r.Position
			free := true
			if own != nil {
				pos--
				free = pos != 0 && !f.taken[dashChannelPos{channel, pos}]
			}
			if free {
				msg := dashMessage{Type: "student_activity", Data: DashboardStudentActivity{UserID: e.user, UserName: name, Activity: ActivityStartedLearning, Timestamp: e.at.UTC()}}
				if err := f.record(channel, pos, msg); err != nil {
					return false, err
				}
			}
		}
		if own != nil {
			own.UserName = name
			if err := f.record(channel, e.r.Position, dashMessage{Type: "progress_update", Data: own}); err != nil {
				return false, err
			}
		}
	}

	return true, nil
}

// touchDay is touchDay of dashboard.go on the fold's rows.
func (f *progressFold) touchDay(e foldEvent, first bool) {
	l := f.lectures[e.lecture]
	if l == nil {
		return
	}
	dk := dashDayKey{e.lecture, DayOf(e.at)}
	d := f.days[dk]
	if d == nil {
		d = &dashDayState{}
		f.days[dk] = d
		f.dayOrder = append(f.dayOrder, dk)
	}
	if first {
		d.active++
	}
	d.enrolled, d.completions, d.total = l.enrolled, l.completions, l.total
}

// enrol folds a StudentEnrolled as OnStudentEnrolled would: the student is
// enrolled (once) and counted, with the completions they already have, in
// the lecture. false: the student progressed earlier in the run, so the
// completed_count read is stale (the database refreshes it only after the
// run); the caller falls back.
func (f *progressFold) enrol(e foldEvent, st *dashStudentState, first bool) bool {
	if !st.enrolled {
		if st.refresh {
			return false
		}
		st.enrolled = true
		at := e.at
		st.enrolledAt = &at
		if l := f.lectures[e.lecture]; l != nil {
			l.enrolled++
			l.completions += st.completedCount
			l.changed = true
		}
	}
	f.touchDay(e, first)
	return true
}

// writeRows queues the writes of the students', their days' and their
// progress rows.
func (f *progressFold) writeRows(writes *pgx.Batch) {
	{
		ls, us, ts := make([]int64, len(f.studentOrder)), make([]int64, len(f.studentOrder)), make([]time.Time, len(f.studentOrder))
		for i, k := range f.studentOrder {
			ls[i], us[i], ts[i] = k.lecture, k.user, f.students[k].lastActivity
		}
		writes.Queue(`INSERT INTO dash_students (lecture_id, user_id, last_activity)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[])
			ON CONFLICT (lecture_id, user_id) DO UPDATE SET last_activity = GREATEST(dash_students.last_activity, EXCLUDED.last_activity)`, ls, us, ts)
	}
	{
		var ls, us []int64
		var ts []time.Time
		for _, k := range f.studentOrder {
			if st := f.students[k]; st.enrolledAt != nil {
				ls, us, ts = append(ls, k.lecture), append(us, k.user), append(ts, *st.enrolledAt)
			}
		}
		if len(ls) > 0 {
			writes.Queue(`UPDATE dash_students s SET enrolled = true, enrolled_at = k.t
				FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS k(l, u, t)
				WHERE s.lecture_id = k.l AND s.user_id = k.u AND NOT s.enrolled`, ls, us, ts)
		}
	}
	{
		ls, ds, us := make([]int64, len(f.activeOrder)), make([]time.Time, len(f.activeOrder)), make([]int64, len(f.activeOrder))
		for i, k := range f.activeOrder {
			ls[i], ds[i], us[i] = k.lecture, k.day, k.user
		}
		writes.Queue(`INSERT INTO dash_daily_active (lecture_id, day, user_id)
			SELECT l, (d AT TIME ZONE 'UTC')::date, u FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[]) AS k(l, d, u)
			ON CONFLICT DO NOTHING`, ls, ds, us)
	}
}

// writeCounts queues the writes of the counts: the students' first
// progress, the lectures', the subtasks' and the days'.
func (f *progressFold) writeCounts(writes *pgx.Batch) {
	{
		var ls, us, ss []int64
		var statuses []string
		var started, completed, current, stuckEnd []*time.Time
		for _, k := range f.progressOrder {
			row := f.progress[k]
			if !row.changed {
				continue
			}
			ls, us, ss = append(ls, k.lecture), append(us, k.user), append(ss, k.subtask)
			statuses = append(statuses, string(row.status))
			started, completed = append(started, row.startedAt), append(completed, row.completedAt)
			current, stuckEnd = append(current, row.currentAt), append(stuckEnd, row.stuckEnd)
		}
		if len(ls) > 0 {
			writes.Queue(`INSERT INTO dash_progress (lecture_id, user_id, subtask_id, status, started_at, completed_at, current_at, stuck_end_at)
				SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
				ON CONFLICT (lecture_id, user_id, subtask_id) DO UPDATE SET status = EXCLUDED.status, started_at = EXCLUDED.started_at,
					completed_at = EXCLUDED.completed_at, current_at = EXCLUDED.current_at, stuck_end_at = EXCLUDED.stuck_end_at`, ls, us, ss, statuses, started, completed, current, stuckEnd)
		}
	}
	{
		var ls, us []int64
		var firsts []time.Time
		for _, k := range f.studentOrder {
			if st := f.students[k]; st.refresh {
				ls, us, firsts = append(ls, k.lecture), append(us, k.user), append(firsts, *st.firstProgress)
			}
		}
		if len(ls) > 0 {
			writes.Queue(`UPDATE dash_students s SET first_progress_at = LEAST(COALESCE(s.first_progress_at, k.f), k.f)
				FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS k(l, u, f)
				WHERE s.lecture_id = k.l AND s.user_id = k.u`, ls, us, firsts)
			f.refreshLs, f.refreshUs = ls, us
		}
	}
	{
		var ids, enrolled, completions []int64
		for id, l := range f.lectures {
			if l != nil && (l.delta != 0 || l.changed) {
				ids, enrolled, completions = append(ids, id), append(enrolled, l.enrolled), append(completions, l.completions)
			}
		}
		if len(ids) > 0 {
			writes.Queue(`UPDATE dash_lectures l SET enrolled = k.e, completions = k.c
				FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS k(id, e, c) WHERE l.lecture_id = k.id`, ids, enrolled, completions)
		}
	}
	{
		var ids, counts []int64
		var seconds []float64
		for id, s := range f.subtasks {
			if s != nil && s.changed {
				ids, counts, seconds = append(ids, id), append(counts, s.stuckCount), append(seconds, s.stuckSeconds)
			}
		}
		if len(ids) > 0 {
			writes.Queue(`UPDATE dash_subtasks s SET stuck_count = k.c, stuck_seconds = k.sec
				FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS k(id, c, sec) WHERE s.subtask_id = k.id`, ids, counts, seconds)
		}
	}
	if len(f.dayOrder) > 0 {
		n := len(f.dayOrder)
		ls, ds := make([]int64, n), make([]time.Time, n)
		active, enrolled, completions, total := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, k := range f.dayOrder {
			d := f.days[k]
			ls[i], ds[i] = k.lecture, k.day
			active[i], enrolled[i], completions[i], total[i] = d.active, d.enrolled, d.completions, d.total
		}
		writes.Queue(`INSERT INTO dash_daily (lecture_id, day, active_students, help_requests, enrolled, completions, total_subtasks)
			SELECT l, (d AT TIME ZONE 'UTC')::date, a, 0, e, c, t FROM unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::bigint[], $6::int[]) AS k(l, d, a, e, c, t)
			ON CONFLICT (lecture_id, day) DO UPDATE SET
				active_students = dash_daily.active_students + EXCLUDED.active_students,
				enrolled = EXCLUDED.enrolled, completions = EXCLUDED.completions, total_subtasks = EXCLUDED.total_subtasks`, ls, ds, active, enrolled, completions, total)
	}
}

// checkRefresh refreshes the students' counts set-based and checks them
// against the fold's own; false: they differ (the caller falls back).
func (f *progressFold) checkRefresh(ctx context.Context, tx pgx.Tx) (bool, error) {
	if len(f.refreshLs) > 0 {
		rows, err := tx.Query(ctx, refreshStudentSetSQL, pgx.QueryExecModeExec, f.refreshLs, f.refreshUs)
		if err != nil {
			return false, err
		}
		got := map[int64]int64{}
		for rows.Next() {
			var l, d int64
			if err := rows.Scan(&l, &d); err != nil {
				rows.Close()
				return false, err
			}
			got[l] = d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, err
		}
		for id, l := range f.lectures {
			if l != nil && got[id] != l.delta {
				return false, nil
			}
			delete(got, id)
		}
		for _, d := range got {
			if d != 0 {
				return false, nil
			}
		}
	}
	return true, nil
}

// refreshStudentSetSQL is refreshStudentsSQL for a set of students (arrays
// of lecture and user ids), returning each lecture's change in completions.
var refreshStudentSetSQL = func() string {
	q := fmt.Sprintf(refreshStudentsSQL, "(u.lecture_id, u.user_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))")
	const ret, sel = "RETURNING ds.enrolled,", "SELECT COALESCE(sum(delta) FILTER (WHERE enrolled), 0) FROM upd"
	if !strings.Contains(q, ret) || !strings.Contains(q, sel) {
		panic("projections: refreshStudentsSQL changed; update refreshStudentSetSQL")
	}
	q = strings.Replace(q, ret, "RETURNING ds.lecture_id, ds.enrolled,", 1)
	return strings.Replace(q, sel, "SELECT lecture_id, COALESCE(sum(delta) FILTER (WHERE enrolled), 0) FROM upd GROUP BY lecture_id", 1)
}()

// queued is one batch of what each of parts queues, in order.
func queued(parts ...func(*pgx.Batch)) *pgx.Batch {
	b := &pgx.Batch{}
	for _, queue := range parts {
		queue(b)
	}
	return b
}
