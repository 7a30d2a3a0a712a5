package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/biosync/biosync/domain/ingest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercentileNearestRank(t *testing.T) {
	xs := []float64{15, 20, 35, 40, 50}
	cases := []struct{ p, want float64 }{{5, 15}, {30, 20}, {40, 20}, {50, 35}, {99, 50}, {100, 50}}
	for _, c := range cases {
		got := percentile(xs, c.p)
		assert.Equal(t, c.want, got, "percentile(%v, %v) = %v, want %v", xs, c.p, got, c.want)
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // unsorted on purpose
	}
	got := percentile(hundred, 99)
	assert.EqualValues(t, 99, got, "p99 of 1..100 = %v, want 99", got)
	assert.EqualValues(t, 100, hundred[0], "percentile sorted its argument in place")
	got = percentile(nil, 99)
	assert.EqualValues(t, 0, got, "percentile(nil) = %v, want 0", got)
}

func TestMedian(t *testing.T) {
	cases := []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{7}, 7}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, c := range cases {
		got := median(c.xs)
		assert.Equal(t, c.want, got, "median(%v) = %v, want %v", c.xs, got, c.want)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	assert.Equal(t, 200, s.N, "N")
	assert.Equal(t, 100.0, s.P50, "p50 ms")
	assert.Equal(t, 198.0, s.P99, "p99 ms")
	assert.Equal(t, 200.0, s.Max, "max ms")
	assert.Equal(t, 100.5, s.Mean, "mean ms")
	assert.Zero(t, summarize(nil), "summarize(nil)")
}

// sampleReport is a report with every phase measured.
func sampleReport() *report {
	lat := func(p99 float64) latencySummary { return latencySummary{N: 100, P50: p99 / 4, P99: p99} }
	return &report{
		Rounds:  3,
		Machine: thisMachine(),
		Config:  runConfig{Concurrency: 64, Rounds: 3},
		Rebuild: &rebuildResult{RowsPerS: []float64{90_000, 110_000, 100_000}, CopyRowsPerS: []float64{200_000, 180_000, 220_000},
			EventsPerS: []float64{9000, 11000, 10000}},
		HTTP: &httpResult{
			IngestReqPerS: []float64{1000, 1200, 1100}, IngestSustainedReqPerS: []float64{500, 700, 600}, IngestBaselineReqPerS: []float64{20000, 22000, 21000},
			IngestHalf: []latencySummary{lat(40), lat(60), lat(45)}, IngestBaselineHalf: []latencySummary{lat(5)},
			Freshness: []latencySummary{lat(100), lat(300), lat(200)}, FreshnessPooled: lat(280),
			DashboardReqPerS: []float64{30000, 32000, 31000}, DashboardBaselineReqPerS: []float64{36000, 38000, 37000},
			DashboardHalf: []latencySummary{lat(4), lat(3), lat(6)}, DashboardBaselineHalf: []latencySummary{lat(2)},
		},
	}
}

func TestReportJSONHasTheHeadlineKeys(t *testing.T) {
	r := sampleReport()
	r.fill()
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	for _, k := range []string{"rebuild_ratio", "ingest_ratio", "ingest_sustained_ratio", "ingest_sustained_req_per_s", "ingest_p99_ms", "freshness_p99_ms", "dashboard_ratio", "dashboard_p99_ms",
		"rebuild_events_per_s", "rebuild_rows_per_s", "rebuild_copy_rows_per_s", "ingest_req_per_s", "ingest_baseline_req_per_s",
		"dashboard_req_per_s", "dashboard_baseline_req_per_s", "rounds", "machine", "config", "targets", "pass", "rebuild", "http"} {
		_, ok := got[k]
		assert.True(t, ok, "JSON lacks %q", k)
	}
	m, _ := got["machine"].(map[string]any)
	for _, k := range []string{"goos", "goarch", "num_cpu", "go_version"} {
		_, ok := m[k]
		assert.True(t, ok, "machine lacks %q", k)
	}
	want := map[string]float64{"rebuild_ratio": 0.5, "ingest_ratio": 1100.0 / 21000, "ingest_sustained_ratio": 600.0 / 21000, "ingest_p99_ms": 45, "freshness_p99_ms": 200,
		"dashboard_ratio": 31000.0 / 37000, "dashboard_p99_ms": 4}
	for k, w := range want {
		g := got[k].(float64)
		assert.Equal(t, round3(w), g, "%s = %v, want %v", k, g, round3(w))
	}
	pass := got["pass"].(map[string]any)
	wantPass := map[string]bool{"rebuild_ratio": true, "ingest_ratio": false, "ingest_sustained_ratio": false, "ingest_p99_ms": true, "freshness_p99_ms": true,
		"dashboard_ratio": true, "dashboard_p99_ms": true}
	for k, w := range wantPass {
		assert.Equal(t, w, pass[k], "pass[%s] = %v, want %v", k, pass[k], w)
	}
}

