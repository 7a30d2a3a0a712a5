package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/eventstore"
)

// httpConfig sizes the phases that run against `biosync serve`.
type httpConfig struct {
	rounds      int
	duration    time.Duration // measurement window of one load phase
	warmup      time.Duration // discarded start of every load phase
	concurrency int
	users       int
	dashboard   bool
	ingest      bool
	serverBin   string // prebuilt biosync binary ("" = go build ./cmd/biosync)
	cpuProfile  string // profile base path ("" = none): the server's CPU during the saturation rounds
	getenv      func(string) string
}

// httpResult holds the raw figures of the HTTP phases, per round.
type httpResult struct {
	Users        int     `json:"users"`
	ServerStartS float64 `json:"server_start_s"`

	// IngestReqPerS is the command side alone (projectors stopped);
	// IngestSustainedReqPerS the whole system with them applying.
	IngestReqPerS          []float64        `json:"ingest_req_per_s"`
	IngestSustainedReqPerS []float64        `json:"ingest_sustained_req_per_s"`
	IngestBaselineReqPerS  []float64        `json:"ingest_baseline_req_per_s"`
	IngestErrors           int              `json:"ingest_errors"`
	IngestBaselineErrors   int              `json:"ingest_baseline_errors"`
	IngestSaturation       []latencySummary `json:"ingest_saturation_latency"`

	IngestHalfRate         float64          `json:"ingest_half_rate_req_per_s"`
	IngestHalf             []latencySummary `json:"ingest_half_rate_latency"`
	IngestHalfAchieved     []float64        `json:"ingest_half_rate_achieved_req_per_s"`
	IngestHalfErrors       int              `json:"ingest_half_rate_errors"`
	IngestBaselineHalfRate float64          `json:"ingest_baseline_half_rate_req_per_s"`
	IngestBaselineHalf     []latencySummary `json:"ingest_baseline_half_rate_latency"`

	Freshness         []latencySummary `json:"freshness_latency"`
	FreshnessPooled   latencySummary   `json:"freshness_pooled"`
	FreshnessTimeouts int              `json:"freshness_consistency_timeouts"`
	FreshnessErrors   int              `json:"freshness_errors"`
	FreshnessPolled   int              `json:"freshness_needed_polling"`

	DashboardReqPerS         []float64        `json:"dashboard_req_per_s"`
	DashboardBaselineReqPerS []float64        `json:"dashboard_baseline_req_per_s"`
	DashboardErrors          int              `json:"dashboard_errors"`
	DashboardBaselineErrors  int              `json:"dashboard_baseline_errors"`
	DashboardSaturation      []latencySummary `json:"dashboard_saturation_latency"`

	DashboardHalfRate         float64          `json:"dashboard_half_rate_req_per_s"`
	DashboardHalf             []latencySummary `json:"dashboard_half_rate_latency"`
	DashboardHalfAchieved     []float64        `json:"dashboard_half_rate_achieved_req_per_s"`
	DashboardBaselineHalfRate float64          `json:"dashboard_baseline_half_rate_req_per_s"`
	DashboardBaselineHalf     []latencySummary `json:"dashboard_baseline_half_rate_latency"`

	IngestServer          []serverBreakdown `json:"ingest_server"`
	IngestBaselineIdle    []serverBreakdown `json:"ingest_baseline_rounds_server"`
	IngestCatchUpS        []float64         `json:"ingest_catch_up_s"`
	IngestSustainedServer []serverBreakdown `json:"ingest_sustained_server"`
	IngestBacklogCatchUpS []float64         `json:"ingest_backlog_catch_up_s"` // after the command-side round
	IngestHalfServer      []serverBreakdown `json:"ingest_half_rate_server"`
	DashboardServer       []serverBreakdown `json:"dashboard_server"`
	DashboardBaseIdle     []serverBreakdown `json:"dashboard_baseline_rounds_server"`
	DashboardHalfServer   []serverBreakdown `json:"dashboard_half_rate_server"`

	FirstErrors []string          `json:"first_errors,omitempty"`
	Profiles    map[string]string `json:"server_cpu_profiles,omitempty"` // phase -> file
	ProfileTops map[string]string `json:"-"`                             // phase -> go tool pprof -top
}

