// Package settings is the settings read model: its projector (each user's
// settings document and notification preferences, defaults at version 0
// from user.registered, then every change event's whole document) and its
// queries (Reader.Profile, Reader.Notifications, and Reader.Units, the
// unit system metric answers are shown in).
//
// The display name is personal data that no query searches by, so it is
// stored sealed with the user's data key (display_name_sealed, see
// DisplayNameField and docs/privacy.md); Units reads the unit system alone
// and opens nothing.
//
// Tables (one copy per generation, <base>_g<N>): settings and
// notification_prefs, created by
// adapters/postgres/migrations/00005_settings.sql (the plaintext
// display_name replaced by display_name_sealed in
// 00017_sealed_personal_fields.sql). The projector also
// raises the command-side document_versions table (00005) to each applied
// change's version.
//
// The table SQL stays in adapters/postgres/migrations: goose numbers one
// sequence for the whole database, 00005 defines the command-side
// document_versions table with these, and existing databases have
// recorded it as applied, so moving the file would re-run or skip it.
// TestTablesAreTheOnesTheMigrationsCreate (projections/catalog) keeps Tables and the migrations
// in step.
package settings
