-- +goose Up
-- Raw activity logs (issue 5): high-volume telemetry, not events. The API
-- publishes them to the bus; the log writer (package activitylog) stores them
-- here with COPY.

-- Log ids are handed out in blocks: one nextval reserves INCREMENT BY ids
-- (activitylog.IDBlockSize must equal it), so ingest needs no round trip per
-- log. Ids grow with time (per instance), gaps are normal.
CREATE SEQUENCE activity_log_ids INCREMENT BY 10000 START WITH 1;

-- One plain table with time indexes rather than daily partitions: the writer's
-- idempotency needs a unique key on log_id alone (a partitioned table's unique
-- key must contain the partition column), at our volumes (a room of students,
-- a few logs per second each) btree indexes on (user, time) and (session, time)
-- serve the stuck detector, the help analyzer and replay, and BRIN on
-- received_at makes time-range scans and retention deletes cheap because rows
-- arrive in received_at order.
CREATE TABLE activity_logs (
    log_id      bigint      PRIMARY KEY,
    user_id     bigint      NOT NULL,
    session_id  bigint,
    subtask_id  bigint,
    event_type  text        NOT NULL,
    event_data  jsonb,
    screen_info jsonb,
    occurred_at timestamptz NOT NULL, -- the client's timestamp (server time when absent)
    received_at timestamptz NOT NULL  -- when the API accepted it
);
CREATE INDEX activity_logs_user_time_idx ON activity_logs (user_id, occurred_at);
CREATE INDEX activity_logs_session_time_idx ON activity_logs (session_id, occurred_at) WHERE session_id IS NOT NULL;
CREATE INDEX activity_logs_received_brin ON activity_logs USING brin (received_at);

-- +goose Down
DROP TABLE activity_logs;
DROP SEQUENCE activity_log_ids;
