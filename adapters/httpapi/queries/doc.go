// Package queries holds the HTTP handlers that read the caller's data:
// GET /v1/me, GET /v1/metrics/{type}, GET /v1/sleep/sessions and GET
// /v1/dashboard/summary (with the dashboard's wire form and its encoding
// cache). Every read is scoped to the caller, honours a consistency token
// and answers in the caller's unit system. Raw series and sleep lists come
// in pages (cursor.go): a `next` URL and Link header carry a signed cursor
// of the read model's position, so a long range is never cut off silently.
package queries
