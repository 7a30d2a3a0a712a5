// Package domain holds BioSync's business concepts as pure Go: no I/O, no
// context, only the standard library. Subpackages own one concept each
// (metric, ingest, identity); this root package owns the error kinds that
// every layer classifies with errors.Is/As and that the HTTP adapter maps to
// status codes in exactly one place.
package domain
