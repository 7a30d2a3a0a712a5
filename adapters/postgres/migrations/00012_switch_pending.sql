-- +goose Up

-- A rebuild started through the admin API switches reads when it has
-- caught up. The intent is stored here, not only in the memory of the
-- server that took the request: any serve that (re)starts finishes it.
ALTER TABLE projection_versions ADD COLUMN switch_pending boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE projection_versions DROP COLUMN switch_pending;
