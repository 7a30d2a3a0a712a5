// Package journal is the journal read model: its projector (each entry as
// its last journal.entry_written or journal.entry_deleted in log order
// left it) and its queries (Reader.Entry, Reader.Entries by local day in
// pages, Reader.Tags with counts and last use).
//
// The note is personal data no query searches by, so it is stored sealed
// with the user's data key (note_sealed, see NoteField and
// docs/privacy.md); tag names stay plain because SQL counts and groups
// them (and insights will correlate them), and are deleted by erasure.
//
// Tables (one copy per generation, <base>_g<N>): journal_entries, created
// by adapters/postgres/migrations/00018_journal.sql. The projector also
// raises the command-side journal_days table (00018) to each applied
// event's version.
//
// The table SQL stays in adapters/postgres/migrations: goose numbers one
// sequence for the whole database, and 00018 defines the command-side
// table with it. TestTablesAreTheOnesTheMigrationsCreate
// (projections/catalog) keeps Tables and the migrations in step.
package journal
