// Package metric defines the metric types BioSync understands, their
// canonical units, the unit conversions accepted on ingest, and how a value
// is attributed to the user's local day. Everything here is pure and
// versioned: a change in normalization bumps NormalizationVersion and is
// deployed by rebuilding the projections from the log.
package metric
