package metrics_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

// project runs both projectors until they have caught up.
func project(t *testing.T, s *projectiontest.Stack, m *metrics.Projector) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, p := range []engine.Projector{users.Projector{}, m} {
		rt := s.Runtime(p, 500)
		go func() { _ = rt.Run(ctx) }()
	}
	s.WaitCaughtUp(t, users.Projector{})
	s.WaitCaughtUp(t, m)
}

func TestMetricsReadModels(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	tokyo, ny := uuid.New(), uuid.New()
	s.Register(t, tokyo, "Asia/Tokyo", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Register(t, ny, "America/New_York", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

	watch := ingest.Source{Provider: "apple_health", Device: "watch"}
	phone := ingest.Source{Provider: "apple_health", Device: "phone"}
	stepsWatch := ingest.Batch{Source: watch, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-20T08:00:00+09:00", "2026-11-20T08:15:00+09:00", 1200, "count"),
		projectiontest.Sample("steps", "2026-11-20T23:30:00+09:00", "2026-11-20T23:45:00+09:00", 300, "count"),
		projectiontest.Sample("distance", "2026-11-20T08:00:00+09:00", "2026-11-20T08:15:00+09:00", 1.2, "km"),
		projectiontest.Sample("hrv_rmssd", "2026-11-20T06:00:00+09:00", "2026-11-20T06:05:00+09:00", 40, "ms"),
		projectiontest.Sample("hrv_sdnn", "2026-11-20T06:00:00+09:00", "2026-11-20T06:05:00+09:00", 90, "ms"),
	}, SleepSessions: []ingest.SleepSession{{Start: "2026-11-19T23:00:00+09:00", End: "2026-11-20T06:30:00+09:00", Stages: []ingest.Stage{
		{Stage: "light", Start: "2026-11-19T23:00:00+09:00", End: "2026-11-20T01:00:00+09:00"},
		{Stage: "deep", Start: "2026-11-20T01:00:00+09:00", End: "2026-11-20T02:30:00+09:00"},
		{Stage: "rem", Start: "2026-11-20T02:30:00+09:00", End: "2026-11-20T04:00:00+09:00"},
		{Stage: "awake", Start: "2026-11-20T04:00:00+09:00", End: "2026-11-20T04:10:00+09:00"},
		{Stage: "light", Start: "2026-11-20T04:10:00+09:00", End: "2026-11-20T06:30:00+09:00"},
	}}}}
	s.Push(t, tokyo, stepsWatch)
	s.Push(t, tokyo, stepsWatch) // redelivered with a new event id: natural keys make it harmless
	s.Push(t, tokyo, ingest.Batch{Source: phone, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-20T08:00:00+09:00", "2026-11-20T09:00:00+09:00", 1100, "count"),
	}})
	// New York user: UTC timestamps fall on the local day of the user's
	// timezone, across the 2026-03-08 DST change.
	s.Push(t, ny, ingest.Batch{Source: watch, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-21T03:00:00Z", "2026-11-21T03:10:00Z", 50, "count"),          // 22:00 EST on 11-20
		projectiontest.Sample("steps", "2026-03-08T06:30:00Z", "2026-03-08T06:40:00Z", 10, "count"),          // 01:30 EST on 03-08
		projectiontest.Sample("steps", "2026-03-09T04:30:00Z", "2026-03-09T04:40:00Z", 20, "count"),          // 00:30 EDT on 03-09
		projectiontest.Sample("weight", "2026-11-20T12:00:00-05:00", "2026-11-20T12:00:00-05:00", 150, "lb"), // converted to kg
	}})
	m := &metrics.Projector{}
	project(t, s, m)
	r := &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions}

	day := func(user uuid.UUID, typ string, from, to string) []metrics.MetricPoint {
		t.Helper()
		f, _ := time.Parse(time.RFC3339, from)
		tt, _ := time.Parse(time.RFC3339, to)
		series, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: metricType(typ), From: f, To: tt, Bucket: metrics.BucketDay})
		require.NoError(t, err)
		return series.Points
	}

	steps := day(tokyo, "steps", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z")
	if len(steps) != 1 || steps[0].Value != 1500 || steps[0].Source != "apple_health/watch" {
		t.Fatalf("Tokyo steps = %+v; want one day of 1500 from the watch only (duplicates and the phone not added)", steps)
	}
	if got := steps[0].Start.Format(time.RFC3339); got != "2026-11-20T00:00:00+09:00" {
		t.Fatalf("day bucket starts %s, want local midnight 2026-11-20T00:00:00+09:00", got)
	}
	if d := day(tokyo, "distance", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"); len(d) != 1 || d[0].Value != 1200 {
		t.Fatalf("distance = %+v, want 1200 m (km converted)", d)
	}
	if rm, sd := day(tokyo, "hrv_rmssd", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"), day(tokyo, "hrv_sdnn", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"); len(rm) != 1 || rm[0].Value != 40 || len(sd) != 1 || sd[0].Value != 90 {
		t.Fatalf("RMSSD %+v and SDNN %+v must stay separate", rm, sd)
	}

	nyDays := day(ny, "steps", "2026-03-01T00:00:00Z", "2026-12-01T00:00:00Z")
	want := map[string]float64{"2026-03-08T00:00:00-05:00": 10, "2026-03-09T00:00:00-04:00": 20, "2026-11-20T00:00:00-05:00": 50}
	if len(nyDays) != len(want) {
		t.Fatalf("New York days = %+v", nyDays)
	}
	for _, p := range nyDays {
		if want[p.Start.Format(time.RFC3339)] != p.Value {
			t.Fatalf("New York day %s = %v, want %v", p.Start.Format(time.RFC3339), p.Value, want)
		}
	}
	if w := day(ny, "weight", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"); len(w) != 1 || w[0].Value < 68.03 || w[0].Value > 68.04 {
		t.Fatalf("weight = %+v, want 68.04 kg", w)
	}

	sessions, err := r.SleepSessions(ctx, tokyo, time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	if len(sessions) != 1 || sessions[0].Date != "2026-11-20" || sessions[0].DeepMinutes != 90 || sessions[0].REMMinutes != 90 || sessions[0].AwakeMinutes != 10 || sessions[0].AsleepMinutes != 440 {
		t.Fatalf("sleep = %+v; want the night counted on the wake-up date with stage minutes", sessions)
	}

	hours, err := r.Metrics(ctx, metrics.MetricQuery{UserID: tokyo, Type: "steps", From: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketHour})
	require.NoError(t, err)
	if len(hours.Points) != 2 || hours.Points[0].Start.Format(time.RFC3339) != "2026-11-20T08:00:00+09:00" || hours.Points[0].Value != 1200 {
		t.Fatalf("hour buckets = %+v", hours.Points)
	}

	me, err := (&users.Reader{Pool: s.Pool}).Me(ctx, tokyo)
	require.NoError(t, err)
	assert.Equal(t, "Asia/Tokyo", me.Timezone)
}

func TestDashboardIsCachedWithItsLogPositionAndRefreshedAfterCommit(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	rc, err := redis.Open(testbackend.Redis(t))
	require.NoError(t, err)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) // 21:00 in Tokyo
	r := &metrics.Reader{Pool: s.Pool, Cache: redis.Cache{C: rc}, Partitions: s.Cfg.Partitions, Now: func() time.Time { return now }}
	m := &metrics.Projector{Cache: &metrics.DashboardCache{Reader: r}}
	user := uuid.New()
	s.Register(t, user, "Asia/Tokyo", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for d := 0; d < 10; d++ {
		date := time.Date(2026, 11, 11+d, 6, 0, 0, 0, time.FixedZone("", 9*3600))
		s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, Samples: []ingest.Sample{
			projectiontest.Sample("hrv_rmssd", date.Format(time.RFC3339), date.Add(5*time.Minute).Format(time.RFC3339), float64(30+d), "ms"),
			projectiontest.Sample("resting_heart_rate", date.Format(time.RFC3339), date.Format(time.RFC3339), 55, "bpm"),
		}})
	}
	last := s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-20T10:00:00+09:00", "2026-11-20T11:00:00+09:00", 4321, "count"),
	}})
	project(t, s, m)
	require.NoError(t, (&engine.Consistency{Pool: s.Pool}).WaitFor(ctx, eventstore.Token{last}, metrics.Name))
	d, err := r.Dashboard(ctx, user, eventstore.Token{last})
	require.NoError(t, err)
	if d.Date != "2026-11-20" || d.Steps == nil || d.Steps.Value != 4321 {
		t.Fatalf("dashboard = %+v; want today's (Tokyo) steps 4321", d)
	}
	if d.HRV.Latest == nil || d.HRV.Latest.Value != 39 || d.HRV.Avg7 == nil || *d.HRV.Avg7 != 36 || d.HRV.Avg28 == nil || *d.HRV.Avg28 != 34.5 {
		t.Fatalf("HRV baseline = %+v", d.HRV)
	}
	if len(d.Freshness) != 1 || d.Freshness[0].Provider != "oura" {
		t.Fatalf("freshness = %+v", d.Freshness)
	}
	// The cache now holds the summary with the position it reflects; a
	// cache hit must not touch PostgreSQL, so close the pool's tables away.
	raw, err := redis.Cache{C: rc}.Get(ctx, "biosync:dashboard:v1:"+user.String())
	if err != nil {
		t.Fatalf("dashboard not cached after commit: %v", err)
	}
	var cached struct {
		P    int32 `json:"p"`
		Next int64 `json:"next"`
	}
	_ = json.Unmarshal(raw, &cached)
	if cached.P != last.Partition || cached.Next <= last.Offset {
		t.Fatalf("cached position %+v does not cover the last write %+v", cached, last)
	}

	// The API keeps its encoding of a cached summary under its stamp; a
	// newer summary must come with another stamp (never the older
	// rendering).
	hit, err := r.Dashboard(ctx, user, eventstore.Token{last})
	require.NoError(t, err)
	require.NotZero(t, hit.Stamp, "a summary from the in-process cache has a stamp")
	again, err := r.Dashboard(ctx, user, nil)
	require.NoError(t, err)
	assert.Equal(t, hit.Stamp, again.Stamp, "a second hit on the same cached summary keeps its stamp")
	newer := s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-20T12:00:00+09:00", "2026-11-20T13:00:00+09:00", 1000, "count"),
	}})
	require.NoError(t, (&engine.Consistency{Pool: s.Pool}).WaitFor(ctx, eventstore.Token{newer}, metrics.Name))
	d, err = r.Dashboard(ctx, user, eventstore.Token{newer})
	require.NoError(t, err)
	if d.Steps == nil || d.Steps.Value != 5321 {
		t.Fatalf("steps after the newer push = %+v, want 5321", d.Steps)
	}
	for range 2 { // as computed, then from the in-process cache
		assert.NotEqual(t, hit.Stamp, d.Stamp, "the newer summary has a stamp of its own")
		if d, err = r.Dashboard(ctx, user, eventstore.Token{newer}); err != nil {
			t.Fatal(err)
		}
	}
}

