-- +goose Up

-- Single-use tokens mailed to a user: email verification and password
-- reset. Only the SHA-256 of a token is stored (tokens are 256 random
-- bits, so a plain hash is enough); a token is spent by setting used_at in
-- the same statement that checks it, so it works once even under races.
-- Command-side state, not a projection.
CREATE TABLE email_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);

-- users read model: when the address was verified (user.email_verified).
-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ '^users_g[0-9]+$' LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN IF NOT EXISTS email_verified_at timestamptz', t);
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE email_tokens;
