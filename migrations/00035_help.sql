-- +goose Up
-- Help requests and notifications (issue 5). Owned by commands/help.go,
-- projections/help.go, readapi/help.go, readapi/notifications.go and stuck/.

-- Write side -------------------------------------------------------------

-- Ids of help-{id} streams and of help responses, allocated before deciding
-- (a refused command leaves a gap, never a duplicate).
CREATE SEQUENCE help_request_ids;
CREATE SEQUENCE help_response_ids;

-- Which help-{id} stream a response id was allocated for, so that feedback
-- (addressed by help_response_id) finds its stream without any projection.
-- A row whose command was refused or ignored names a stream that does not
-- hold that response; the decider answers 404 then.
CREATE TABLE help_response_streams (
    help_response_id  bigint PRIMARY KEY,
    help_request_id   bigint NOT NULL
);

-- The stuck detector's guard: the last AUTO request it raised per student and
-- step. Raising again needs the previous one to be closed and the cooldown to
-- have passed; the conditional upsert lets one instance win when several run.
CREATE TABLE help_auto_raised (
    user_id          bigint      NOT NULL,
    subtask_id       bigint      NOT NULL,
    help_request_id  bigint      NOT NULL,
    session_id       bigint      NOT NULL,
    raised_at        timestamptz NOT NULL,
    PRIMARY KEY (user_id, subtask_id)
);

-- Notification read flags: a plain table, not events. notification_id is the
-- global position of the event the notification came from, so the flags
-- survive a rebuild of the read models.
CREATE TABLE notification_reads (
    notification_id  bigint      PRIMARY KEY,
    user_id          bigint      NOT NULL,
    read_at          timestamptz NOT NULL DEFAULT now()
);

-- Read models (projector "help") -------------------------------------------

-- Lecture titles, for the instructor's help socket.
CREATE TABLE rm_help_lectures (
    lecture_id  bigint PRIMARY KEY,
    title       text   NOT NULL
);

CREATE TABLE rm_help_requests (
    id                      bigint           PRIMARY KEY,
    user_id                 bigint           NOT NULL,
    lecture_id              bigint           NOT NULL,
    instructor_id           bigint           NOT NULL,
    task_id                 bigint           NOT NULL,
    subtask_id              bigint           NOT NULL,
    subtask_title           text             NOT NULL,
    session_id              bigint,
    request_type            text             NOT NULL,
    context_data            json,
    stuck_duration_seconds  integer          NOT NULL,
    status                  text             NOT NULL,
    problem_diagnosis       text,
    confidence_score        double precision,
    escalation_reason       text             NOT NULL DEFAULT '',
    requested_at            timestamptz      NOT NULL,
    analyzed_at             timestamptz,
    resolved_at             timestamptz,
    position                bigint           NOT NULL
);
CREATE INDEX rm_help_requests_instructor_idx ON rm_help_requests (instructor_id, status, requested_at DESC);
CREATE INDEX rm_help_requests_user_idx ON rm_help_requests (user_id, subtask_id, status);
CREATE INDEX rm_help_requests_lecture_idx ON rm_help_requests (lecture_id, requested_at DESC);
CREATE INDEX rm_help_requests_session_idx ON rm_help_requests (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE rm_help_responses (
    id                bigint      PRIMARY KEY,
    help_request_id   bigint      NOT NULL,
    responder         text        NOT NULL,
    responder_id      bigint,
    help_type         text        NOT NULL,
    help_content      text        NOT NULL,
    voice_guide_text  text        NOT NULL,
    provided_at       timestamptz NOT NULL,
    rating            integer,
    feedback_text     text,
    feedback_at       timestamptz
);
CREATE INDEX rm_help_responses_request_idx ON rm_help_responses (help_request_id, provided_at DESC);

-- id is the global position of the event the notification came from.
CREATE TABLE rm_notifications (
    id                 bigint      PRIMARY KEY,
    user_id            bigint      NOT NULL,
    type               text        NOT NULL,
    message            text        NOT NULL,
    related_user_id    bigint,
    related_user_name  text,
    help_request_id    bigint,
    created_at         timestamptz NOT NULL
);
CREATE INDEX rm_notifications_user_idx ON rm_notifications (user_id, created_at DESC, id DESC);

-- +goose Down
DROP TABLE rm_notifications;
DROP TABLE rm_help_responses;
DROP TABLE rm_help_requests;
DROP TABLE rm_help_lectures;
DROP TABLE notification_reads;
DROP TABLE help_auto_raised;
DROP TABLE help_response_streams;
DROP SEQUENCE help_response_ids;
DROP SEQUENCE help_request_ids;
