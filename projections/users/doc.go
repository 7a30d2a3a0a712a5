// Package users is the users read model: its projector (the profile of
// each registered user: address, current timezone, when the address was
// verified) and its query (Reader.Me, behind GET /v1/me).
//
// The address is personal data that no query searches by, so it is stored
// sealed with the user's data key (email_sealed, see EmailField and
// docs/privacy.md): destroying the key on erasure makes it unreadable in
// every generation and backup before any row is purged.
//
// Tables (one copy per generation, users_g<N>): users, created by
// adapters/postgres/migrations/00001_foundation.sql (email_verified_at
// added by 00009_email_tokens.sql, the plaintext email replaced by
// email_sealed in 00017_sealed_personal_fields.sql). The projector also settles the
// command-side accounts table (00001): a registration whose append outcome
// was unknown becomes active when its event is projected.
//
// The table SQL stays in adapters/postgres/migrations: goose numbers one
// sequence for the whole database, 00001 defines the tables of several
// read models and the command side together, and existing databases have
// recorded those versions as applied, so splitting or moving the files
// would re-run or skip them. TestTablesAreTheOnesTheMigrationsCreate (projections/catalog) keeps
// Tables and the migrations in step.
package users
