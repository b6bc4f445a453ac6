-- +goose Up
-- Lectures, tasks, subtasks, enrollment and progress.

-- Write side: identifiers come from sequences (the command handlers allocate
-- them before deciding; a refused command leaves a gap, never a duplicate).
CREATE SEQUENCE lecture_ids;
CREATE SEQUENCE task_ids;
CREATE SEQUENCE subtask_ids;
CREATE SEQUENCE enrollment_ids;

-- Write side: which lecture stream a task or subtask lives in. The command
-- handler writes a row when it allocates the id, so commands addressed by a
-- task or subtask id find their lecture-{id} stream without waiting for any
-- projection. A row whose command was refused points at a lecture whose
-- stream does not hold that id; folding the stream answers 404 then.
CREATE TABLE lecture_task_ids (
    task_id     bigint PRIMARY KEY,
    lecture_id  bigint NOT NULL
);
CREATE TABLE lecture_subtask_ids (
    subtask_id  bigint PRIMARY KEY,
    lecture_id  bigint NOT NULL
);

-- Read models of the "lectures" projector (rm_ = rebuilt from events).
CREATE TABLE rm_lectures (
    id              bigint      PRIMARY KEY,
    instructor_id   bigint      NOT NULL,
    title           text        NOT NULL,
    description     text        NOT NULL,
    thumbnail_url   text        NOT NULL,
    is_active       boolean     NOT NULL,
    enrolled_count  integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX rm_lectures_active_idx ON rm_lectures (is_active, id DESC);
CREATE INDEX rm_lectures_instructor_idx ON rm_lectures (instructor_id, id DESC);

CREATE TABLE rm_lecture_tasks (
    id           bigint      PRIMARY KEY,
    lecture_id   bigint      NOT NULL,
    title        text        NOT NULL,
    description  text        NOT NULL,
    order_index  integer     NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX rm_lecture_tasks_lecture_idx ON rm_lecture_tasks (lecture_id, order_index, id);

-- Removed subtasks stay (removed = true): progress history still names them.
CREATE TABLE rm_lecture_subtasks (
    id                   bigint      PRIMARY KEY,
    task_id              bigint      NOT NULL,
    lecture_id           bigint      NOT NULL,
    title                text        NOT NULL,
    description          text        NOT NULL,
    order_index          integer     NOT NULL,
    target_action        text        NOT NULL,
    target_element_hint  text        NOT NULL,
    guide_text           text        NOT NULL,
    voice_guide_text     text        NOT NULL,
    removed              boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX rm_lecture_subtasks_task_idx ON rm_lecture_subtasks (task_id, order_index, id);
CREATE INDEX rm_lecture_subtasks_lecture_idx ON rm_lecture_subtasks (lecture_id);

CREATE TABLE rm_enrollments (
    enrollment_id  bigint      NOT NULL UNIQUE,
    lecture_id     bigint      NOT NULL,
    user_id        bigint      NOT NULL,
    session_id     bigint,
    enrolled_at    timestamptz NOT NULL,
    last_activity  timestamptz NOT NULL,
    PRIMARY KEY (lecture_id, user_id)
);
CREATE INDEX rm_enrollments_user_idx ON rm_enrollments (user_id, last_activity DESC);

-- One row per (student, lecture, subtask) the student started or completed.
CREATE TABLE rm_subtask_progress (
    lecture_id     bigint      NOT NULL,
    user_id        bigint      NOT NULL,
    subtask_id     bigint      NOT NULL,
    task_id        bigint      NOT NULL,
    subtask_title  text        NOT NULL,
    status         text        NOT NULL,
    started_at     timestamptz,
    completed_at   timestamptz,
    session_id     bigint,
    PRIMARY KEY (lecture_id, user_id, subtask_id)
);

-- +goose Down
DROP TABLE rm_subtask_progress;
DROP TABLE rm_enrollments;
DROP TABLE rm_lecture_subtasks;
DROP TABLE rm_lecture_tasks;
DROP TABLE rm_lectures;
DROP TABLE lecture_subtask_ids;
DROP TABLE lecture_task_ids;
DROP SEQUENCE enrollment_ids;
DROP SEQUENCE subtask_ids;
DROP SEQUENCE task_ids;
DROP SEQUENCE lecture_ids;
