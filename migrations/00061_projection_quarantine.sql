-- +goose Up
-- Events a projector could not apply (its own Handle kept failing on them):
-- set aside for that projector so that every later event is still applied.
-- The projector's checkpoint has moved past them; an operator retries
-- (re-applies) or skips (acknowledges) each one through
-- /api/admin/projections/{name}/quarantine/{position}/….
CREATE TABLE projection_quarantine (
    projector   text        NOT NULL,
    position    bigint      NOT NULL,
    stream      text        NOT NULL,
    type        text        NOT NULL,
    error       text        NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    -- How many times the event failed on its own (isolated from its batch,
    -- retried by an operator, met again by a rebuild).
    attempts    integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (projector, position)
);

-- +goose Down
DROP TABLE projection_quarantine;
