// Command biosync-bench measures BioSync against baselines taken side by
// side in the same run (`make bench`). The machines are small and noisy, so
// every figure is a ratio to a baseline measured in the same invocation,
// alternating system and baseline, and the median of several rounds is
// reported (docs/operations.md, "Benchmarks").
//
// It measures four things:
//
//   - Rebuild: a fresh topic is filled with samples.pushed events (small
//     batches from several hundred users, encrypted by the real codec), then
//     the engine.Runtime (users and metrics projectors) replays it from
//     offset 0 into a fresh database until every checkpoint reaches the high
//     water mark. The ratio is normalized sample rows per second of the
//     projector over pgx CopyFrom of the same rows into an identical fresh
//     samples table (target >= 0.5).
//   - Ingest: `biosync serve` runs as a subprocess with its projectors in a
//     second one (`biosync projections run`, the split deployment);
//     signed webhook pushes (POST /v1/webhooks/push) are driven at fixed
//     concurrency and compared with a bare echo JSON endpoint (the
//     `baseline-server` subcommand of this program, also a subprocess) at
//     the same concurrency. Each round measures the command side alone
//     (signature, validation, encryption, Kafka ack before the 2xx: the
//     projector process is stopped with SIGSTOP and catches up afterwards,
//     as after a burst; target >= 0.35) and the whole system with the
//     projectors applying every push on the same cores (reported as
//     ingest_sustained_ratio). Then p99 latency at half the sustained rate,
//     open loop (target < 50 ms).
//   - Freshness: during that half-rate phase a sample of pushes is followed
//     by GET /v1/dashboard/summary carrying the push's X-Consistency-Token;
//     webhook 2xx -> summary reflecting the push, p99 (target < 250 ms).
//   - Dashboard: GET /v1/dashboard/summary on a warm cache against the
//     baseline's bare GET JSON endpoint (target >= 0.8), then p99 at half
//     the measured rate (target < 5 ms).
//
// By default everything is embedded: the rebuild uses an in-process kfake
// cluster and a throwaway PostgreSQL cluster, and the server runs on its
// embedded default in a temporary BIOSYNC_DATA_DIR. BIOSYNC_KAFKA_BROKERS,
// BIOSYNC_DATABASE_URL (a role that may create databases) and
// BIOSYNC_REDIS_URL point both at real services instead; the benchmark then
// uses its own topics and databases and removes them afterwards.
//
// It prints a table (metric | system | baseline | ratio | target | result)
// and writes every figure as JSON to $BENCH_OUT (default
// bench-results.json), including per-round raw figures and, per load phase,
// a breakdown read from the server's /metrics (server CPU, mean push and
// Kafka append time, projector batch size and time) and /proc/stat (how
// busy the whole machine was). A missed target is printed as MISSED but is
// not a failure: the exit status is non-zero only when a measurement could
// not be taken.
//
// --cpuprofile PATH writes CPU profiles named after PATH: -rebuild (this
// process's projectors in the last rebuild round), -ingest and -dashboard
// (the server process during those saturation rounds), -ingest-projector
// (the projector process during the ingest saturation rounds), and
// prints their `go tool pprof -top`. For the server, the binary is then
// built with a build-time overlay (go build -overlay) that adds a
// SIGUSR1-toggled profiler to package main; the project's sources are not
// changed and a normal build does not contain it.
//
// The load generator is net/http in this process, on the same CPUs as the
// servers (like the brief's wrk figures); saturation phases are closed loops
// at --concurrency, half-rate phases are open loops (constant rate on the
// same number of connections, latency measured from each request's
// scheduled start).
package main