func TestTableSaysMissedAndNotMeasured(t *testing.T) {
	r := sampleReport()
	r.HTTP.DashboardHalf = nil // not measured
	r.fill()
	var buf bytes.Buffer
	r.printTable(&buf)
	out := buf.String()
	for _, want := range []string{"metric", "system", "baseline", "ratio", "target", "result", "MISSED", "NOT MEASURED", ">= 0.35", "< 250 ms"} {
		assert.Contains(t, out, want, "table lacks %q:\n%s", want, out)
	}
	assert.False(t, r.Pass["dashboard_p99_ms"], "a figure that was not measured passed")
}

func TestBatchJSONDecodesToTheSameBatch(t *testing.T) {
	u, err := newDataUser("2d6f0f5e-3c1a-4f7e-9a51-0c3b6a1e2f44", "Asia/Kolkata", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	sawSleep := false
	starts := map[string]bool{}
	for range 300 {
		b := u.nextBatch(rng, true)
		sawSleep = sawSleep || len(b.SleepSessions) > 0
		for _, s := range b.Samples {
			require.False(t, starts[s.Start], "sample start %s repeats: rows would collapse into one", s.Start)
			starts[s.Start] = true
		}
		body := appendBatchJSON(nil, b)
		got, err := ingest.Parse(body, true, time.Time{})
		require.NoError(t, err, "the server would reject a generated batch: %v\n%s", err, body)
		require.Equal(t, b, got, "decoded batch differs")
		n := len(b.Samples)
		require.GreaterOrEqual(t, n, 1, "batch of %d samples, want 1..20", n)
		require.LessOrEqual(t, n, 20, "batch of %d samples, want 1..20", n)
	}
	assert.True(t, sawSleep, "no batch carried a sleep session")
	next := u.nextBatch(rng, false)
	assert.Equal(t, "", next.UserID, "user_id set on a bearer-shaped batch")
}

func TestAppendStringMatchesJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te`, `back\slash`, "tab\tnew\nline\x01", "°C", "日本", "bad\xffutf8"} {
		var got, want string
		require.NoError(t, json.Unmarshal(appendString(nil, s), &got), "appendString(%q) is not JSON", s)
		b, _ := json.Marshal(s)
		_ = json.Unmarshal(b, &want)
		assert.Equal(t, want, got, "appendString(%q) decodes to %q, encoding/json gives %q", s, got, want)
	}
}

func TestParseProm(t *testing.T) {
	text := `# HELP process_cpu_seconds_total x
process_cpu_seconds_total 12.5
biosync_eventstore_append_seconds_sum{outcome="ok"} 3
biosync_eventstore_append_seconds_count{outcome="ok"} 1000
biosync_eventstore_append_seconds_count{outcome="error"} 7
biosync_http_request_duration_seconds_sum{method="POST",route="/v1/webhooks/push"} 5
biosync_http_request_duration_seconds_count{method="POST",route="/v1/webhooks/push"} 1000
biosync_http_request_duration_seconds_bucket{method="POST",route="/v1/webhooks/push",le="0.1"} 900
biosync_projector_batch_events_sum{projector="metrics@1"} 500
biosync_projector_batch_events_count{projector="metrics@1"} 10
biosync_projector_batch_events_count{projector="users@1"} 99
`
	v := parseProm(text)
	want := map[string]float64{"cpu": 12.5, "append_sum": 3, "append_count": 1000, "push_sum": 5, "push_count": 1000, "events_sum": 500, "events_count": 10}
	assert.Equal(t, want, v, "parseProm")
	a := promSnapshot{at: time.Unix(0, 0), vals: map[string]float64{"cpu": 10}}
	b := promSnapshot{at: time.Unix(2, 0), vals: v}
	bd := breakdown(a, b)
	assert.Equal(t, 1.25, bd.CPUCores, "server CPU cores")
	assert.Equal(t, 3.0, bd.AppendMeanMs, "mean Kafka append ms")
	assert.Equal(t, 5.0, bd.PushMeanMs, "mean push ms")
	assert.Equal(t, 50.0, bd.ProjectorEventsPerBatch, "projector events per batch")
}

func TestProfilePath(t *testing.T) {
	cases := map[string]string{"/tmp/cpu.pprof": "/tmp/cpu-ingest.pprof", "/tmp/cpu": "/tmp/cpu-ingest.pprof", "a/b.prof": "a/b-ingest.prof"}
	for in, want := range cases {
		got := profilePath(in, "ingest")
		assert.Equal(t, want, got, "profilePath(%q) = %q, want %q", in, got, want)
	}
}
