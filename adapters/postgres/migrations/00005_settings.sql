-- +goose Up

-- Command side of the editable documents (settings, notification
-- preferences): only the version per (user, document), the compare-and-set
-- point of If-Match. The documents themselves (a display name is personal
-- data) live only in the encrypted events and the settings read model.
-- NOT a projection: back it up like accounts. The settings projector raises
-- a version it sees in the log (an append whose outcome was unknown to its
-- handler but landed), never lowers one.
CREATE TABLE document_versions (
    user_id    uuid   NOT NULL,
    document   text   NOT NULL CHECK (document IN ('settings', 'notification_preferences')),
    version    bigint NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, document)
);

-- settings@1: the settings document behind GET /v1/me/settings, seeded
-- with defaults (version 0) by user.registered.
CREATE TABLE settings_g1 (
    user_id      uuid PRIMARY KEY,
    display_name text   NOT NULL,
    timezone     text   NOT NULL,
    units        text   NOT NULL,
    version      bigint NOT NULL,
    log_offset   bigint NOT NULL
);

-- settings@1: the notification preferences behind
-- GET /v1/me/notification-preferences (quiet hours NULL = none).
CREATE TABLE notification_prefs_g1 (
    user_id              uuid PRIMARY KEY,
    daily_summary        boolean NOT NULL,
    daily_summary_time   text    NOT NULL,
    quiet_start          text,
    quiet_end            text,
    email                boolean NOT NULL,
    push                 boolean NOT NULL,
    version              bigint  NOT NULL,
    log_offset           bigint  NOT NULL,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

INSERT INTO projection_versions (name, generation, state, promoted_at) VALUES ('settings', 1, 'live', now());

-- +goose Down
DELETE FROM projection_checkpoints WHERE name = 'settings';
DELETE FROM projection_dead_letters WHERE name = 'settings';
DELETE FROM projection_versions WHERE name = 'settings';
DROP TABLE notification_prefs_g1, settings_g1, document_versions;
