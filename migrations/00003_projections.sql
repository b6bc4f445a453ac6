-- +goose Up
-- One row per projector: how far it has applied the global log, and whether it
-- is healthy. The read models it writes and this row change in one transaction.
CREATE TABLE projection_checkpoints (
    name        text        PRIMARY KEY,
    position    bigint      NOT NULL DEFAULT 0,
    status      text        NOT NULL DEFAULT 'running',
    last_error  text        NOT NULL DEFAULT '',
    failures    integer     NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Answers already given to commands sent with an Idempotency-Key, per caller.
CREATE TABLE idempotency_keys (
    user_id      bigint      NOT NULL,
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,
    status       integer,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE projection_checkpoints;
