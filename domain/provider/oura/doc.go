// Package oura maps Oura API v2 records (usercollection documents as the
// API returns them) to BioSync's canonical samples and sleep sessions:
// pure functions, one per record type, with golden tests. The output is a
// push batch (domain/ingest) from source provider "oura", so an Oura value
// is stored, rolled up and served exactly like a pushed one; Oura's own
// scores come out beside it as provider scores, never as a metric.
package oura
