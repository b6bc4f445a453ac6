-- +goose Up
-- Identity: plain tables, never events (a password hash must never enter an
-- immutable log). Owned by package auth.

-- users: email is unique case-insensitively (the index on lower(email)); it is
-- stored as the user typed it and looked up by lower(email).
CREATE TABLE users (
    id             bigserial   PRIMARY KEY,
    email          text        NOT NULL,
    phone          text,
    password_hash  text        NOT NULL,
    name           text        NOT NULL,
    age            integer     CHECK (age BETWEEN 1 AND 150),
    role           text        NOT NULL CHECK (role IN ('STUDENT', 'INSTRUCTOR', 'ANALYST', 'ADMIN')),
    digital_level  text        CHECK (digital_level IN ('BEGINNER', 'INTERMEDIATE', 'ADVANCED')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- refresh_tokens: opaque tokens, stored only as their SHA-256. Every refresh
-- marks the presented token used and issues a new one in the same family; a
-- used token presented again revokes its whole family (theft detection).
CREATE TABLE refresh_tokens (
    id           bigserial   PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea       NOT NULL UNIQUE,
    family_id    uuid        NOT NULL,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- login_failures: one row per failed login, shared by every API instance, for
-- the login rate limit (per lower-cased email and per client address, within
-- a sliding window). Rows older than the window are pruned as logins happen.
CREATE TABLE login_failures (
    id         bigserial   PRIMARY KEY,
    email      text        NOT NULL,
    address    text        NOT NULL,
    failed_at  timestamptz NOT NULL
);
CREATE INDEX login_failures_email_idx ON login_failures (email, failed_at);
CREATE INDEX login_failures_address_idx ON login_failures (address, failed_at);
CREATE INDEX login_failures_failed_at_idx ON login_failures (failed_at);

-- +goose Down
DROP TABLE login_failures;
DROP TABLE refresh_tokens;
DROP TABLE users;
