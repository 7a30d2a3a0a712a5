-- +goose Up

-- Per-user dead letters of projectors. An event a projector cannot apply is
-- 'failed' (with the error); that user's later events for that projector
-- are 'parked' behind it, in log order, while other users keep flowing.
-- An operator 'retry's (re-applies in order) or 'skipped' the failed event.
CREATE TABLE projection_dead_letters (
    name        text   NOT NULL,
    generation  int    NOT NULL,
    partition   int    NOT NULL,
    log_offset  bigint NOT NULL,
    user_id     uuid   NOT NULL,
    event_id    uuid   NOT NULL,
    event_type  text   NOT NULL,
    state       text   NOT NULL CHECK (state IN ('failed', 'parked', 'retry', 'skipped')),
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, generation, partition, log_offset)
);
CREATE INDEX projection_dead_letters_user ON projection_dead_letters (name, generation, user_id, log_offset);

-- +goose Down
DROP TABLE projection_dead_letters;
