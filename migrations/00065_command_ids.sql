-- +goose Up
-- The ids a command allocated from a sequence for a new stream (a help
-- request, a session, a lecture), by the command's key and the sequence:
-- the same command sent again after its first attempt (its answer lost, its
-- instance killed) gets the same id, so it finds its first attempt's stream
-- (eventstore.CommandScope) instead of creating a second one. scope is the
-- SHA-256 (hex) of the command scope. Pruned with
-- the idempotency keys.
CREATE TABLE command_ids (
    scope       text        PRIMARY KEY,
    id          bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_ids_created_at_idx ON command_ids (created_at);

-- +goose Down
DROP TABLE command_ids;
