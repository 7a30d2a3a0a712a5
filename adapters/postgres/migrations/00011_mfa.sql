-- +goose Up

-- TOTP multi-factor authentication: command-side state, like accounts and
-- sessions (back it up with them). One row per user who started an
-- enrolment; enabled_at is NULL while it is pending (a new enrolment
-- replaces a pending secret). The secret is sealed with the user's data key
-- (AES-256-GCM), so erasure makes it unreadable the moment the key is
-- destroyed, backups included; the erasure worker also purges the rows
-- (they have a user_id column).
CREATE TABLE mfa_totp (
    user_id    uuid PRIMARY KEY,
    secret     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    enabled_at timestamptz,
    -- The last accepted TOTP time step (unix seconds / 30). A code is
    -- accepted only for a later step, by a conditional UPDATE, so a code
    -- works once even when two logins race with it.
    last_step  bigint NOT NULL DEFAULT 0
);

-- Recovery codes: HMAC-SHA256 under a server key (never the code), each
-- single-use (spent by the UPDATE that checks it). A new set deletes the old.
CREATE TABLE mfa_recovery_codes (
    user_id   uuid NOT NULL,
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- Whether the session was opened with a second factor: refreshes keep it
-- (access tokens say amr ["pwd","otp"]); admin routes require it.
ALTER TABLE refresh_families ADD COLUMN mfa boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE refresh_families DROP COLUMN mfa;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_totp;
