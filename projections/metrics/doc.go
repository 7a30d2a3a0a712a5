// Package metrics is the metrics read model: its projector (normalized
// samples, daily rollups per local day kept by difference through
// per-source partial aggregates, sleep sessions on their wake date, source
// freshness, the timezone history that decides local days, and the
// removal of what a user's samples.deleted selects) and its
// queries (series in raw, hour and day buckets, raw series and sleep
// sessions and nights in keyset pages by their natural keys, and the
// dashboard summary with its two cache levels: in process, then Cache,
// Redis in production, refreshed after each commit by DashboardCache).
//
// Tables (one copy per generation, <base>_g<N>): tz_history, samples,
// daily_rollups, sleep_sessions and source_freshness, created by
// adapters/postgres/migrations/00001_foundation.sql (samples becomes a
// TimescaleDB hypertable there when the extension is usable), and
// daily_source_rollups, created and filled for every existing generation
// by 00006_source_rollups.sql (whose value-to-1e-9-units expression must
// stay the one in rollups.go), and pushes_applied (the samples.pushed
// event ids applied, with their batch digests, so a copy is skipped and a
// different event under an applied id is refused: pushes.go), created by
// 00016_deliveries.sql, and nights (one row per user and wake date, the
// nightly values of domain/nights recomputed whenever a batch touches the
// night: nights.go; read in pages by Reader.Nights), created with the
// sleep_sessions column first_sleep_at by 00020_nights.sql.
//
// The table SQL stays in adapters/postgres/migrations: goose numbers one
// sequence for the whole database, 00001 defines these tables together
// with other read models' and the command side's, and existing databases
// have recorded those versions as applied, so splitting or moving the
// files would re-run or skip them. TestTablesAreTheOnesTheMigrationsCreate
// keeps Tables and the migrations in step.
package metrics
