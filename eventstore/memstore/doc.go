// Package memstore is an in-memory event store: the eventstore.Appender and
// eventstore.Log ports over per-partition slices, for the fast unit layer
// only (`go test -short`). It is never wired into the biosync binary: the
// binary, its embedded default and `make test` use adapters/kafka (kfake or
// a real broker).
//
// It keeps the log's semantics, and it passes the same contract suite
// (eventstore/eventstoretest) that adapters/kafka passes on kfake and real
// Kafka: records are encoded and sealed by the eventstore.Codec, keyed by
// user id and placed on a fixed number of partitions by sarama's default
// hash partitioner (FNV-1a of the key, the partitioner production's
// producer is configured with); offsets count from 0 per partition;
// timestamps have Kafka's millisecond precision; a read beyond the end of a
// partition is eventstore.ErrOffsetOutOfRange.
//
// Tests inject log failures with [Store.Inject]: an append that certainly
// failed (eventstore.ErrNotAppended), one whose outcome is unknown although
// the record landed, and unreachable reads. [KeyStore] keeps data keys in
// memory, so a codec needs no database.
package memstore
