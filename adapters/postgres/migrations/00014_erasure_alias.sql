-- +goose Up

-- The keyed hash of the address of a user whose erasure is under way:
-- Redis keys of anonymous requests (a stored registration) are named by it,
-- and the account row that holds it is gone after the first purge. Kept
-- with the request until the erasure completes, then cleared.
ALTER TABLE deletion_requests ADD COLUMN email_key bytea;

-- +goose Down
ALTER TABLE deletion_requests DROP COLUMN email_key;
