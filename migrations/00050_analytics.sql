-- +goose NO TRANSACTION
-- +goose Up
-- Analytics (issue 7) reads a classroom's or a lecture's events straight from
-- the event store, without scanning the whole log: the writers put the live
-- session and the lecture in every event's metadata
-- (eventstore.Metadata.SessionID / LectureID), and these partial expression
-- indexes find them. CONCURRENTLY: building them must not block appends on a
-- live database (hence no transaction).

-- A classroom's events in commit order (export, xAPI): an index range scan
-- that pages by position.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_session_position_idx
    ON events (((metadata->>'session_id')::bigint), position)
    WHERE metadata ? 'session_id';
-- A lecture's history in commit order.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_lecture_position_idx
    ON events (((metadata->>'lecture_id')::bigint), position)
    WHERE metadata ? 'lecture_id';
-- state?at=: the classroom's last event at or before an instant (one probe) …
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_session_time_idx
    ON events (((metadata->>'session_id')::bigint), occurred_at, position)
    WHERE metadata ? 'session_id';
-- … and the events the fold needs (control, participants, help), without the
-- students' progress, which is most of a class's events.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_session_control_idx
    ON events (((metadata->>'session_id')::bigint), position)
    WHERE metadata ? 'session_id' AND type NOT IN ('SubtaskStarted', 'SubtaskCompleted', 'StudentEnrolled');
-- Progress recorded without naming its session (attributed to a classroom by
-- the sessions projector's rule): normally none, so this index stays tiny.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_unnamed_progress_idx
    ON events (((metadata->>'lecture_id')::bigint), position)
    WHERE type IN ('SubtaskStarted', 'SubtaskCompleted') AND NOT metadata ? 'session_id';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS events_unnamed_progress_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_session_control_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_session_time_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_lecture_position_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_session_position_idx;
