// Package connections is the read model of provider connections as the
// event log tells them: per user and provider the state of the link
// (connection.established, connection.revoked) and when its last record
// was fetched (provider.record_fetched), and the providers' own scores
// (Oura's readiness, sleep and activity scores), kept apart from BioSync's
// metrics: the provider's algorithm, not a measurement.
//
// Tables (one copy per generation, <base>_g<N>): provider_links and
// provider_scores, created by
// adapters/postgres/migrations/00019_provider_connections.sql. The worker's
// own state (sealed tokens, backfill progress, the last error) is
// command-side (provider_connections), since it is not a fact in the log.
package connections
