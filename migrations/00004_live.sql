-- +goose Up
-- The WebSocket outbox: every message a projector pushed, per channel, at the
-- global position of the event it came from. Written in the projector's
-- transaction; read by sockets that reconnect with ?after= and by replays.
-- json (not jsonb) keeps each payload byte for byte as it was sent.
CREATE TABLE live_messages (
    channel     text        NOT NULL,
    position    bigint      NOT NULL,
    producer    text        NOT NULL,
    payload     json        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, position)
);
CREATE INDEX live_messages_producer_position ON live_messages (producer, position);

-- +goose Down
DROP TABLE live_messages;
