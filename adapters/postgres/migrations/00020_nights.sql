-- +goose Up

-- metrics: the nightly derived values of issue 11, one row per user and
-- wake date, recomputed by the metrics projector (projections/metrics,
-- nights.go) from the generation's sleep_sessions and samples whenever a
-- batch touches that night, with the rules of domain/nights. Rows hold no
-- log position, so a rebuild gives the same bytes. sleep_sessions gains
-- the start of the first stage that is not awake (the latency's input);
-- sessions stored before this migration have none until a rebuild, and
-- their nights' latency is null. Every metrics generation that still has
-- tables gets both; new generations copy the live generation's tables.
-- +goose StatementBegin
DO $$
DECLARE
    g int;
BEGIN
    FOR g IN SELECT 1 UNION SELECT generation FROM projection_versions WHERE name = 'metrics' AND state <> 'dropped' ORDER BY 1 LOOP
        CONTINUE WHEN to_regclass(format('sleep_sessions_g%s', g)) IS NULL;
        EXECUTE format('ALTER TABLE sleep_sessions_g%1$s ADD COLUMN IF NOT EXISTS first_sleep_at timestamptz', g);
        EXECUTE format($sql$
            CREATE TABLE nights_g%1$s (
                user_id                    uuid             NOT NULL,
                wake_date                  date             NOT NULL,
                source                     text             NOT NULL,
                sleep_minutes              double precision NOT NULL,
                in_bed_minutes             double precision NOT NULL,
                deep_sleep_minutes         double precision NOT NULL,
                rem_sleep_minutes          double precision NOT NULL,
                sleep_latency_minutes      double precision,
                sleep_efficiency           double precision,
                hrv_rmssd                  double precision,
                resting_heart_rate         double precision,
                respiratory_rate           double precision,
                skin_temperature_deviation double precision,
                naps                       int              NOT NULL,
                algorithm_version          smallint         NOT NULL,
                PRIMARY KEY (user_id, wake_date)
            )$sql$, g);
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^nights_g[0-9]+$' LOOP
        EXECUTE format('DROP TABLE %I', t);
    END LOOP;
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^sleep_sessions_g[0-9]+$' LOOP
        EXECUTE format('ALTER TABLE %I DROP COLUMN IF EXISTS first_sleep_at', t);
    END LOOP;
END $$;
-- +goose StatementEnd