// noteErr keeps the first error message of a phase for the report.
func (r *httpResult) noteErr(phase string, l loadResult) {
	if l.FirstErr != "" && len(r.FirstErrors) < 20 {
		r.FirstErrors = append(r.FirstErrors, phase+": "+l.FirstErr)
	}
}

// randomKey is 32 random bytes in standard base64 (BIOSYNC_JWT_KEY).
func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// runHTTP starts `biosync serve` and the baseline server as subprocesses
// and runs the ingest, freshness and dashboard phases against both.
func runHTTP(ctx context.Context, hc httpConfig, progress io.Writer) (res httpResult, err error) {
	tmp, err := os.MkdirTemp("", "biosync-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	// As root the embedded PostgreSQL runs as the postgres OS user, which
	// must be able to traverse the data dir.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return res, err
	}
	bin := hc.serverBin
	if bin == "" {
		start := time.Now()
		if bin, err = buildServer(ctx, tmp, hc.cpuProfile != ""); err != nil {
			return res, err
		}
		fmt.Fprintf(progress, "http: built biosync in %.1fs\n", time.Since(start).Seconds())
	} else if hc.cpuProfile != "" {
		return res, fmt.Errorf("--cpuprofile needs the benchmark to build the server (drop --server-bin)")
	}

	master, err := eventstore.NewMasterKeys()
	if err != nil {
		return res, err
	}
	push, err := webhooks.NewSecret()
	if err != nil {
		return res, err
	}
	b, err := openBackends(ctx, hc.getenv, false)
	if err != nil {
		return res, err
	}
	defer b.close()
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	env := map[string]string{
		"BIOSYNC_DATA_DIR":    filepath.Join(tmp, "data"),
		"BIOSYNC_HTTP_ADDR":   addr,
		"BIOSYNC_LOG_LEVEL":   "warn",
		"BIOSYNC_MASTER_KEY":  master,
		"BIOSYNC_JWT_KEY":     randomKey(),
		"BIOSYNC_PUSH_SECRET": push,
		// The load comes from one address: abuse limits would measure
		// themselves, not the server.
		"BIOSYNC_RATE_LIMIT_AUTH_IP":           "off",
		"BIOSYNC_RATE_LIMIT_AUTH_ACCOUNT":      "off",
		"BIOSYNC_RATE_LIMIT_WEBHOOK_IP":        "off",
		"BIOSYNC_RATE_LIMIT_EXPENSIVE_IP":      "off",
		"BIOSYNC_RATE_LIMIT_EXPENSIVE_ACCOUNT": "off",
		// The projectors run beside the API in their own process (`biosync
		// projections run`, the split deployment), so the ingest phase can
		// pause them: the command side is measured alone and with them.
		"BIOSYNC_PROJECTORS": "off",
	}
	if b.kafkaEnv {
		topic := uniqueName("bench_serve_")
		b.topics = append(b.topics, topic)
		env[envKafkaBrokers] = strings.Join(b.brokers, ",")
		env["BIOSYNC_KAFKA_TOPIC"] = topic
	}
	if b.pgEnv {
		_, dsn, err := b.createDB(ctx, "bench_serve_")
		if err != nil {
			return res, err
		}
		env[envDatabaseURL] = dsn
	}
	if b.redisURL != "" {
		env[envRedisURL] = b.redisURL
	}
	scratchProfile := filepath.Join(tmp, "server-cpu.pprof")
	if hc.cpuProfile != "" {
		env[profileEnv] = scratchProfile
	}
	start := time.Now()
	srv, err := startProc(ctx, "biosync serve", bin, []string{"serve"}, env,
		func(line string) bool { return strings.Contains(line, "BioSync is listening on http://") }, 3*time.Minute)
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := srv.stop(30 * time.Second); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			err = fmt.Errorf("%w\nlast server output:\n%s", err, srv.logs.String())
		}
	}()
	sysURL := "http://" + addr
	if err := waitReady(ctx, sysURL+"/readyz", 2*time.Minute); err != nil {
		return res, err
	}
	res.ServerStartS = time.Since(start).Seconds()
	// It joins the server's embedded services through the data dir (or the
	// same real clusters), like any other command.
	penv := maps.Clone(env)
	if hc.cpuProfile != "" {
		penv[profileEnv] = filepath.Join(tmp, "projector-cpu.pprof")
	}
	projector, err := startProc(ctx, "biosync projections run", bin, []string{"projections", "run"}, penv, nil, time.Minute)
	if err != nil {
		return res, err
	}
	defer func() {
		_ = projector.signal(syscall.SIGCONT) // never leave it stopped
		if perr := projector.stop(30 * time.Second); perr != nil && err == nil {
			err = fmt.Errorf("projector: %w\n%s", perr, projector.logs.String())
		}
	}()

	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	baseAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	bsrv, err := startProc(ctx, "baseline server", exe, []string{"baseline-server", "--addr", baseAddr}, nil,
		func(line string) bool { return strings.Contains(line, "baseline listening") }, 30*time.Second)
	if err != nil {
		return res, err
	}
	defer bsrv.stop(10 * time.Second)
	baseURL := "http://" + baseAddr
	if err := waitReady(ctx, baseURL+"/healthz", 30*time.Second); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "http: server ready in %.1fs at %s, baseline at %s\n", res.ServerStartS, sysURL, baseURL)

	a, err := newAPI(push)
	if err != nil {
		return res, err
	}
	setup := newClient(16)
	start = time.Now()
	if err := a.register(ctx, setup, sysURL, hc.users, 2); err != nil {
		return res, fmt.Errorf("register users: %w", err)
	}
	res.Users = hc.users
	fmt.Fprintf(progress, "http: registered and logged in %d users in %.1fs\n", hc.users, time.Since(start).Seconds())

	if hc.ingest {
		if err := ingestPhases(ctx, hc, a, srv, projector, sysURL, baseURL, setup, &res, progress); err != nil {
			return res, err
		}
	}
	if hc.dashboard {
		if err := dashboardPhases(ctx, hc, a, srv, projector, sysURL, baseURL, setup, &res, progress); err != nil {
			return res, err
		}
	}
	return res, nil
}

