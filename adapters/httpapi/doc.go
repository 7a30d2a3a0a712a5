// Package httpapi is BioSync's HTTP adapter: the echo server generated from
// schemas/openapi.yaml (see package gen), the middleware every request passes
// (request id as correlation id, tracing, access log and RED metrics, panic
// recovery, security headers, CORS, bearer auth, content type and body limit,
// Standard Webhooks signatures, validation against the spec), and handlers
// that translate HTTP to the command and query ports in ports.go. It owns no
// business rules: the domain parses push batches, commands decide, and read
// models answer; errors.go is the one place where error kinds become status
// codes and RFC 9457 problem documents.
package httpapi
