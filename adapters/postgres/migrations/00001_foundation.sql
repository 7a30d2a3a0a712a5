-- +goose Up

-- Command-side state. NOT projections: they cannot be rebuilt from the log
-- and must be backed up like the log itself.

-- Wrapped per-user data keys (crypto-shredding). Destroying a key (wrapped
-- set to NULL) makes every event of that user unreadable forever.
CREATE TABLE data_keys (
    user_id      uuid PRIMARY KEY,
    kek_id       text NOT NULL,
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);

-- Accounts: the synchronous claim on an email address (keyed hash of the
-- normalized address, no plaintext), plus credentials. A row is 'pending'
-- while its user.registered event is being appended, 'active' after.
CREATE TABLE accounts (
    user_id       uuid PRIMARY KEY,
    email_key     bytea NOT NULL UNIQUE,
    password_hash text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'active')),
    role          text NOT NULL DEFAULT 'user',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Projection checkpoints: the next offset to apply per (projector,
-- generation, partition), written in the same transaction as the rows.
CREATE TABLE projection_checkpoints (
    name        text   NOT NULL,
    generation  int    NOT NULL,
    partition   int    NOT NULL,
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, generation, partition)
);

-- users@1: profile read model.
CREATE TABLE users_g1 (
    user_id    uuid PRIMARY KEY,
    email      text NOT NULL,
    timezone   text NOT NULL,
    created_at timestamptz NOT NULL,
    log_offset bigint NOT NULL
);

-- metrics@1: timezone history (for UTC timestamps), normalized samples,
-- daily rollups per local day, sleep sessions, source freshness.
CREATE TABLE tz_history_g1 (
    user_id    uuid NOT NULL,
    valid_from timestamptz NOT NULL,
    zone       text NOT NULL,
    PRIMARY KEY (user_id, valid_from)
);

CREATE TABLE samples_g1 (
    user_id       uuid NOT NULL,
    type          text NOT NULL,
    start_at      timestamptz NOT NULL,
    end_at        timestamptz NOT NULL,
    source        text NOT NULL,
    value         double precision NOT NULL,
    unit          text NOT NULL,
    utc_offset    int NOT NULL,
    local_date    date NOT NULL,
    day_start     timestamptz NOT NULL,
    day_end       timestamptz NOT NULL, -- next local midnight (23 or 25 hours later on DST days)
    day_offset    int NOT NULL,
    log_partition int NOT NULL,
    log_offset    bigint NOT NULL,
    event_id      uuid NOT NULL,
    norm_version  smallint NOT NULL,
    PRIMARY KEY (user_id, type, start_at, end_at, source)
);
CREATE INDEX samples_g1_day ON samples_g1 (user_id, type, local_date);

CREATE TABLE daily_rollups_g1 (
    user_id           uuid NOT NULL,
    type              text NOT NULL,
    local_date        date NOT NULL,
    day_start         timestamptz NOT NULL,
    day_end           timestamptz NOT NULL,
    day_offset        int NOT NULL,
    value             double precision NOT NULL,
    min               double precision NOT NULL,
    max               double precision NOT NULL,
    count             int NOT NULL,
    source            text NOT NULL,
    unit              text NOT NULL,
    algorithm_version smallint NOT NULL,
    PRIMARY KEY (user_id, type, local_date)
);

CREATE TABLE sleep_sessions_g1 (
    user_id           uuid NOT NULL,
    start_at          timestamptz NOT NULL,
    end_at            timestamptz NOT NULL,
    source            text NOT NULL,
    wake_date         date NOT NULL,
    utc_offset        int NOT NULL,
    awake_minutes     double precision NOT NULL,
    light_minutes     double precision NOT NULL,
    deep_minutes      double precision NOT NULL,
    rem_minutes       double precision NOT NULL,
    log_offset        bigint NOT NULL,
    event_id          uuid NOT NULL,
    algorithm_version smallint NOT NULL,
    PRIMARY KEY (user_id, start_at, end_at, source)
);
CREATE INDEX sleep_sessions_g1_wake ON sleep_sessions_g1 (user_id, wake_date);

CREATE TABLE source_freshness_g1 (
    user_id          uuid NOT NULL,
    provider         text NOT NULL,
    device           text NOT NULL,
    last_sample_at   timestamptz NOT NULL,
    last_received_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, provider, device)
);

-- Use TimescaleDB when the server has it; plain PostgreSQL otherwise.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            PERFORM create_hypertable('samples_g1', 'start_at', chunk_time_interval => interval '7 days', migrate_data => true);
            EXECUTE 'ALTER TABLE samples_g1 SET (timescaledb.compress, timescaledb.compress_segmentby = ''user_id, type'')';
            PERFORM add_compression_policy('samples_g1', interval '30 days');
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'timescaledb present but not usable (%); using plain tables', SQLERRM;
        END;
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE source_freshness_g1, sleep_sessions_g1, daily_rollups_g1, samples_g1, tz_history_g1, users_g1,
    projection_checkpoints, accounts, data_keys;
