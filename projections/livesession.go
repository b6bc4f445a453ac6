package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/pgdb"
)

// LiveSession is the newest live session (IN_PROGRESS or PAUSED) of a
// lecture that a student takes part in, 0 when none, as the sessions read
// model shows it through q (a pool or a transaction). The progress
// projector attributes progress to it; the commands stamp progress and help
// events with it.
func LiveSession(ctx context.Context, q pgdb.Querier, lectureID, userID int64) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT s.session_id FROM session_participants p JOIN live_sessions s USING (session_id)
		WHERE p.user_id = $1 AND p.lecture_id = $2 AND s.status IN ('IN_PROGRESS', 'PAUSED')
		ORDER BY s.session_id DESC LIMIT 1`, userID, lectureID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("find the live session of user %d in lecture %d: %w", userID, lectureID, err)
	}
	return id, nil
}

// LiveSessions is LiveSession for many students of one lecture in one
// query: each student's newest live session; a student in none is missing
// from the map.
func LiveSessions(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, lectureID int64, userIDs []int64) (map[int64]int64, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (p.user_id) p.user_id, s.session_id
		FROM session_participants p JOIN live_sessions s USING (session_id)
		WHERE p.lecture_id = $1 AND p.user_id = ANY($2) AND s.status IN ('IN_PROGRESS', 'PAUSED')
		ORDER BY p.user_id, s.session_id DESC`, lectureID, userIDs)
	if err != nil {
		return nil, fmt.Errorf("find the live sessions of %d students in lecture %d: %w", len(userIDs), lectureID, err)
	}
	out := make(map[int64]int64, len(userIDs))
	var user, session int64
	_, err = pgx.ForEachRow(rows, []any{&user, &session}, func() error {
		out[user] = session
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find the live sessions of %d students in lecture %d: %w", len(userIDs), lectureID, err)
	}
	return out, nil
}
