-- +goose Up
-- Admission (CONTRACT "Admission"): who looked which session up by its code
-- (GET /api/sessions/{session_code}) and when. A student who is not enrolled
-- in the lecture may join a session only within an hour of looking it up, or
-- by sending its code in the join body: a guessed numeric id admits no one.
-- Written by the lookup (readapi, through commands.Admission), read by join.
CREATE TABLE session_lookups (
    user_id       bigint      NOT NULL,
    session_id    bigint      NOT NULL,
    looked_up_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, session_id)
);
CREATE INDEX session_lookups_at_idx ON session_lookups (looked_up_at);

-- +goose Down
DROP TABLE session_lookups;