// observed runs f and returns the server's breakdown of that time (zero
// when /metrics could not be read: the figures do not depend on it).
func observed(ctx context.Context, c *http.Client, base string, f func(), projector *proc) serverBreakdown {
	before, err1 := scrape(ctx, c, base)
	pb := procCPUSeconds(projector)
	f()
	pa := procCPUSeconds(projector)
	after, err2 := scrape(ctx, c, base)
	if err1 != nil || err2 != nil {
		return serverBreakdown{}
	}
	b := breakdown(before, after)
	b.ProjectorCPUCores = round3(ratio(pa-pb, b.WallS))
	return b
}

// describe is a one-line summary of a breakdown for the progress output.
func (b serverBreakdown) describe() string {
	out := fmt.Sprintf("machine %.0f%% busy, server %.2f cores, projectors %.2f cores", b.MachineBusy*100, b.CPUCores, b.ProjectorCPUCores)
	if b.PushMeanMs > 0 {
		out += fmt.Sprintf(", push mean %.1f ms (Kafka append %.1f ms)", b.PushMeanMs, b.AppendMeanMs)
	}
	if b.DashboardMeanMs > 0 {
		out += fmt.Sprintf(", summary mean %.2f ms", b.DashboardMeanMs)
	}
	if b.ProjectorBatches > 0 {
		out += fmt.Sprintf(", metrics batches %.0f x %.1f events, %.1f ms each", b.ProjectorBatches, b.ProjectorEventsPerBatch, b.ProjectorBatchMeanMs)
	}
	return out
}

