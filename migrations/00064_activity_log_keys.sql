-- +goose Up
-- Idempotency-Keys of the log endpoints (issue 14): the first request with a
-- key reserves its log ids here before it publishes; a retry with the same key
-- and body publishes the same ids again, which the writer stores once
-- (activity_logs' primary key), and answers what the first answered. Pruned
-- with the command keys' retention (housekeeping).
CREATE TABLE activity_log_keys (
    user_id     bigint      NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL, -- sha256 of the path and body
    log_ids     bigint[]    NOT NULL,
    received_at timestamptz NOT NULL, -- the first request's time, reused by retries
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX activity_log_keys_created_idx ON activity_log_keys (created_at);

-- +goose Down
DROP TABLE activity_log_keys;
