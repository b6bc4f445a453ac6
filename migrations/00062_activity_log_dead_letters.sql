-- +goose Up
-- What the log writer (package activitylog) could not store, set aside so that
-- one bad message never stops log storage for everyone (issue 16): a log row
-- PostgreSQL refused with a data or integrity error (SQLSTATE class 22, 23,
-- 54), found by splitting the failing batch, or a bus message that could not
-- be decoded at all. Transient failures (connection lost, database down) are
-- retried, never set aside. Served by GET /api/admin/logs/dead-letters and
-- counted by the gauge lockstep_activity_log_dead_letters.
CREATE TABLE activity_log_dead_letters (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'log:{log_id}' or 'message:{message uuid}': a redelivery of the same
    -- thing counts another attempt instead of adding a row.
    source_key  text        NOT NULL UNIQUE,
    log_id      bigint,               -- set when one log row was refused
    user_id     bigint,
    topic       text        NOT NULL, -- the bus topic it came from
    message_id  text        NOT NULL, -- the bus message's uuid
    partition   integer,              -- Kafka partition and offset, when known
    "offset"    bigint,
    payload     bytea       NOT NULL, -- the log as JSON, or the message's raw payload
    error       text        NOT NULL, -- the last error
    attempts    integer     NOT NULL DEFAULT 1, -- deliveries that ended here
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE activity_log_dead_letters;
