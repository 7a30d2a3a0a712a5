-- +goose Up

-- Command side of the journal: which entry holds which local day, at which
-- version. The check of one entry per user and day and of If-Match happens
-- here before the append (per-user log order cannot refuse a second
-- creation or a stale edit: both would be appended). The entries
-- themselves (the note and tag names are personal data) live only in the
-- encrypted events and the journal read model. A deleted entry keeps its
-- row (deleted, the version of its deletion) so a replay of its old events
-- cannot claim its day again. NOT a projection: back it up like accounts.
-- The journal projector raises a version it sees in the log (an append
-- whose outcome was unknown to its handler but landed), never lowers one.
CREATE TABLE journal_days (
    user_id    uuid    NOT NULL,
    entry_id   uuid    PRIMARY KEY,
    local_date date    NOT NULL,
    version    bigint  NOT NULL CHECK (version >= 1),
    deleted    boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX journal_days_one_entry_per_day ON journal_days (user_id, local_date) WHERE NOT deleted;

-- journal@1: the entries behind /v1/journal/entries and the tag counts of
-- /v1/journal/tags. The note is sealed with the user's data key
-- (journal.note; NULL = no note); tag names stay plain because SQL counts
-- and groups them. A deleted entry stays as a tombstone (deleted, no
-- note, no tags) so a redelivered older event cannot bring it back.
CREATE TABLE journal_entries_g1 (
    user_id     uuid     NOT NULL,
    entry_id    uuid     NOT NULL,
    local_date  date     NOT NULL,
    tags        jsonb    NOT NULL,
    mood        smallint,
    energy      smallint,
    stress      smallint,
    note_sealed bytea,
    version     bigint   NOT NULL,
    deleted     boolean  NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    log_offset  bigint   NOT NULL,
    PRIMARY KEY (user_id, entry_id)
);
CREATE INDEX journal_entries_g1_by_day ON journal_entries_g1 (user_id, local_date, entry_id) WHERE NOT deleted;

INSERT INTO projection_versions (name, generation, state, promoted_at) VALUES ('journal', 1, 'live', now());

-- +goose Down
DELETE FROM projection_checkpoints WHERE name = 'journal';
DELETE FROM projection_dead_letters WHERE name = 'journal';
DELETE FROM projection_versions WHERE name = 'journal';
DROP TABLE journal_entries_g1, journal_days;
