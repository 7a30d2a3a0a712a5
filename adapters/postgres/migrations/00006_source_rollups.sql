-- +goose Up

-- metrics: per-(user, type, local day, source) partial aggregates. The
-- projector keeps them up to date by the difference a batch makes (the
-- samples it adds, replaces or moves to another day), so a batch costs what
-- the batch holds, not what the day already holds; daily_rollups is then
-- recomputed from these few rows. Sums are exact (integers of 1e-9 units,
-- each sample's value rounded half-to-even: values are already rounded to
-- 1e-9 on the way in), so a total never depends on the order in which
-- samples were added and removed, nor on batch boundaries. min/max and the
-- day columns are recomputed from the samples only when a sample that
-- held one of them is replaced or leaves.
--
-- Every metrics generation that still has tables gets its own table,
-- filled from its samples; its daily rollups are recomputed from it (the
-- exact sums may differ from the old floating-point ones in the last bit).
-- New generations copy the live generation's tables, this one included.
-- +goose StatementBegin
DO $$
DECLARE
    g int;
BEGIN
    FOR g IN SELECT generation FROM projection_versions WHERE name = 'metrics' AND state <> 'dropped' ORDER BY generation LOOP
        CONTINUE WHEN to_regclass(format('samples_g%s', g)) IS NULL OR to_regclass(format('daily_rollups_g%s', g)) IS NULL;
        EXECUTE format($sql$
            CREATE TABLE daily_source_rollups_g%1$s (
                user_id    uuid NOT NULL,
                type       text NOT NULL,
                local_date date NOT NULL,
                source     text NOT NULL,
                total_nano numeric NOT NULL, -- sum of round(value * 1e9): exact, order-independent
                count      int NOT NULL,
                min        double precision NOT NULL, -- -0 stored as 0
                max        double precision NOT NULL,
                day_start  timestamptz NOT NULL, -- min over the source's samples of that day
                day_end    timestamptz NOT NULL,
                day_offset int NOT NULL,
                unit       text NOT NULL,
                PRIMARY KEY (user_id, type, local_date, source)
            )$sql$, g);
        EXECUTE format($sql$
            INSERT INTO daily_source_rollups_g%1$s (user_id, type, local_date, source, total_nano, count, min, max, day_start, day_end, day_offset, unit)
            SELECT user_id, type, local_date, source, sum(round(value * 1e9::float8)::bigint), count(*), min(value) + 0::float8, max(value) + 0::float8,
                min(day_start), min(day_end), min(day_offset), min(unit)
            FROM samples_g%1$s GROUP BY 1, 2, 3, 4$sql$, g);
        -- The same derivation as projections.Metrics (recomputeRollups);
        -- each row keeps the algorithm version it was written with.
        EXECUTE format($sql$
            WITH cumulative AS (
                SELECT DISTINCT ON (user_id, type, local_date) user_id, type, local_date, day_start, day_end, day_offset,
                    (total_nano * 0.000000001)::float8 AS value, min AS mn, max AS mx, count AS n, source, unit
                FROM daily_source_rollups_g%1$s WHERE type IN ('steps', 'active_energy', 'distance')
                ORDER BY user_id, type, local_date, total_nano DESC, source
            ), level AS (
                SELECT user_id, type, local_date, min(day_start) AS day_start, min(day_end) AS day_end, min(day_offset) AS day_offset,
                    (sum(total_nano) * 0.000000001 / sum(count))::float8 AS value, min(min) AS mn, max(max) AS mx, sum(count) AS n,
                    (array_agg(source ORDER BY count DESC, source))[1] AS source, min(unit) AS unit
                FROM daily_source_rollups_g%1$s WHERE type NOT IN ('steps', 'active_energy', 'distance')
                GROUP BY 1, 2, 3
            ), derived AS (
                SELECT * FROM cumulative UNION ALL SELECT * FROM level
            )
            UPDATE daily_rollups_g%1$s r SET day_start = d.day_start, day_end = d.day_end, day_offset = d.day_offset, value = d.value,
                min = d.mn, max = d.mx, count = d.n, source = d.source, unit = d.unit
            FROM derived d WHERE r.user_id = d.user_id AND r.type = d.type AND r.local_date = d.local_date$sql$, g);
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^daily_source_rollups_g[0-9]+$' LOOP
        EXECUTE format('DROP TABLE %I', t);
    END LOOP;
END $$;
-- +goose StatementEnd
