-- +goose Up

-- Personal data at rest (docs/privacy.md): the users read model keeps the
-- address, and the settings read model the display name, sealed with the
-- user's data key (AES-256-GCM, the user id and field name as associated
-- data) instead of in plain text, so that destroying the key on erasure
-- makes them unreadable at once, in every copy and backup of the rows.
--
-- Only the application holds the keys, so existing rows cannot be sealed
-- here. In every generation of the two tables the plaintext column is
-- dropped, the rows are deleted, and the generation's checkpoints and dead
-- letters are reset: the projectors project them again from the log when
-- serve starts (they decrypt only registrations and settings changes, so
-- this is a read of the log, not a decryption of it). Until they have
-- caught up, GET /v1/me waits for the account's registration as it does
-- right after sign-up, and a settings read answers as before the
-- registration was projected. The tables of analysts' as-of schemas (any
-- other schema) only lose the plaintext column: build them again to read
-- the new one.
-- +goose StatementBegin
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT schemaname, tablename, substring(tablename FROM '^(users|settings)_g') AS base,
            substring(tablename FROM '_g([0-9]+)$')::int AS gen
        FROM pg_tables WHERE tablename ~ '^(users|settings)_g[0-9]+$' LOOP
        IF t.schemaname = current_schema() THEN
            EXECUTE format('DELETE FROM %I.%I', t.schemaname, t.tablename);
            DELETE FROM projection_checkpoints WHERE name = t.base AND generation = t.gen;
            DELETE FROM projection_dead_letters WHERE name = t.base AND generation = t.gen;
            IF t.base = 'users' THEN
                EXECUTE format('ALTER TABLE %I.%I DROP COLUMN email, ADD COLUMN email_sealed bytea NOT NULL', t.schemaname, t.tablename);
            ELSE
                EXECUTE format('ALTER TABLE %I.%I DROP COLUMN display_name, ADD COLUMN display_name_sealed bytea NOT NULL', t.schemaname, t.tablename);
            END IF;
        ELSIF t.base = 'users' THEN
            EXECUTE format('ALTER TABLE %I.%I DROP COLUMN IF EXISTS email', t.schemaname, t.tablename);
        ELSE
            EXECUTE format('ALTER TABLE %I.%I DROP COLUMN IF EXISTS display_name', t.schemaname, t.tablename);
        END IF;
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- The sealed values cannot be turned back into plain text here either: the
-- rows are deleted and projected again, as on the way up.
-- +goose StatementBegin
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT tablename, substring(tablename FROM '^(users|settings)_g') AS base,
            substring(tablename FROM '_g([0-9]+)$')::int AS gen
        FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^(users|settings)_g[0-9]+$' LOOP
        EXECUTE format('DELETE FROM %I', t.tablename);
        DELETE FROM projection_checkpoints WHERE name = t.base AND generation = t.gen;
        DELETE FROM projection_dead_letters WHERE name = t.base AND generation = t.gen;
        IF t.base = 'users' THEN
            EXECUTE format('ALTER TABLE %I DROP COLUMN email_sealed, ADD COLUMN email text NOT NULL', t.tablename);
        ELSE
            EXECUTE format('ALTER TABLE %I DROP COLUMN display_name_sealed, ADD COLUMN display_name text NOT NULL', t.tablename);
        END IF;
    END LOOP;
END $$;
-- +goose StatementEnd
