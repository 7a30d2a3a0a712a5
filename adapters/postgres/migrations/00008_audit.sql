-- +goose Up

-- Audit log of security events and of reads of someone else's personal
-- data. Append-only and hash-chained: each row's hash covers the previous
-- row's hash, so a changed, removed or reordered row breaks the chain that
-- `biosync audit verify` walks. The application role gets SELECT and INSERT
-- only (see docs/operations.md); the triggers below refuse UPDATE, DELETE
-- and TRUNCATE for every role, the table owner included, unless an
-- operator deliberately disables them (which the chain then exposes).
-- Command-side state, not a projection: it is not rebuilt from the log.
CREATE TABLE audit_log (
    seq       bigint PRIMARY KEY CHECK (seq > 0),
    at        timestamptz NOT NULL,
    action    text NOT NULL,
    actor     uuid,
    subject   uuid,
    ip        text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}',
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- +goose StatementBegin
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_refuse_change();
