// Package projections turns the event log into read models. It holds the
// projector runtime (batches of events applied in one PostgreSQL transaction
// together with the checkpoint, see Runtime), the projectors themselves
// (what rows an event produces), and the query-side view types the API
// serves. Storage-specific SQL lives in adapters/postgres.
package projections
