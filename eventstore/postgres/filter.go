package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/lockstep/lockstep/eventstore"
)

var _ eventstore.Querier = (*Store)(nil)

// Query implements eventstore.Querier: one statement on the events table,
// whose conditions are spelled so that the analytics indexes of migration
// 00050 apply (metadata session and lecture ids; event types as literals, so
// that a partial index's type predicate is proven).
func (s *Store) Query(ctx context.Context, f eventstore.Filter) ([]eventstore.Event, error) {
	sql, args, err := s.filterSQL(ctx, f, "ORDER BY position", f.Limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	events, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return events, nil
}

// Latest implements eventstore.Querier.
func (s *Store) Latest(ctx context.Context, f eventstore.Filter) (eventstore.Event, bool, error) {
	sql, args, err := s.filterSQL(ctx, f, "ORDER BY occurred_at DESC, position DESC", 1)
	if err != nil {
		return eventstore.Event{}, false, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return eventstore.Event{}, false, fmt.Errorf("query the latest event: %w", err)
	}
	events, err := collect(rows)
	if err != nil || len(events) == 0 {
		return eventstore.Event{}, false, err
	}
	return events[0], true, nil
}

func (s *Store) filterSQL(ctx context.Context, f eventstore.Filter, order string, limit int) (string, []any, error) {
	if s.closed() {
		return "", nil, eventstore.ErrClosed
	}
	if err := f.Validate(); err != nil {
		return "", nil, err
	}
	upTo := f.UpTo
	if upTo == 0 {
		head, err := s.HeadPosition(ctx)
		if err != nil {
			return "", nil, err
		}
		upTo = head
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where = append(where, "position > "+arg(int64(min(f.After, uint64(1<<63-1)))), "position <= "+arg(int64(min(upTo, uint64(1<<63-1)))))
	if len(f.Streams) > 0 {
		where = append(where, "stream = ANY("+arg(f.Streams)+"::text[])")
	}
	if f.StreamPrefix != "" {
		where = append(where, "starts_with(stream, "+arg(f.StreamPrefix)+")")
	}
	if len(f.Types) > 0 {
		where = append(where, "type IN ("+literals(f.Types)+")")
	}
	if len(f.ExcludeTypes) > 0 {
		where = append(where, "type NOT IN ("+literals(f.ExcludeTypes)+")")
	}
	if f.SessionID != 0 {
		where = append(where, "metadata ? 'session_id' AND (metadata->>'session_id')::bigint = "+arg(f.SessionID))
	}
	if f.SessionsFrom != 0 {
		where = append(where, "metadata ? 'session_id' AND (metadata->>'session_id')::bigint >= "+arg(f.SessionsFrom))
	}
	if len(f.Sessions) > 0 {
		where = append(where, "metadata ? 'session_id' AND (metadata->>'session_id')::bigint = ANY("+arg(f.Sessions)+"::bigint[])")
	}
	if f.NoSession {
		where = append(where, "NOT metadata ? 'session_id'")
	}
	if f.LectureID != 0 {
		where = append(where, "metadata ? 'lecture_id' AND (metadata->>'lecture_id')::bigint = "+arg(f.LectureID))
	}
	if f.NoLecture {
		where = append(where, "NOT metadata ? 'lecture_id'")
	}
	if !f.Until.IsZero() {
		where = append(where, "occurred_at <= "+arg(f.Until))
	}
	if !f.Since.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.Since))
	}
	if !f.Before.IsZero() {
		where = append(where, "occurred_at < "+arg(f.Before))
	}
	columns := eventColumns
	if f.Fields != nil {
		pairs := make([]string, len(f.Fields))
		for i, name := range f.Fields {
			pairs[i] = literals([]string{name}) + ", data->" + literals([]string{name})
		}
		columns = "position, stream, version, event_id, type, schema_version, jsonb_build_object(" + strings.Join(pairs, ", ") + "), '{}'::jsonb, occurred_at"
	}
	sql := "SELECT " + columns + " FROM events WHERE " + strings.Join(where, " AND ") + " " + order
	if limit > 0 {
		sql += " LIMIT " + arg(limit)
	}
	return sql, args, nil
}

// literals spells validated event type names as SQL string literals.
func literals(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + strings.ReplaceAll(n, "'", "''") + "'"
	}
	return strings.Join(q, ", ")
}
