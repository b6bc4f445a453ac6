// Package pgactivity reads students' recent activity logs from PostgreSQL
// (the activity_logs table the log writer fills) for the help analyzer and
// the stuck detector.
package pgactivity

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/analyzer"
)

// Source reads activity logs.
type Source struct {
	Pool *pgxpool.Pool
}

// Recent returns the user's logs that occurred in [since, until], oldest
// first; when there are more than limit, the newest limit of them.
func (s Source) Recent(ctx context.Context, userID int64, since, until time.Time, limit int) ([]analyzer.Activity, error) {
	rows, err := s.Pool.Query(ctx, `SELECT user_id, occurred_at, event_type, coalesce(subtask_id, 0), coalesce(event_data::text, ''), coalesce(screen_info::text, '')
		FROM activity_logs WHERE user_id = $1 AND occurred_at >= $2 AND occurred_at <= $3
		ORDER BY occurred_at DESC, log_id DESC LIMIT $4`, userID, since, until, limit)
	if err != nil {
		return nil, fmt.Errorf("read activity of user %d: %w", userID, err)
	}
	out, err := collect(rows)
	if err != nil {
		return nil, err
	}
	acts := out[userID]
	slices.Reverse(acts)
	return acts, nil
}

// Since returns the logs of several users that occurred at or after since
// (and at or before until), oldest first per user, at most perUser of the
// newest per user.
func (s Source) Since(ctx context.Context, userIDs []int64, since, until time.Time, perUser int) (map[int64][]analyzer.Activity, error) {
	if len(userIDs) == 0 {
		return map[int64][]analyzer.Activity{}, nil
	}
	rows, err := s.Pool.Query(ctx, `SELECT user_id, occurred_at, event_type, subtask_id, event_data, screen_info FROM (
			SELECT user_id, occurred_at, event_type, coalesce(subtask_id, 0) AS subtask_id, coalesce(event_data::text, '') AS event_data,
				coalesce(screen_info::text, '') AS screen_info,
				row_number() OVER (PARTITION BY user_id ORDER BY occurred_at DESC, log_id DESC) AS n
			FROM activity_logs WHERE user_id = ANY($1) AND occurred_at >= $2 AND occurred_at <= $3) t
		WHERE n <= $4 ORDER BY user_id, occurred_at, n DESC`, userIDs, since, until, perUser)
	if err != nil {
		return nil, fmt.Errorf("read recent activity: %w", err)
	}
	return collect(rows)
}

func collect(rows pgx.Rows) (map[int64][]analyzer.Activity, error) {
	defer rows.Close()
	out := map[int64][]analyzer.Activity{}
	for rows.Next() {
		var user, subtask int64
		var at time.Time
		var typ, data, screen string
		if err := rows.Scan(&user, &at, &typ, &subtask, &data, &screen); err != nil {
			return nil, err
		}
		out[user] = append(out[user], analyzer.ParseActivity(at.UTC(), typ, subtask, []byte(data), []byte(screen)))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}
	return out, nil
}
