// Package ingest holds the HTTP handlers that accept health data: POST
// /v1/webhooks/push (signed server-to-server batches; the signature was
// checked on the raw bytes by the edge before a handler runs) and POST
// /v1/me/samples (the caller's own app). Both parse with domain/ingest and
// append through one Ingestor port. DELETE /v1/me/samples takes the
// caller's data back (a time range, optionally one source and one type)
// through the Deleter port.
package ingest
