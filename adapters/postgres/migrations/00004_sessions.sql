-- +goose Up

-- Sessions (refresh-token families) and their tokens: command-side state,
-- not projections. A family is one login; every refresh rotates its token.
-- Tokens are stored only as SHA-256 hashes (they carry 256 random bits, so
-- a fast hash is enough: there is nothing to brute-force).
CREATE TABLE refresh_families (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    -- Absolute expiry of the whole family: rotation never extends it.
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text,
    user_agent    text NOT NULL DEFAULT '',
    ip            text NOT NULL DEFAULT '',
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX refresh_families_user ON refresh_families (user_id) WHERE revoked_at IS NULL;
-- Access-token verifiers load the recently revoked families at start and on
-- every reconnect of their invalidation feed.
CREATE INDEX refresh_families_revoked ON refresh_families (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    family_id  uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Set when the token was exchanged; presenting it again is reuse.
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- +goose Down
DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
