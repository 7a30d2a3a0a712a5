-- +goose Up

-- Where the account's user.registered event landed in the log (a
-- consistency token), set when the claim is completed. A profile asked for
-- right after login waits for the users read model to reach it instead of
-- answering "not found" while the projector catches up. Empty for accounts
-- completed before this column existed (their registration is long
-- projected).
ALTER TABLE accounts ADD COLUMN registration text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE accounts DROP COLUMN registration;
