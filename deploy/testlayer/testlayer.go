// Package testlayer says which layer a test belongs to. `go test -short
// ./...` is the unit layer: fast, in memory (eventstore/memstore and fakes),
// no services. A test that starts PostgreSQL, Kafka (kfake or real), Redis
// (miniredis or real), a child process or waits for seconds is an
// integration test: it calls [Integration] first and runs in `make test`.
//
// Most tests reach it through deploy/testbackend, whose backend functions
// call it; this leaf package exists so that adapters/embedded, which
// testbackend itself imports, can mark its own tests the same way.
package testlayer

import "testing"

// Integration marks t as an integration test that needs what needs names
// ("PostgreSQL", "Kafka", "a child process"): under `go test -short` it is
// skipped with a note saying where it runs; otherwise it returns and the
// test runs (and must get its backend or fail, never skip).
func Integration(t testing.TB, needs string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test (needs %s): runs in `make test`, not in the -short unit layer", needs)
	}
}
