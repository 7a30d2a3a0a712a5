// Package logbus is a watermill Subscriber over BioSync's own event log
// (the eventstore.Log port, decrypted with the Codec): every partition is
// read from its stored offset, each event of the wanted types becomes one
// watermill message (payload: the decrypted body; metadata: the event
// type, the user id and the correlation id) and the offset advances only
// once the message is acknowledged, so process managers on watermill's
// Router (the provider fetch worker) see every event at least once, in
// per-user order, across restarts. The event store itself stays on sarama
// (appends must report their offsets; see docs/architecture.md).
package logbus
