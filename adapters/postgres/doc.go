// Package postgres holds BioSync's PostgreSQL adapters: the connection pool,
// the embedded schema migrations (goose), the data-key store behind
// crypto-shredding, the command-side account table (the synchronous email
// claim), and the projection checkpoints. Read-model SQL lives with the
// projectors in package projections; this package owns the schema they use.
//
// Timescale-aware: when the timescaledb extension can be created, metric
// tables become hypertables; without it the same schema runs on plain
// PostgreSQL (which is what the tests use). Rollups are ordinary tables
// maintained by projectors, so queries are the same either way.
package postgres
