// Package eventstore defines BioSync's event log: the envelope every event
// travels in, its wire format (Kafka headers + JSON value), per-user payload
// encryption (crypto-shredding), log positions and the consistency tokens
// built from them, and the ports (Appender, Log) that adapters/kafka
// implements. The log is the source of truth; everything else is derived.
package eventstore
