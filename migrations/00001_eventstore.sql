-- +goose Up
-- The event store. position is the event's place in the global log:
--   position = txid * 65536 + index of the event within its append.
-- A transaction's id (xid8) is taken before it inserts, and readers only read
-- events of transactions older than the oldest one still in flight
-- (pg_snapshot_xmin), so a reader never sees a position before a lower one
-- commits: the global order is the commit-safe order and no event is skipped.
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    stream          text        NOT NULL,
    version         bigint      NOT NULL,
    event_id        uuid        NOT NULL UNIQUE,
    type            text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    txid            xid8        NOT NULL,
    UNIQUE (stream, version)
);

-- +goose Down
DROP TABLE events;