// ingestPhases measures webhook ingest at saturation (system and baseline
// alternating), then latency and freshness at half the system's rate.
func ingestPhases(ctx context.Context, hc httpConfig, a *api, srv, projector *proc, sysURL, baseURL string, setup *http.Client, res *httpResult, progress io.Writer) error {
	sysC, baseC := newClient(hc.concurrency), newClient(hc.concurrency)
	sysPush := func(ctx context.Context, seq uint64) error {
		info, err := a.push(ctx, sysC, sysURL, seq)
		if err == nil {
			a.track(info.token)
		}
		return err
	}
	basePush := func(ctx context.Context, seq uint64) error {
		_, err := a.push(ctx, baseC, baseURL, seq)
		return err
	}
	// A warm-up round, not measured: the first load after start pays for
	// cold caches in every process (data keys, prepared statements, the
	// broker's first segments, PostgreSQL's buffers); without it the first
	// round was always the slowest (e.g. 2,061 vs 3,624 and 4,057 req/s).
	warm := closedLoop(ctx, hc.concurrency, 0, hc.duration, sysPush)
	res.noteErr("ingest warm-up", warm)
	if err := a.waitProjected(ctx, setup, sysURL, 2*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(progress, "ingest warm-up: %.0f req/s (not measured)\n", warm.rate())
	if err := startProfile(hc, srv); err != nil {
		return err
	}
	if err := startProfile(hc, projector); err != nil {
		return err
	}
	for r := range hc.rounds {
		// The whole system: the projectors apply the pushes as they come.
		var s loadResult
		sb := observed(ctx, setup, sysURL, func() {
			s = closedLoop(ctx, hc.concurrency, hc.warmup, hc.duration, sysPush)
		}, projector)
		caught := time.Now()
		if err := a.waitProjected(ctx, setup, sysURL, 2*time.Minute); err != nil {
			return err
		}
		res.IngestCatchUpS = append(res.IngestCatchUpS, round3(time.Since(caught).Seconds()))
		res.IngestSustainedServer = append(res.IngestSustainedServer, sb)

		// The command side alone (what a 2xx costs: signature, validation,
		// encryption, Kafka ack): the projector process is stopped and
		// catches up afterwards, as after a burst.
		var c loadResult
		if err := projector.signal(syscall.SIGSTOP); err != nil {
			return err
		}
		cb := observed(ctx, setup, sysURL, func() {
			c = closedLoop(ctx, hc.concurrency, hc.warmup, hc.duration, sysPush)
		}, projector)
		if err := projector.signal(syscall.SIGCONT); err != nil {
			return err
		}
		caught = time.Now()
		if err := a.waitProjected(ctx, setup, sysURL, 3*time.Minute); err != nil {
			return err
		}
		res.IngestBacklogCatchUpS = append(res.IngestBacklogCatchUpS, round3(time.Since(caught).Seconds()))
		res.IngestServer = append(res.IngestServer, cb)

		var bl loadResult
		bb := observed(ctx, setup, sysURL, func() { bl = closedLoop(ctx, hc.concurrency, hc.warmup, hc.duration, basePush) }, projector)
		res.IngestBaselineIdle = append(res.IngestBaselineIdle, bb)
		res.IngestReqPerS = append(res.IngestReqPerS, c.rate())
		res.IngestSustainedReqPerS = append(res.IngestSustainedReqPerS, s.rate())
		res.IngestBaselineReqPerS = append(res.IngestBaselineReqPerS, bl.rate())
		res.IngestErrors += s.Errors + c.Errors
		res.IngestBaselineErrors += bl.Errors
		res.IngestSaturation = append(res.IngestSaturation, summarize(c.Lat))
		res.noteErr("ingest", c)
		res.noteErr("ingest with projectors", s)
		res.noteErr("ingest baseline", bl)
		fmt.Fprintf(progress, "ingest round %d: command side %.0f req/s (p99 %.1f ms, %d errors), with projectors %.0f req/s (p99 %.1f ms, %d errors) | baseline %.0f req/s (%d errors)\n"+
			"  command side: %s; projectors caught up %.1fs after the load\n  with projectors: %s; caught up %.2fs after the load\n  baseline: %s\n",
			r+1, c.rate(), summarize(c.Lat).P99, c.Errors, s.rate(), summarize(s.Lat).P99, s.Errors, bl.rate(), bl.Errors,
			cb.describe(), res.IngestBacklogCatchUpS[r], sb.describe(), res.IngestCatchUpS[r], bb.describe())
	}
	if err := stopProfile(ctx, hc, srv, res, "ingest"); err != nil {
		return err
	}
	if err := stopProfile(ctx, hc, projector, res, "ingest-projector"); err != nil {
		return err
	}

	// Half the rate the whole system sustains (projectors keeping up), open
	// loop; a sample of the pushes is followed until it shows in the
	// summary.
	res.IngestHalfRate = median(res.IngestSustainedReqPerS) / 2
	openSys, probeC := newClient(hc.concurrency), newClient(256)
	var pooled []float64
	for r := range hc.rounds {
		every := uint64(max(1, int(res.IngestHalfRate/40)))
		warmN := uint64(hc.warmup.Seconds() * res.IngestHalfRate)
		var (
			pwg  sync.WaitGroup
			pmu  sync.Mutex
			lats []time.Duration
		)
		octx := ctx
		var s loadResult
		sb := observed(ctx, setup, sysURL, func() {
			s = openLoop(ctx, res.IngestHalfRate, hc.concurrency, hc.warmup, hc.duration, func(ctx context.Context, seq uint64) error {
				info, err := a.push(ctx, openSys, sysURL, seq)
				if err != nil {
					return err
				}
				a.track(info.token)
				if seq > warmN && seq%every == 0 {
					pwg.Add(1)
					go func() {
						defer pwg.Done()
						o := a.probe(octx, probeC, sysURL, info)
						pmu.Lock()
						defer pmu.Unlock()
						switch {
						case o.err != nil:
							res.FreshnessErrors++
							if len(res.FirstErrors) < 20 {
								res.FirstErrors = append(res.FirstErrors, "freshness: "+o.err.Error())
							}
						default:
							lats = append(lats, o.lat)
							pooled = append(pooled, float64(o.lat)/float64(time.Millisecond))
						}
						if o.timedOut {
							res.FreshnessTimeouts++
						}
						if o.polled {
							res.FreshnessPolled++
						}
					}()
				}
				return nil
			})
		}, projector)
		pwg.Wait()
		res.IngestHalfServer = append(res.IngestHalfServer, sb)
		if err := a.waitProjected(ctx, setup, sysURL, 2*time.Minute); err != nil {
			return err
		}
		ls, fs := summarize(s.Lat), summarize(lats)
		res.IngestHalf = append(res.IngestHalf, ls)
		res.IngestHalfAchieved = append(res.IngestHalfAchieved, s.rate())
		res.IngestHalfErrors += s.Errors
		res.Freshness = append(res.Freshness, fs)
		res.noteErr("ingest half rate", s)
		fmt.Fprintf(progress, "ingest half-rate round %d: %.0f req/s offered, %.0f done, p50 %.1f ms p99 %.1f ms | freshness n=%d p50 %.1f ms p99 %.1f ms\n  %s\n",
			r+1, s.Offered, s.rate(), ls.P50, ls.P99, fs.N, fs.P50, fs.P99, sb.describe())
	}
	res.FreshnessPooled = summarizeMs(pooled)

	// The baseline's latency at half its own rate, once, for reference.
	res.IngestBaselineHalfRate = median(res.IngestBaselineReqPerS) / 2
	openBase := newClient(hc.concurrency)
	bl := openLoop(ctx, res.IngestBaselineHalfRate, hc.concurrency, hc.warmup, hc.duration, func(ctx context.Context, seq uint64) error {
		_, err := a.push(ctx, openBase, baseURL, seq)
		return err
	})
	res.IngestBaselineHalf = append(res.IngestBaselineHalf, summarize(bl.Lat))
	res.noteErr("ingest baseline half rate", bl)
	fmt.Fprintf(progress, "ingest baseline half-rate: %.0f req/s offered, p99 %.1f ms\n", bl.Offered, summarize(bl.Lat).P99)
	return nil
}

// startProfile starts the server's CPU profile (the build-time overlay
// toggles it on SIGUSR1) when profiling was asked for.
func startProfile(hc httpConfig, srv *proc) error {
	if hc.cpuProfile == "" {
		return nil
	}
	return srv.signal(syscall.SIGUSR1)
}

// stopProfile stops the server's CPU profile, waits until it is written,
// moves it to the phase's file and keeps its pprof -top.
func stopProfile(ctx context.Context, hc httpConfig, srv *proc, res *httpResult, phase string) error {
	if hc.cpuProfile == "" {
		return nil
	}
	if err := srv.signal(syscall.SIGUSR1); err != nil {
		return err
	}
	scratch := srv.env[profileEnv]
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(scratch + ".done"); err == nil {
			_ = os.Remove(scratch + ".done")
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not write its CPU profile to %s", scratch)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	dst := profilePath(hc.cpuProfile, phase)
	if err := moveFile(scratch, dst); err != nil {
		return err
	}
	if res.Profiles == nil {
		res.Profiles, res.ProfileTops = map[string]string{}, map[string]string{}
	}
	res.Profiles[phase] = dst
	res.ProfileTops[phase] = pprofTop(ctx, dst)
	return nil
}

// dashboardPhases measures the summary on a warm cache against the
// baseline's bare GET at the same concurrency, then latency at half the
// system's rate.
func dashboardPhases(ctx context.Context, hc httpConfig, a *api, srv, projector *proc, sysURL, baseURL string, setup *http.Client, res *httpResult, progress io.Writer) error {
	if err := a.waitProjected(ctx, setup, sysURL, 2*time.Minute); err != nil {
		return err
	}
	// Warm the cache: the first read computes and stores the summary of a
	// user whose entry the projector did not refresh.
	for _, u := range a.users {
		for range 2 {
			if status, _, body, err := dashboard(ctx, setup, sysURL, u, "", false); err != nil || status != 200 {
				return fmt.Errorf("warm dashboard: %d %v %s", status, err, body)
			}
		}
	}
	sysC, baseC := newClient(hc.concurrency), newClient(hc.concurrency)
	if err := startProfile(hc, srv); err != nil {
		return err
	}
	for r := range hc.rounds {
		var s loadResult
		sb := observed(ctx, setup, sysURL, func() {
			s = closedLoop(ctx, hc.concurrency, hc.warmup, hc.duration, func(ctx context.Context, seq uint64) error {
				return a.getDashboard(ctx, sysC, sysURL, seq)
			})
		}, projector)
		res.DashboardServer = append(res.DashboardServer, sb)
		var bl loadResult
		bb := observed(ctx, setup, sysURL, func() {
			bl = closedLoop(ctx, hc.concurrency, hc.warmup, hc.duration, func(ctx context.Context, seq uint64) error {
				return a.getDashboard(ctx, baseC, baseURL, seq)
			})
		}, projector)
		res.DashboardBaseIdle = append(res.DashboardBaseIdle, bb)
		res.DashboardReqPerS = append(res.DashboardReqPerS, s.rate())
		res.DashboardBaselineReqPerS = append(res.DashboardBaselineReqPerS, bl.rate())
		res.DashboardErrors += s.Errors
		res.DashboardBaselineErrors += bl.Errors
		res.DashboardSaturation = append(res.DashboardSaturation, summarize(s.Lat))
		res.noteErr("dashboard", s)
		res.noteErr("dashboard baseline", bl)
		fmt.Fprintf(progress, "dashboard round %d: system %.0f req/s (p99 %.1f ms, %d errors) | baseline %.0f req/s (%d errors)\n  system: %s\n  baseline: %s\n",
			r+1, s.rate(), summarize(s.Lat).P99, s.Errors, bl.rate(), bl.Errors, sb.describe(), bb.describe())
	}
	if err := stopProfile(ctx, hc, srv, res, "dashboard"); err != nil {
		return err
	}
	res.DashboardHalfRate = median(res.DashboardReqPerS) / 2
	openSys := newClient(hc.concurrency)
	for r := range hc.rounds {
		var s loadResult
		sb := observed(ctx, setup, sysURL, func() {
			s = openLoop(ctx, res.DashboardHalfRate, hc.concurrency, hc.warmup, hc.duration, func(ctx context.Context, seq uint64) error {
				return a.getDashboard(ctx, openSys, sysURL, seq)
			})
		}, projector)
		res.DashboardHalfServer = append(res.DashboardHalfServer, sb)
		ls := summarize(s.Lat)
		res.DashboardHalf = append(res.DashboardHalf, ls)
		res.DashboardHalfAchieved = append(res.DashboardHalfAchieved, s.rate())
		res.noteErr("dashboard half rate", s)
		fmt.Fprintf(progress, "dashboard half-rate round %d: %.0f req/s offered, %.0f done, p50 %.2f ms p99 %.2f ms\n  %s\n",
			r+1, s.Offered, s.rate(), ls.P50, ls.P99, sb.describe())
	}
	res.DashboardBaselineHalfRate = median(res.DashboardBaselineReqPerS) / 2
	openBase := newClient(hc.concurrency)
	bl := openLoop(ctx, res.DashboardBaselineHalfRate, hc.concurrency, hc.warmup, hc.duration, func(ctx context.Context, seq uint64) error {
		return a.getDashboard(ctx, openBase, baseURL, seq)
	})
	res.DashboardBaselineHalf = append(res.DashboardBaselineHalf, summarize(bl.Lat))
	res.noteErr("dashboard baseline half rate", bl)
	fmt.Fprintf(progress, "dashboard baseline half-rate: %.0f req/s offered, p99 %.2f ms\n", bl.Offered, summarize(bl.Lat).P99)
	return nil
}
