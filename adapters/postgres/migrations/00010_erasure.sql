-- +goose Up

-- Erasure requests (GDPR art. 17). A request waits out its grace period
-- ('scheduled', cancellable), then the worker destroys the user's data key
-- and purges the read models, Redis and account rows ('purging'), purges
-- once more after every instance's key cache has expired (a projector that
-- still held the key may have written rows in between), and records
-- completion ('completed'). The row keeps no personal data: a user id and
-- times. Command-side state, not a projection.
CREATE TABLE deletion_requests (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL,
    status         text NOT NULL CHECK (status IN ('scheduled', 'cancelled', 'purging', 'completed')),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    execute_after  timestamptz NOT NULL,
    purge_again_at timestamptz,
    cancelled_at   timestamptz,
    completed_at   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- At most one open request per user.
CREATE UNIQUE INDEX deletion_requests_open ON deletion_requests (user_id) WHERE status IN ('scheduled', 'purging');
CREATE INDEX deletion_requests_due ON deletion_requests (execute_after) WHERE status = 'scheduled';

-- +goose Down
DROP TABLE deletion_requests;
