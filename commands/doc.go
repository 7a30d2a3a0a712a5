// Package commands is the shared kernel of BioSync's command side: the
// command and outcome types the HTTP layer exchanges with the concept
// packages below it, the records their ports exchange with adapters, the
// ports several concepts share (Accounts, PasswordHasher, Audit), and the
// envelope every appended event gets (Envelope).
//
// The commands themselves live in one package per concept, so each states
// its own dependencies and a wiring mistake is found at start:
// commands/ingestion (pushes, appending samples.pushed), commands/samples
// (a user's deletion of their own samples, appending samples.deleted),
// commands/accounts (registration, email verification, password change
// and reset),
// commands/sessions (login, refresh-token rotation, logout; synchronous
// session state only), commands/mfa (TOTP enrolment and recovery codes;
// synchronous state only), commands/preferences (the settings documents,
// compare-and-set then append), commands/journal (journal entries, one
// per user and local day: claim the day and version, then append),
// commands/erasure (deletion requests
// and the worker that carries them out) and commands/operators (the
// console's grant-admin, reset-mfa and audit verify/list). Commands that append write
// exactly one event (one command, one record, so nothing is ever
// half-written) and answer only after the log acknowledged it; the others
// change command-side state in PostgreSQL synchronously. Concept packages
// import this kernel, never each other; cmd/biosync wires them together.
package commands
