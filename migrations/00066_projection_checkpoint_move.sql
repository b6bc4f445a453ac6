-- +goose Up
-- projection_checkpoint_move(name, from, to) moves a projector's checkpoint
-- from position "from" to "to", and the row stays locked until the
-- transaction ends. When the checkpoint no longer says "from" (a rebuild or
-- another runner moved it) nothing moves: it raises SQLSTATE LS409 and the
-- transaction aborts. A projector's batch can then be sent in one round trip
-- (BEGIN, this, the batch's writes, COMMIT) and still never commit over a
-- checkpoint that moved under it.
-- +goose StatementBegin
CREATE FUNCTION projection_checkpoint_move(p_name text, p_from bigint, p_to bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE projection_checkpoints
       SET position = p_to, status = 'running', last_error = '', failures = 0, updated_at = now()
     WHERE name = p_name AND position = p_from;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'checkpoint of % moved from %', p_name, p_from USING ERRCODE = 'LS409';
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION projection_checkpoint_move(text, bigint, bigint);
