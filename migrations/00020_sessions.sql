-- +goose Up
-- Live sessions (issue 4). Owned by commands/sessions.go, commands/participants.go,
-- projections/sessions.go and readapi/sessions.go.

-- Write side -------------------------------------------------------------

-- Ids of session-{id} and of participants, allocated before the first event.
CREATE SEQUENCE session_ids;
CREATE SEQUENCE participant_ids;

-- Codes of open sessions: a code is reserved when its session is created and
-- released when it ends, so the unique key makes codes unique among open
-- sessions (an ended session's code may be handed out again).
CREATE TABLE session_codes (
    code        text        PRIMARY KEY,
    session_id  bigint      NOT NULL UNIQUE,
    reserved_at timestamptz NOT NULL DEFAULT now()
);

-- Presence of student sockets, shared by every API instance. Each instance
-- heartbeats its row; the sockets of an instance whose heartbeat is stale are
-- dead (the instance crashed) and no longer count as open.
CREATE TABLE session_instances (
    instance_id  text        PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE session_sockets (
    instance_id text        NOT NULL,
    socket_id   bigint      NOT NULL,
    session_id  bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, socket_id)
);
CREATE INDEX session_sockets_user_idx ON session_sockets (session_id, user_id);
-- When the server last saw a student socket of a session (open or close).
CREATE TABLE session_last_seen (
    session_id   bigint      NOT NULL,
    user_id      bigint      NOT NULL,
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, user_id)
);

-- Read models (projector "sessions") --------------------------------------

-- Lecture title and description, for the session views.
CREATE TABLE session_lectures (
    lecture_id  bigint PRIMARY KEY,
    title       text   NOT NULL,
    description text   NOT NULL DEFAULT ''
);

CREATE TABLE live_sessions (
    session_id            bigint      PRIMARY KEY,
    session_code          text        NOT NULL,
    title                 text        NOT NULL,
    lecture_id            bigint      NOT NULL,
    lecture_title         text        NOT NULL,
    instructor_id         bigint      NOT NULL,
    status                text        NOT NULL,
    current_subtask_id    bigint,
    current_task_id       bigint,
    current_title         text,
    current_guide_text    text,
    current_voice_guide   text,
    instructor_message    text        NOT NULL DEFAULT '',
    scheduled_at          timestamptz,
    created_at            timestamptz NOT NULL,
    started_at            timestamptz,
    ended_at              timestamptz,
    participant_count     integer     NOT NULL DEFAULT 0,
    position              bigint      NOT NULL
);
CREATE INDEX live_sessions_code_idx ON live_sessions (session_code);
CREATE INDEX live_sessions_status_idx ON live_sessions (status) WHERE status IN ('IN_PROGRESS', 'PAUSED');

CREATE TABLE session_participants (
    session_id      bigint      NOT NULL,
    user_id         bigint      NOT NULL,
    participant_id  bigint      NOT NULL,
    lecture_id      bigint      NOT NULL,
    status          text        NOT NULL,
    joined_at       timestamptz NOT NULL,
    disconnected_at timestamptz,
    last_seen_at    timestamptz,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_participants_user_idx ON session_participants (user_id, session_id DESC);

-- The seed's session_step_control: every control action, in order.
CREATE TABLE session_step_control (
    position           bigint      PRIMARY KEY,
    session_id         bigint      NOT NULL,
    action             text        NOT NULL,
    from_subtask_id    bigint,
    to_subtask_id      bigint,
    instructor_message text        NOT NULL DEFAULT '',
    occurred_at        timestamptz NOT NULL
);
CREATE INDEX session_step_control_session_idx ON session_step_control (session_id, position);

-- Subtasks each student completed (at any time), for completed_participants.
CREATE TABLE session_completions (
    lecture_id   bigint      NOT NULL,
    user_id      bigint      NOT NULL,
    subtask_id   bigint      NOT NULL,
    completed_at timestamptz NOT NULL,
    PRIMARY KEY (lecture_id, user_id, subtask_id)
);

-- +goose Down
DROP TABLE session_completions;
DROP TABLE session_step_control;
DROP TABLE session_participants;
DROP TABLE live_sessions;
DROP TABLE session_lectures;
DROP TABLE session_last_seen;
DROP TABLE session_sockets;
DROP TABLE session_instances;
DROP TABLE session_codes;
DROP SEQUENCE participant_ids;
DROP SEQUENCE session_ids;
