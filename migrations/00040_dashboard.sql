-- +goose Up
-- Instructor dashboards and statistics (issue 6): the read models of the
-- "dashboard" projector (projections/dashboard.go), queried by
-- readapi/dashboard.go. Every value is derived from events and their own
-- times (never now()), so a rebuild from zero gives the same numbers. Days
-- are UTC dates.

-- One row per lecture: its owner and running counters.
CREATE TABLE dash_lectures (
    lecture_id      bigint  PRIMARY KEY,
    instructor_id   bigint  NOT NULL,
    title           text    NOT NULL,
    total_subtasks  integer NOT NULL DEFAULT 0, -- live (not removed) subtasks
    enrolled        integer NOT NULL DEFAULT 0, -- enrolled students
    completions     bigint  NOT NULL DEFAULT 0, -- (enrolled student, live subtask) pairs completed
    help_requests   bigint  NOT NULL DEFAULT 0  -- every HelpRequested, MANUAL and AUTO
);
CREATE INDEX dash_lectures_instructor_idx ON dash_lectures (instructor_id);

CREATE TABLE dash_tasks (
    task_id      bigint  PRIMARY KEY,
    lecture_id   bigint  NOT NULL,
    order_index  integer NOT NULL
);

-- The plan (removed subtasks stay, flagged) and per-subtask difficulty:
-- help requests and the stuck intervals measured on the subtask.
CREATE TABLE dash_subtasks (
    subtask_id     bigint           PRIMARY KEY,
    lecture_id     bigint           NOT NULL,
    task_id        bigint           NOT NULL,
    task_order     integer          NOT NULL,
    order_index    integer          NOT NULL,
    title          text             NOT NULL,
    removed        boolean          NOT NULL DEFAULT false,
    help_count     integer          NOT NULL DEFAULT 0,
    stuck_count    integer          NOT NULL DEFAULT 0,
    stuck_seconds  double precision NOT NULL DEFAULT 0
);
CREATE INDEX dash_subtasks_lecture_idx ON dash_subtasks (lecture_id, help_count DESC, subtask_id);

-- One row per (lecture, student). A row may exist before the enrollment
-- (joining a session appends ParticipantJoined before StudentEnrolled);
-- the lists show enrolled rows only.
CREATE TABLE dash_students (
    lecture_id             bigint      NOT NULL,
    user_id                bigint      NOT NULL,
    enrolled               boolean     NOT NULL DEFAULT false,
    enrolled_at            timestamptz,
    completed_count        integer     NOT NULL DEFAULT 0, -- live subtasks completed
    first_progress_at      timestamptz,                    -- first SubtaskStarted/Completed
    last_completed_at      timestamptz,                    -- latest completion of a live subtask
    current_subtask_id     bigint,
    current_subtask_title  text,
    current_status         text,
    help_count             integer     NOT NULL DEFAULT 0,
    last_activity          timestamptz,
    PRIMARY KEY (lecture_id, user_id)
);
CREATE INDEX dash_students_list_idx ON dash_students (lecture_id, enrolled_at, user_id) WHERE enrolled;

-- One row per (lecture, student, subtask) the student touched or that
-- became current for them in a live session. current_at: when the step
-- became current (session step, late join, or the student's own start);
-- stuck_end_at: the first completion or help request that ended the
-- student's time on it (measured once).
CREATE TABLE dash_progress (
    lecture_id    bigint      NOT NULL,
    user_id       bigint      NOT NULL,
    subtask_id    bigint      NOT NULL,
    status        text        NOT NULL,
    started_at    timestamptz,
    completed_at  timestamptz,
    current_at    timestamptz,
    stuck_end_at  timestamptz,
    PRIMARY KEY (lecture_id, user_id, subtask_id)
);

CREATE TABLE dash_sessions (
    session_id          bigint PRIMARY KEY,
    lecture_id          bigint NOT NULL,
    status              text   NOT NULL,
    current_subtask_id  bigint
);
CREATE INDEX dash_sessions_lecture_idx ON dash_sessions (lecture_id);

CREATE TABLE dash_participants (
    session_id  bigint NOT NULL,
    user_id     bigint NOT NULL,
    lecture_id  bigint NOT NULL,
    PRIMARY KEY (session_id, user_id)
);

-- Per lecture and UTC day: activity, and the progress snapshot as of the
-- end of that day (the lecture's counters after its last event of the day;
-- a day without a row carries the previous row's snapshot).
CREATE TABLE dash_daily (
    lecture_id       bigint  NOT NULL,
    day              date    NOT NULL,
    active_students  integer NOT NULL DEFAULT 0,
    help_requests    integer NOT NULL DEFAULT 0,
    enrolled         integer NOT NULL DEFAULT 0,
    completions      bigint  NOT NULL DEFAULT 0,
    total_subtasks   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (lecture_id, day)
);

-- Who acted on which day (for distinct active students and STARTED_LEARNING).
CREATE TABLE dash_daily_active (
    lecture_id  bigint NOT NULL,
    day         date   NOT NULL,
    user_id     bigint NOT NULL,
    PRIMARY KEY (lecture_id, day, user_id)
);

-- Open help requests (ANALYZING or ESCALATED); resolved ones are deleted.
CREATE TABLE dash_help_open (
    help_request_id  bigint      PRIMARY KEY,
    lecture_id       bigint      NOT NULL,
    instructor_id    bigint      NOT NULL,
    user_id          bigint      NOT NULL,
    subtask_id       bigint      NOT NULL,
    subtask_title    text        NOT NULL,
    status           text        NOT NULL,
    requested_at     timestamptz NOT NULL
);
CREATE INDEX dash_help_open_instructor_idx ON dash_help_open (instructor_id, requested_at, help_request_id);
CREATE INDEX dash_help_open_time_idx ON dash_help_open (requested_at, help_request_id);
CREATE INDEX dash_help_open_lecture_idx ON dash_help_open (lecture_id, requested_at, help_request_id);

-- +goose Down
DROP TABLE dash_help_open;
DROP TABLE dash_daily_active;
DROP TABLE dash_daily;
DROP TABLE dash_participants;
DROP TABLE dash_sessions;
DROP TABLE dash_progress;
DROP TABLE dash_students;
DROP TABLE dash_subtasks;
DROP TABLE dash_tasks;
DROP TABLE dash_lectures;