func metricType(s string) metric.Type { return metric.Type(s) }

// TestACorrectedOffsetMovesTheSampleToItsNewDayOnly: the same instant resent
// with a corrected offset is one sample, counted once, on the new day; the
// day it left loses its rollup. Day buckets carry their real length.
func TestACorrectedOffsetMovesTheSampleToItsNewDayOnly(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	s.Register(t, user, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := ingest.Source{Provider: "bridge"}
	s.Push(t, user, ingest.Batch{Source: src, Samples: []ingest.Sample{projectiontest.Sample("steps", "2026-11-20T23:30:00+01:00", "2026-11-20T23:45:00+01:00", 100, "count")}})
	s.Push(t, user, ingest.Batch{Source: src, Samples: []ingest.Sample{projectiontest.Sample("steps", "2026-11-21T00:30:00+02:00", "2026-11-21T00:45:00+02:00", 100, "count")}})
	// DST: Berlin's 2026-03-29 has 23 hours.
	s.Push(t, user, ingest.Batch{Source: src, Samples: []ingest.Sample{projectiontest.Sample("steps", "2026-03-29T12:00:00Z", "2026-03-29T12:10:00Z", 7, "count")}})
	project(t, s, &metrics.Projector{})
	r := &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions}
	series, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: "steps", From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay})
	require.NoError(t, err)
	if len(series.Points) != 2 {
		t.Fatalf("days = %+v; want the DST day and 2026-11-21 only", series.Points)
	}
	dst, moved := series.Points[0], series.Points[1]
	if got := dst.End.Sub(dst.Start); got != 23*time.Hour || dst.Start.Format(time.RFC3339) != "2026-03-29T00:00:00+01:00" {
		t.Fatalf("DST day %s lasts %v, want 23h", dst.Start.Format(time.RFC3339), got)
	}
	if moved.Start.Format("2006-01-02") != "2026-11-21" || moved.Value != 100 {
		t.Fatalf("corrected sample = %+v, want 100 steps on 2026-11-21 only", moved)
	}
}
