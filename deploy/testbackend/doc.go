// Package testbackend is how BioSync's tests get their Kafka, PostgreSQL and
// Redis, so that the same test runs against in-process stand-ins on a fresh
// machine and against the real services in CI.
//
// The rule, for every test:
//
//   - BIOSYNC_KAFKA_BROKERS (comma-separated host:port), BIOSYNC_DATABASE_URL
//     (a superuser DSN) and BIOSYNC_REDIS_URL select real services.
//     deploy/scripts/{kafka,postgres,redis}-up.sh start them locally and
//     `make ci` (.ci/run) sets the variables.
//   - Unset means an in-process stand-in from package embedded: one shared
//     in-memory kfake cluster and one throwaway PostgreSQL cluster per test
//     binary (started lazily, on first use), and a fresh miniredis per test.
//   - A test that cannot get its backend fails (t.Fatalf) with a message
//     saying how to provide it. It never skips: a skipped backend test would
//     pass CI without testing anything.
//   - Under `go test -short` (the unit layer) every function here that
//     provides a backend skips the test instead, with a note that it runs in
//     `make test`: the unit layer uses eventstore/memstore and fakes. A test
//     that starts a service or waits for seconds by other means calls
//     [Integration] first.
//
// Packages run in parallel as separate processes against the same real
// services, so each test isolates itself: [Postgres] creates a fresh database
// per test (dropped on cleanup), [UniqueName] gives unique topic, group and
// key-prefix names, and tests must never delete what they did not create
// (no FLUSHDB/FLUSHALL on a real Redis, no deleting other topics).
//
// Contract suites (event store, projector runtime) iterate over
// [KafkaTargets] to run on kfake and, when configured, on real Kafka.
package testbackend
