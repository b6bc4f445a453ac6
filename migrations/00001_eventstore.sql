-- +goose Up
-- The event store. position is the event's place in the global log:
--   position = txid * 65536 + index of the event within its append.
-- An appending transaction locks this table before it takes its id (xid8;
-- enforced by migration 00060), and readers only read below the oldest id
-- among the in-progress transactions of their snapshot that hold that lock
-- (or below the snapshot's xmax), so a reader never sees a position before a
-- lower one commits: no event is skipped. See eventstore/postgres.
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
