package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// promSnapshot holds the server's counters of interest at one moment,
// scraped from its /metrics endpoint, keyed by short names.
type promSnapshot struct {
	at   time.Time
	vals map[string]float64
	cpu  cpuTimes // the whole machine's CPU counters at the same moment
}

// cpuTimes are the machine's aggregate CPU counters from /proc/stat, in
// clock ticks.
type cpuTimes struct{ busy, idle, steal float64 }

// readCPUTimes reads /proc/stat (zero values where it is unavailable).
func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var v [8]float64
	for i := range v {
		v[i], _ = strconv.ParseFloat(f[i+1], 64)
	}
	// user nice system idle iowait irq softirq steal
	return cpuTimes{busy: v[0] + v[1] + v[2] + v[5] + v[6], idle: v[3] + v[4], steal: v[7]}
}

// promKey maps one exposition line (name and labels) to a short key, or ""
// for lines the benchmark does not read.
func promKey(name, labels string) string {
	suffix := ""
	for _, s := range []string{"_sum", "_count"} {
		if strings.HasSuffix(name, s) {
			name, suffix = strings.TrimSuffix(name, s), s
		}
	}
	switch {
	case name == "process_cpu_seconds_total" && suffix == "":
		return "cpu"
	case suffix == "":
		return ""
	case name == "biosync_eventstore_append_seconds" && strings.Contains(labels, `outcome="ok"`):
		return "append" + suffix
	case name == "biosync_http_request_duration_seconds" && strings.Contains(labels, `route="`+pathPush+`"`):
		return "push" + suffix
	case name == "biosync_http_request_duration_seconds" && strings.Contains(labels, `route="`+pathDashboard+`"`):
		return "dashboard" + suffix
	case name == "biosync_http_consistency_wait_seconds":
		return "wait" + suffix
	case name == "biosync_projector_batch_seconds" && strings.Contains(labels, `projector="metrics@`):
		return "batch" + suffix
	case name == "biosync_projector_batch_events" && strings.Contains(labels, `projector="metrics@`):
		return "events" + suffix
	}
	return ""
}

// parseProm adds up the values of the lines promKey selects.
func parseProm(text string) map[string]float64 {
	vals := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		name, labels := series, ""
		if i := strings.IndexByte(series, '{'); i >= 0 {
			name, labels = series[:i], series[i:]
		}
		key := promKey(name, labels)
		if key == "" {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			vals[key] += v
		}
	}
	return vals
}

// scrape reads the server's /metrics.
func scrape(ctx context.Context, c *http.Client, base string) (promSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return promSnapshot{}, err
	}
	res, err := c.Do(req)
	if err != nil {
		return promSnapshot{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return promSnapshot{}, fmt.Errorf("GET /metrics: %d", res.StatusCode)
	}
	var sb strings.Builder
	sc := bufio.NewReader(res.Body)
	if _, err := sc.WriteTo(&sb); err != nil {
		return promSnapshot{}, err
	}
	return promSnapshot{at: time.Now(), vals: parseProm(sb.String()), cpu: readCPUTimes()}, nil
}

// serverBreakdown says where the server spent a phase: its CPU use (in
// cores, of this machine's NumCPU) and the mean time of the steps it
// measures itself.
type serverBreakdown struct {
	WallS                   float64 `json:"wall_s"`
	CPUCores                float64 `json:"server_cpu_cores"`    // server process CPU seconds / wall seconds (the embedded PostgreSQL is a separate process)
	ProjectorCPUCores       float64 `json:"projector_cpu_cores"` // the `projections run` process, from /proc/<pid>/stat
	MachineBusy             float64 `json:"machine_busy"`        // fraction of all CPUs busy (every process: load generator, server, PostgreSQL, neighbours)
	MachineSteal            float64 `json:"machine_steal"`       // fraction of CPU time stolen by the hypervisor
	PushMeanMs              float64 `json:"push_request_mean_ms,omitempty"`
	AppendMeanMs            float64 `json:"kafka_append_mean_ms,omitempty"`
	Appends                 float64 `json:"appends,omitempty"`
	DashboardMeanMs         float64 `json:"dashboard_request_mean_ms,omitempty"`
	ConsistencyWaitMeanMs   float64 `json:"consistency_wait_mean_ms,omitempty"`
	ProjectorBatchMeanMs    float64 `json:"metrics_batch_mean_ms,omitempty"`
	ProjectorEventsPerBatch float64 `json:"metrics_events_per_batch,omitempty"`
	ProjectorBatches        float64 `json:"metrics_batches,omitempty"`
}

// breakdown is what happened between two snapshots.
func breakdown(a, b promSnapshot) serverBreakdown {
	d := func(k string) float64 { return b.vals[k] - a.vals[k] }
	meanMs := func(k string) float64 { return round3(ratio(d(k+"_sum"), d(k+"_count")) * 1000) }
	wall := b.at.Sub(a.at).Seconds()
	busy, idle, steal := b.cpu.busy-a.cpu.busy, b.cpu.idle-a.cpu.idle, b.cpu.steal-a.cpu.steal
	return serverBreakdown{
		WallS:                   round3(wall),
		CPUCores:                round3(ratio(d("cpu"), wall)),
		MachineBusy:             round3(ratio(busy, busy+idle+steal)),
		MachineSteal:            round3(ratio(steal, busy+idle+steal)),
		PushMeanMs:              meanMs("push"),
		AppendMeanMs:            meanMs("append"),
		Appends:                 d("append_count"),
		DashboardMeanMs:         meanMs("dashboard"),
		ConsistencyWaitMeanMs:   meanMs("wait"),
		ProjectorBatchMeanMs:    meanMs("batch"),
		ProjectorEventsPerBatch: round3(ratio(d("events_sum"), d("events_count"))),
		ProjectorBatches:        d("batch_count"),
	}
}

// procCPUSeconds is the user+system CPU time of p so far, from
// /proc/<pid>/stat (0 where that is unavailable).
func procCPUSeconds(p *proc) float64 {
	if p == nil || p.cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are fixed: utime and stime are fields 14 and 15.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (ut + st) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100
