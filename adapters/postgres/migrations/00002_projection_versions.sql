-- +goose Up

-- Registry of projector generations for blue/green rebuilds. Exactly one
-- generation per projector is 'live' (served to readers); a rebuild creates
-- a 'building' one beside it; after the switch the old one is 'standby'
-- (rollback target) until dropped. Dropped rows stay (state 'dropped') so
-- generation numbers are never reused.
CREATE TABLE projection_versions (
    name        text NOT NULL,
    generation  int  NOT NULL,
    state       text NOT NULL CHECK (state IN ('building', 'live', 'standby', 'dropped')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    promoted_at timestamptz,
    error       text, -- why this (non-live) generation halted; it is not restarted

    PRIMARY KEY (name, generation)
);
CREATE UNIQUE INDEX projection_versions_one_live ON projection_versions (name) WHERE state = 'live';

INSERT INTO projection_versions (name, generation, state, promoted_at) VALUES
    ('users', 1, 'live', now()),
    ('metrics', 1, 'live', now());

-- +goose Down
DROP TABLE projection_versions;
