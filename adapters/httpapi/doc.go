// Package httpapi is BioSync's HTTP adapter, assembled from rooms of its
// own: the echo server generated from schemas/openapi.yaml (package gen),
// the edge machinery every request passes in this package (request id as
// correlation id, tracing, access log and RED metrics, panic recovery,
// security headers, CORS, bearer auth and the admin gate, content type and
// body limit, abuse limits, Standard Webhooks signatures, validation
// against the spec, Idempotency-Key), the operational routes (ops.go), and
// one package per concept for the handlers (accounts, erasure, ingest,
// queries, preferences, journal, admin), each over its own ports. What handlers
// share with the machinery (the caller, consistency tokens, error kinds)
// is package edge. errors.go is the one place where errors become status
// codes and RFC 9457 problem documents. server.go's server embeds the
// concept handlers, so a new concept's routes land in a new package and
// one more embedded field. It owns no business rules: the domain parses
// push batches, commands decide, and read models answer.
//
// Requests Go's HTTP server refuses before any handler runs (a bad or
// missing Host, a bare CR, headers over Config.MaxHeaderBytes, an
// unsupported transfer coding, a malformed request line, another HTTP
// version, an unknown Expect) would get net/http's plain text without the
// security headers: net/http writes those answers straight to the
// connection and has no hook for them. Serve therefore runs e.Server on a
// Listener whose connections replace exactly those writes with problems
// (refusals.go). This was chosen over checking the request head before
// net/http reads it, which would copy net/http's parser and drift from
// it (a request one side accepts and the other refuses): on the
// connection net/http stays the only judge, and only its answer changes.
// Its answers are fixed texts, written in one write while no handler owns
// the connection (the server's hooks mark a connection from the moment a
// handler gets a request until it is idle again), so a handler's answer
// is never rewritten, even one that copies them byte for byte. Not
// covered: refusals that send nothing (a read timeout, a client that
// hangs up), and the plain-text 400 net/http sends to HTTP on a TLS port,
// which never happens here (TLS ends at the proxy; Serve serves plain
// HTTP).
package httpapi
