// Package biosync is the root of BioSync, an event-sourced personal-health
// backend. It holds no code, only this map; dependencies point inward, as
// architecture_test.go checks:
//
//   - domain/: pure rules (metric units, local days, push batch, identity)
//   - commands/: validate, decide and append one event per command
//   - eventstore/: event envelope, crypto-shredding key ring, ports
//   - projections/: projectors from the log into read models, queries
//   - adapters/: Kafka, PostgreSQL, Redis, HTTP and the other technologies
//   - cmd/biosync: the one binary, which wires everything together
package biosync
