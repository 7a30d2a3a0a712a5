-- +goose Up

-- Pending provider authorizations (POST /v1/connections/{provider}):
-- only the SHA-256 of the state is stored, with the user it is bound to,
-- the provider, the PKCE verifier where the provider uses PKCE, and its
-- expiry (10 minutes). The callback spends a state by deleting it, so a
-- state works once. Rows carry user_id, so erasure deletes them.
CREATE TABLE provider_states (
    state_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL,
    provider   text        NOT NULL,
    verifier   text        NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL
);
CREATE INDEX provider_states_expiry ON provider_states (expires_at);

-- One row per (user, provider): command-side state of a connection. The
-- tokens are sealed with the user's data key (AES-256-GCM, the same
-- Keyring as MFA secrets), so erasure makes them unreadable at once and
-- deletes the row; a revocation sets them to NULL. Sync progress (the
-- backfill window, the data type and page token reached) lives here so a
-- restart resumes the backfill; last_error is in words a user reads.
CREATE TABLE provider_connections (
    user_id          uuid        NOT NULL,
    provider         text        NOT NULL,
    provider_user_id text        NOT NULL,
    status           text        NOT NULL,
    sealed_tokens    bytea,
    connected_at     timestamptz NOT NULL,
    last_sync_at     timestamptz,
    last_data_at     timestamptz,
    backfill_from    timestamptz NOT NULL,
    backfill_to      timestamptz NOT NULL,
    done_until       timestamptz NOT NULL,
    cursor           text        NOT NULL DEFAULT '',
    page             text        NOT NULL DEFAULT '',
    last_error       text        NOT NULL DEFAULT '',
    failures         int         NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, provider)
);
CREATE INDEX provider_connections_provider_user ON provider_connections (provider, provider_user_id);

-- How far each process manager on watermill's Router (the provider fetch
-- worker) has acknowledged each partition of the event log: it resumes
-- there after a restart. Not a read model (no generations): the work it
-- stands for has side effects outside the database.
CREATE TABLE process_offsets (
    consumer    text   NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (consumer, partition)
);

-- connections@1 (projections/connections): each user's link to each
-- provider as the log tells it, and the providers' own scores per local
-- day (Oura readiness, sleep, activity), kept apart from the metrics.
CREATE TABLE provider_links_g1 (
    user_id      uuid        NOT NULL,
    provider     text        NOT NULL,
    status       text        NOT NULL,
    connected_at timestamptz,
    revoked_at   timestamptz,
    last_data_at timestamptz,
    log_offset   bigint      NOT NULL,
    PRIMARY KEY (user_id, provider)
);
CREATE TABLE provider_scores_g1 (
    user_id    uuid   NOT NULL,
    provider   text   NOT NULL,
    kind       text   NOT NULL,
    day        date   NOT NULL,
    value      float8 NOT NULL,
    log_offset bigint NOT NULL,
    PRIMARY KEY (user_id, provider, kind, day)
);
INSERT INTO projection_versions (name, generation, state, promoted_at) VALUES ('connections', 1, 'live', now());

-- +goose Down
DELETE FROM projection_checkpoints WHERE name = 'connections';
DELETE FROM projection_dead_letters WHERE name = 'connections';
DELETE FROM projection_versions WHERE name = 'connections';
DROP TABLE provider_scores_g1, provider_links_g1;
DROP TABLE process_offsets;
DROP TABLE provider_connections;
DROP TABLE provider_states;
