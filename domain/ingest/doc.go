// Package ingest owns the push batch: the body that phone bridges, trusted
// bridge services and the simulator send (samples and sleep sessions from
// one source). It parses and validates the raw bytes (Parse) and derives
// normalized values from a stored batch (Normalize). The batch itself is
// what the samples.pushed event carries, raw, so a normalization fix is
// deployed by rebuilding projections from the log. A user takes data back
// with a Deletion (a time range, optionally one source and one type), the
// body of samples.deleted.
package ingest
