-- +goose Up
-- The append protocol the event store's readers stand on (see the package doc
-- of eventstore/postgres): a transaction that appends to events locks the
-- table (RowExclusiveLock) BEFORE it has a transaction id, and stores its
-- events at positions txid*65536 + i, txid being its own id. Readers take as
-- their bound the smallest id among the in-progress transactions of their
-- snapshot that hold that lock; a transaction that took its id first (it wrote
-- another table, then appends) could hold an id below a bound a reader already
-- used, and its events would be skipped forever. These triggers refuse such an
-- append, whatever path it takes (INSERT, COPY, a seeder, a migration).

-- events_begin_append() starts an append in a transaction that has written
-- nothing yet: it locks events, then takes the transaction id and returns it
-- (the events' positions are that id * 65536 + their index). Calling it again
-- in the same transaction returns the same id.
-- +goose StatementBegin
CREATE FUNCTION events_begin_append() RETURNS xid8
LANGUAGE plpgsql AS $$
DECLARE
    x xid8 := pg_current_xact_id_if_assigned();
BEGIN
    IF x IS NOT NULL THEN
        IF current_setting('lockstep.append_xid', true) = x::text THEN
            RETURN x;
        END IF;
        RAISE EXCEPTION 'event append refused: transaction % took its id before it locked events', x
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Readers of the global log could already have passed its positions and would skip its events.',
                  HINT = 'Append in a transaction of its own, beginning with SELECT events_begin_append().';
    END IF;
    LOCK TABLE events IN ROW EXCLUSIVE MODE;
    x := pg_current_xact_id();
    -- Transaction-local: reset at commit or abort, and undone with the lock
    -- when a savepoint it was taken under is rolled back.
    PERFORM set_config('lockstep.append_xid', x::text, true);
    RETURN x;
END $$;
-- +goose StatementEnd

-- Before any INSERT or COPY into events. The statement has held the table's
-- RowExclusiveLock since it was planned: if the transaction has no id yet, the
-- id it takes now comes after that lock (the one-statement append); if it has
-- one, events_begin_append() must have taken it.
-- +goose StatementBegin
CREATE FUNCTION events_check_append_protocol() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    x xid8 := pg_current_xact_id_if_assigned();
BEGIN
    IF x IS NULL OR current_setting('lockstep.append_xid', true) = x::text THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'event append refused: transaction % took its id before it locked events', x
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = 'Readers of the global log could already have passed its positions and would skip its events.',
              HINT = 'Append in a transaction of its own, beginning with SELECT events_begin_append().';
END $$;
-- +goose StatementEnd

CREATE TRIGGER events_append_protocol BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_check_append_protocol();

-- After any INSERT or COPY into events: every new event is at a position of
-- the inserting transaction (txid*65536 + i) and names it in txid; an event
-- put at another transaction's position could land below a reader's bound.
-- +goose StatementBegin
CREATE FUNCTION events_check_positions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    x xid8 := pg_current_xact_id();
    p bigint;
BEGIN
    SELECT a.position INTO p FROM appended a
    WHERE a.txid <> x OR a.position / 65536 <> x::text::bigint OR a.position < 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'event append refused: position % is not one of transaction % (txid * 65536 + index)', p, x
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER events_positions AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION events_check_positions();

-- +goose Down
DROP TRIGGER events_positions ON events;
DROP TRIGGER events_append_protocol ON events;
DROP FUNCTION events_check_positions();
DROP FUNCTION events_check_append_protocol();
DROP FUNCTION events_begin_append();
