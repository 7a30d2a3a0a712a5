-- +goose Up

-- The durable record of push deliveries that carried an id (a webhook-id,
-- or an Idempotency-Key scoped to its user), command side: written before
-- the append, so a delivery id that comes back with another batch is
-- refused after any restart and beyond the Redis TTL, and the log never
-- holds two different events under one id. digest is SHA-256 of the
-- batch's canonical JSON (no health data can be read from it); token is
-- where the event landed, empty until the append is confirmed. Rows are
-- kept as long as the account (erasure deletes them by user_id).
CREATE TABLE push_deliveries (
    event_id   uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    digest     bytea       NOT NULL,
    token      text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_deliveries_user ON push_deliveries (user_id);

-- metrics: the samples.pushed events the read model applied, one row per
-- event (not per sample), so a second event under an applied id is
-- skipped when it says the same and refused (a dead letter in state
-- 'refused') when it says something else. Every metrics generation that
-- still has tables gets its own, empty: events applied before this
-- migration are recorded when they are next seen. New generations copy
-- the live generation's tables, this one included.
-- +goose StatementBegin
DO $$
DECLARE
    g int;
BEGIN
    FOR g IN SELECT 1 UNION SELECT generation FROM projection_versions WHERE name = 'metrics' AND state <> 'dropped' ORDER BY 1 LOOP
        CONTINUE WHEN to_regclass(format('samples_g%s', g)) IS NULL;
        EXECUTE format($sql$
            CREATE TABLE pushes_applied_g%1$s (
                event_id      uuid   PRIMARY KEY,
                user_id       uuid   NOT NULL,
                digest        bytea  NOT NULL,
                log_partition int    NOT NULL,
                log_offset    bigint NOT NULL
            )$sql$, g);
        EXECUTE format('CREATE INDEX pushes_applied_g%1$s_user ON pushes_applied_g%1$s (user_id)', g);
    END LOOP;
END $$;
-- +goose StatementEnd

-- 'refused': an event a projector would not apply because another event
-- under its id was applied before. Nobody is parked behind it; operators
-- see it in the dead-letter list.
ALTER TABLE projection_dead_letters DROP CONSTRAINT projection_dead_letters_state_check;
ALTER TABLE projection_dead_letters ADD CONSTRAINT projection_dead_letters_state_check
    CHECK (state IN ('failed', 'parked', 'retry', 'skipped', 'refused'));

-- +goose Down
DELETE FROM projection_dead_letters WHERE state = 'refused';
ALTER TABLE projection_dead_letters DROP CONSTRAINT projection_dead_letters_state_check;
ALTER TABLE projection_dead_letters ADD CONSTRAINT projection_dead_letters_state_check
    CHECK (state IN ('failed', 'parked', 'retry', 'skipped'));
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^pushes_applied_g[0-9]+$' LOOP
        EXECUTE format('DROP TABLE %I', t);
    END LOOP;
END $$;
-- +goose StatementEnd
DROP TABLE push_deliveries;
