// Package kafka implements the event store ports on Apache Kafka with IBM
// sarama: topic creation with fixed partitions and infinite retention, an
// idempotent SyncProducer append that reports each record's partition and
// offset (the consistency token), and partition readers for projectors and
// replay.
//
// The event store uses sarama directly rather than watermill-kafka because
// append must return the partition and offset it wrote (watermill's
// publisher only logs them) and projectors must seek to checkpoints stored
// in PostgreSQL. Watermill's Router is for side-effect handlers.
//
// Partitioning: sarama's default hash partitioner (FNV-1a of the key, the
// user id) everywhere; any other producer must use the same or a user's
// events would lose their order.
package kafka
