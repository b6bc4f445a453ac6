package activitylog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store writes logs idempotently: a log whose id is already stored is skipped.
type Store interface {
	Write(ctx context.Context, logs []Log) error
}

// Columns of activity_logs in the order COPY sends them.
var Columns = []string{"log_id", "user_id", "session_id", "subtask_id", "event_type",
	"event_data", "screen_info", "occurred_at", "received_at"}

// PGStore stores logs in the activity_logs table.
type PGStore struct {
	pool *pgxpool.Pool
}

// NewPGStore returns a Store over pool.
func NewPGStore(pool *pgxpool.Pool) *PGStore {
	if pool == nil {
		panic("activitylog: NewPGStore needs a pool")
	}
	return &PGStore{pool: pool}
}

// Write stores logs in one transaction. The fast path COPYs straight into
// the table; when a log id is already there (a redelivery) it falls back to
// COPY into a temporary table and INSERT … ON CONFLICT (log_id) DO NOTHING.
// Either way each log id is stored once.
func (s *PGStore) Write(ctx context.Context, logs []Log) error {
	if len(logs) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"activity_logs"}, Columns, Rows(logs))
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		if err != nil {
			return fmt.Errorf("copy %d activity logs: %w", len(logs), err)
		}
		return nil
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE activity_logs_in (LIKE activity_logs) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"activity_logs_in"}, Columns, Rows(logs)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO activity_logs SELECT * FROM activity_logs_in ON CONFLICT (log_id) DO NOTHING`)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert %d activity logs (some already stored): %w", len(logs), err)
	}
	return nil
}

// Rows adapts logs to pgx.CopyFrom in the order of Columns.
func Rows(logs []Log) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(logs), func(i int) ([]any, error) {
		l := &logs[i]
		return []any{l.LogID, l.UserID, l.SessionID, l.SubtaskID, l.EventType,
			nullJSON(l.EventData), nullJSON(l.ScreenInfo), l.OccurredAt, l.ReceivedAt}, nil
	})
}

func nullJSON(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return raw
}

// SetAside implements DeadLetterStore (the table activity_log_dead_letters).
func (s *PGStore) SetAside(ctx context.Context, letters []DeadLetter) error {
	return (&PGDeadLetters{pool: s.pool}).SetAside(ctx, letters)
}
