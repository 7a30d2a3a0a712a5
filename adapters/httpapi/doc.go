// Package httpapi is BioSync's HTTP adapter, assembled from rooms of its
// own: the echo server generated from schemas/openapi.yaml (package gen),
// the edge machinery every request passes in this package (request id as
// correlation id, tracing, access log and RED metrics, panic recovery,
// security headers, CORS, bearer auth and the admin gate, content type and
// body limit, abuse limits, Standard Webhooks signatures, validation
// against the spec, Idempotency-Key), the operational routes (ops.go), and
// one package per concept for the handlers (accounts, erasure, ingest,
// queries, preferences, admin), each over its own ports. What handlers
// share with the machinery (the caller, consistency tokens, error kinds)
// is package edge. errors.go is the one place where errors become status
// codes and RFC 9457 problem documents. server.go's server embeds the
// concept handlers, so a new concept's routes land in a new package and
// one more embedded field. It owns no business rules: the domain parses
// push batches, commands decide, and read models answer.
package httpapi
