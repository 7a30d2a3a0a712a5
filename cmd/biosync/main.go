// Command biosync is the one BioSync binary: `serve` runs the HTTP API and
// the projectors, `migrate` brings the schema up to date, `projections`
// runs, lists and rebuilds projectors (blue/green), `deadletters` and
// `events` are the operators' and analysts' tools, and `simulate` fills a
// running server with synthetic data.
//
// With no configuration everything runs embedded (in-process Kafka, Redis
// and a throwaway PostgreSQL cluster under BIOSYNC_DATA_DIR); with
// BIOSYNC_KAFKA_BROKERS, BIOSYNC_DATABASE_URL and BIOSYNC_REDIS_URL the same
// code runs against real clusters.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// gcPercent is the collector's target unless the operator set GOGC.
// BioSync's processes keep small live heaps (every cache is bounded) and
// allocate per request, so Go's default of 100 runs the collector many
// times a second under load; at 400 the dashboard's p99 at half
// saturation was 3.0-4.2 ms instead of 5.0-6.2 (make bench, alternating
// runs) for a few times the heap's small live size in memory. It is
// paired with a soft memory limit (memoryLimit): GOMEMLIMIT when set, else
// three quarters of the container's limit, else 256 MiB.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The runtime read GOMEMLIMIT itself when it is set.
		debug.SetMemoryLimit(memoryLimit(os.ReadFile))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "biosync:", err)
		os.Exit(1)
	}
}
