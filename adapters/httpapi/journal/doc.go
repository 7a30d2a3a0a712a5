// Package journal holds the HTTP handlers of the caller's journal:
// /v1/journal/entries (create, list by local day in pages, read, replace
// and delete with If-Match) and /v1/journal/tags (the caller's tags with
// counts, and the suggested catalog). Entries are versioned documents like
// the settings (the edge's IfMatch, ETag and Stale); the day and version
// claims are commands/journal's.
package journal
