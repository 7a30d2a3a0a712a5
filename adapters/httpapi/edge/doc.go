// Package edge holds what every handler of the HTTP API shares with the
// machinery around it, so concept handlers (package accounts, ingest,
// queries, ...) can live in packages of their own without importing the
// assembled server: the caller's identity and the request's facts that
// the middleware put into the request (context.go), the error kinds and
// the error type that become RFC 9457 problems (errors.go), the
// read-your-writes protocol (consistency.go), the versioned-document
// protocol of settings and journal entries (versioned.go: If-Match, ETag,
// 428 and 409), signed page cursors and next links (cursor.go), and small
// request helpers (request.go). It knows no concept: a new concept's handlers use it as
// they find it.
package edge
