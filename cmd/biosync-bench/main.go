package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "baseline-server" {
		if err := runBaselineServer(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "biosync-bench baseline-server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// allPhases are the phases a default run measures.
var allPhases = []string{"rebuild", "ingest", "dashboard"}

// run is the whole benchmark; it returns the exit status: 0 when every
// requested figure was measured (whether or not it met its target), 1 when
// a measurement failed, 2 for bad flags.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("biosync-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 50_000, "samples.pushed events in the rebuild topic")
	rebuildUsers := fs.Int("rebuild-users", 500, "distinct users in the rebuild topic")
	rounds := fs.Int("rounds", 3, "rounds per figure (the median is reported)")
	duration := fs.Duration("duration", 4*time.Second, "measurement window of each HTTP load phase")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "discarded start of each HTTP load phase")
	concurrency := fs.Int("concurrency", 64, "concurrent connections of the saturation phases")
	users := fs.Int("users", 32, "users registered through the API for the HTTP phases")
	phases := fs.String("phases", strings.Join(allPhases, ","), "comma-separated phases to run: "+strings.Join(allPhases, ", "))
	cpuProfile := fs.String("cpuprofile", "", "write CPU profiles, named after this path: <name>-rebuild (this process's projectors, last rebuild round), <name>-ingest and <name>-dashboard (the server during those saturation rounds)")
	serverBin := fs.String("server-bin", "", "use this biosync binary instead of building ./cmd/biosync")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: biosync-bench [flags]   (results as JSON in $BENCH_OUT, default bench-results.json)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	want := map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(allPhases, p) {
			fmt.Fprintf(stderr, "biosync-bench: unknown phase %q (want %s)\n", p, strings.Join(allPhases, ", "))
			return 2
		}
		want[p] = true
	}
	if *events < 1 || *rebuildUsers < 1 || *rounds < 1 || *duration <= 0 || *warmup < 0 || *concurrency < 1 || *users < 1 {
		fmt.Fprintln(stderr, "biosync-bench: --events, --rebuild-users, --rounds, --duration, --concurrency and --users must be positive")
		return 2
	}
	if *cpuProfile != "" {
		abs, err := filepath.Abs(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "biosync-bench:", err)
			return 2
		}
		*cpuProfile = abs
	}
	out := getenv("BENCH_OUT")
	if out == "" {
		out = "bench-results.json"
	}

	began := time.Now()
	rep := &report{
		Rounds:  *rounds,
		Machine: thisMachine(),
		Started: began.UTC().Truncate(time.Second),
		Config: runConfig{Events: *events, RebuildUsers: *rebuildUsers, Rounds: *rounds, DurationS: duration.Seconds(), WarmupS: warmup.Seconds(),
			Concurrency: *concurrency, Users: *users, Phases: *phases},
	}
	fmt.Fprintf(stderr, "biosync-bench: %s/%s, %d CPUs, %s; phases %s, %d rounds\n",
		rep.Machine.GOOS, rep.Machine.GOARCH, rep.Machine.NumCPU, rep.Machine.GoVersion, *phases, *rounds)

	if want["rebuild"] {
		b, err := openBackends(ctx, getenv, true)
		if err != nil {
			rep.Errors = append(rep.Errors, "rebuild: "+err.Error())
		} else {
			rep.Backends = b.describe()
			rr, err := runRebuild(ctx, b, rebuildConfig{events: *events, users: *rebuildUsers, rounds: *rounds, partitions: 12, poolSize: 20,
				cpuProfile: *cpuProfile}, stderr)
			b.close()
			rep.Rebuild = &rr
			if err != nil {
				rep.Errors = append(rep.Errors, "rebuild: "+err.Error())
			}
		}
	}
	if (want["ingest"] || want["dashboard"]) && ctx.Err() == nil {
		if rep.Backends == nil {
			rep.Backends = (&backends{redisURL: strings.TrimSpace(getenv(envRedisURL)), kafkaEnv: len(envBrokers(getenv)) > 0,
				pgEnv: strings.TrimSpace(getenv(envDatabaseURL)) != ""}).describe()
		}
		hr, err := runHTTP(ctx, httpConfig{rounds: *rounds, duration: *duration, warmup: *warmup, concurrency: *concurrency, users: *users,
			ingest: want["ingest"], dashboard: want["dashboard"], serverBin: *serverBin, cpuProfile: *cpuProfile, getenv: getenv}, stderr)
		rep.HTTP = &hr
		if err != nil {
			rep.Errors = append(rep.Errors, "http: "+err.Error())
		}
	}
	if ctx.Err() != nil {
		rep.Errors = append(rep.Errors, "interrupted")
	}
	rep.ElapsedS = round3(time.Since(began).Seconds())
	rep.fill()

	fmt.Fprintln(stdout)
	rep.printTable(stdout)
	if rep.Rebuild != nil && rep.Rebuild.ProfileTop != "" {
		fmt.Fprintf(stdout, "\nCPU profile of the projectors (this process) in the last rebuild round, %s:\n%s", rep.Rebuild.Profile, rep.Rebuild.ProfileTop)
	}
	if rep.HTTP != nil {
		for _, phase := range []string{"ingest", "dashboard"} {
			if top := rep.HTTP.ProfileTops[phase]; top != "" {
				fmt.Fprintf(stdout, "\nCPU profile of the server in the %s saturation rounds, %s:\n%s", phase, rep.HTTP.Profiles[phase], top)
			}
		}
	}
	if err := rep.write(out); err != nil {
		fmt.Fprintf(stderr, "biosync-bench: write %s: %v\n", out, err)
		return 1
	}
	fmt.Fprintf(stdout, "\nresults: %s (%.0fs)\n", out, rep.ElapsedS)
	if len(rep.Errors) > 0 {
		return 1
	}
	return 0
}
