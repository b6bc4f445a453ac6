package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/eventstore"
)

// ActivityLog is one raw activity log of a session, as include=logs merges
// it into an event export. Kind is always "activity_log" (event lines have
// no kind).
type ActivityLog struct {
	Kind       string          `json:"kind"`
	LogID      int64           `json:"log_id"`
	UserID     int64           `json:"user_id"`
	SessionID  int64           `json:"session_id"`
	SubtaskID  *int64          `json:"subtask_id"`
	EventType  string          `json:"event_type"`
	EventData  json.RawMessage `json:"event_data"`
	ScreenInfo json.RawMessage `json:"screen_info"`
	OccurredAt time.Time       `json:"occurred_at"`
}

const logColumns = `log_id, user_id, session_id, subtask_id, event_type, coalesce(event_data, 'null'::jsonb), coalesce(screen_info, 'null'::jsonb), occurred_at`

func scanLogs(rows pgx.Rows) ([]ActivityLog, error) {
	defer rows.Close()
	var out []ActivityLog
	for rows.Next() {
		l := ActivityLog{Kind: "activity_log"}
		var data, screen []byte
		if err := rows.Scan(&l.LogID, &l.UserID, &l.SessionID, &l.SubtaskID, &l.EventType, &data, &screen, &l.OccurredAt); err != nil {
			return nil, err
		}
		l.EventData, l.ScreenInfo, l.OccurredAt = data, screen, l.OccurredAt.UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// logCursor reads a session's activity logs in (occurred_at, log_id) order,
// a chunk at a time (activity_logs_session_time_idx).
type logCursor struct {
	r       *Reader
	session int64
	from    *time.Time // logs strictly after this instant (nil: from the start)
	lastAt  time.Time
	lastID  int64
	started bool
	buf     []ActivityLog
	done    bool
	after   uint64
}

func (r *Reader) newLogCursor(sessionID int64, afterPosition uint64) *logCursor {
	return &logCursor{r: r, session: sessionID, after: afterPosition}
}

const logChunk = 500

func (lc *logCursor) fill(ctx context.Context) error {
	if !lc.started {
		lc.started = true
		if lc.after > 0 {
			t, err := lc.r.occurredAt(ctx, lc.after)
			if err != nil {
				return err
			}
			lc.from = t
		}
	}
	var rows pgx.Rows
	var err error
	switch {
	case lc.lastID != 0:
		rows, err = lc.r.pool.Query(ctx, `SELECT `+logColumns+` FROM activity_logs
			WHERE session_id = $1 AND (occurred_at, log_id) > ($2, $3) ORDER BY occurred_at, log_id LIMIT $4`, lc.session, lc.lastAt, lc.lastID, logChunk)
	case lc.from != nil:
		rows, err = lc.r.pool.Query(ctx, `SELECT `+logColumns+` FROM activity_logs
			WHERE session_id = $1 AND occurred_at > $2 ORDER BY occurred_at, log_id LIMIT $3`, lc.session, *lc.from, logChunk)
	default:
		rows, err = lc.r.pool.Query(ctx, `SELECT `+logColumns+` FROM activity_logs
			WHERE session_id = $1 ORDER BY occurred_at, log_id LIMIT $2`, lc.session, logChunk)
	}
	if err != nil {
		return fmt.Errorf("read activity logs of session %d: %w", lc.session, err)
	}
	logs, err := scanLogs(rows)
	if err != nil {
		return fmt.Errorf("read activity logs of session %d: %w", lc.session, err)
	}
	if len(logs) < logChunk {
		lc.done = true
	}
	if n := len(logs); n > 0 {
		lc.lastAt, lc.lastID = logs[n-1].OccurredAt, logs[n-1].LogID
	}
	lc.buf = logs
	return nil
}

// until emits the logs that occurred at or before t (every remaining one when all).
func (lc *logCursor) until(ctx context.Context, t time.Time, all bool, emit func(ActivityLog) error) error {
	for {
		if len(lc.buf) == 0 {
			if lc.done {
				return nil
			}
			if err := lc.fill(ctx); err != nil {
				return err
			}
			continue
		}
		l := lc.buf[0]
		if !all && l.OccurredAt.After(t) {
			return nil
		}
		if err := emit(l); err != nil {
			return err
		}
		lc.buf = lc.buf[1:]
	}
}

// occurredAt is when the event at position occurred (nil when there is none).
func (r *Reader) occurredAt(ctx context.Context, position uint64) (*time.Time, error) {
	if position == 0 {
		return nil, nil
	}
	q, err := r.querier()
	if err != nil {
		return nil, err
	}
	evs, err := q.Query(ctx, eventstore.Filter{After: position - 1, UpTo: position, Limit: 1, Fields: []string{}})
	if err != nil {
		return nil, fmt.Errorf("read event at %d: %w", position, err)
	}
	if len(evs) == 0 {
		return nil, nil
	}
	return &evs[0].OccurredAt, nil
}

// pageLogs returns the logs that belong with a page of events: those that
// occurred after the event at position after (from the start when 0) and at
// or before the page's last event — or with no upper bound on the last page.
func (r *Reader) pageLogs(ctx context.Context, sessionID int64, after uint64, events []Event, last bool) ([]ActivityLog, error) {
	lc := r.newLogCursor(sessionID, after)
	var until time.Time
	if len(events) > 0 {
		until = events[len(events)-1].OccurredAt
	}
	var out []ActivityLog
	err := lc.until(ctx, until, last, func(l ActivityLog) error {
		out = append(out, l)
		return nil
	})
	return out, err
}
