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
	require.Len(t, steps, 1, "Tokyo steps = %+v; want one day", steps)
	assert.Equal(t, 1500.0, steps[0].Value, "Tokyo steps: the watch only (duplicates and the phone not added)")
	assert.Equal(t, "apple_health/watch", steps[0].Source, "Tokyo steps come from the watch only")
	assert.Equal(t, "2026-11-20T00:00:00+09:00", steps[0].Start.Format(time.RFC3339), "a day bucket starts at local midnight")

	d := day(tokyo, "distance", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z")
	require.Len(t, d, 1, "distance = %+v", d)
	assert.Equal(t, 1200.0, d[0].Value, "distance in m (km converted)")

	// RMSSD and SDNN must stay separate.
	rm := day(tokyo, "hrv_rmssd", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z")
	sd := day(tokyo, "hrv_sdnn", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z")
	require.Len(t, rm, 1, "RMSSD = %+v", rm)
	require.Len(t, sd, 1, "SDNN = %+v", sd)
	assert.Equal(t, 40.0, rm[0].Value, "RMSSD")
	assert.Equal(t, 90.0, sd[0].Value, "SDNN")

	nyDays := day(ny, "steps", "2026-03-01T00:00:00Z", "2026-12-01T00:00:00Z")
	want := map[string]float64{"2026-03-08T00:00:00-05:00": 10, "2026-03-09T00:00:00-04:00": 20, "2026-11-20T00:00:00-05:00": 50}
	require.Len(t, nyDays, len(want), "New York days = %+v", nyDays)
	for _, p := range nyDays {
		assert.Equal(t, want[p.Start.Format(time.RFC3339)], p.Value, "New York day %s, want %v", p.Start.Format(time.RFC3339), want)
	}
	w := day(ny, "weight", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z")
	require.Len(t, w, 1, "weight = %+v", w)
	assert.InDelta(t, 68.035, w[0].Value, 0.005, "weight, want 68.04 kg (150 lb converted)")

	sleep, err := r.SleepSessions(ctx, metrics.SleepQuery{UserID: tokyo, From: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.Len(t, sleep.Sessions, 1, "sleep = %+v", sleep.Sessions)
	assert.Nil(t, sleep.Next, "one session is one page")
	night := sleep.Sessions[0]
	assert.Equal(t, "2026-11-20", night.Date, "the night is counted on the wake-up date")
	assert.Equal(t, 90.0, night.DeepMinutes, "deep minutes")
	assert.Equal(t, 90.0, night.REMMinutes, "REM minutes")
	assert.Equal(t, 10.0, night.AwakeMinutes, "awake minutes")
	assert.Equal(t, 440.0, night.AsleepMinutes, "asleep minutes")

	hours, err := r.Metrics(ctx, metrics.MetricQuery{UserID: tokyo, Type: "steps", From: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketHour})
	require.NoError(t, err)
	require.Len(t, hours.Points, 2, "hour buckets = %+v", hours.Points)
	assert.Equal(t, "2026-11-20T08:00:00+09:00", hours.Points[0].Start.Format(time.RFC3339), "first hour bucket")
	assert.Equal(t, 1200.0, hours.Points[0].Value, "first hour bucket")

	me, err := (&users.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}).Me(ctx, tokyo)
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
	assert.Equal(t, "2026-11-20", d.Date, "dashboard date is today in Tokyo")
	require.NotNil(t, d.Steps, "dashboard = %+v; want today's steps", d)
	assert.Equal(t, 4321.0, d.Steps.Value, "today's (Tokyo) steps")
	require.NotNil(t, d.HRV.Latest, "HRV baseline = %+v", d.HRV)
	require.NotNil(t, d.HRV.Avg7, "HRV baseline = %+v", d.HRV)
	require.NotNil(t, d.HRV.Avg28, "HRV baseline = %+v", d.HRV)
	assert.Equal(t, 39.0, d.HRV.Latest.Value, "latest HRV")
	assert.Equal(t, 36.0, *d.HRV.Avg7, "7-day HRV average")
	assert.Equal(t, 34.5, *d.HRV.Avg28, "28-day HRV average")
	require.Len(t, d.Freshness, 1, "freshness = %+v", d.Freshness)
	assert.Equal(t, "oura", d.Freshness[0].Provider, "freshness")
	// The cache now holds the summary with the position it reflects; a
	// cache hit must not touch PostgreSQL, so close the pool's tables away.
	raw, err := redis.Cache{C: rc}.Get(ctx, "biosync:dashboard:v1:"+user.String())
	require.NoError(t, err, "dashboard not cached after commit")
	var cached struct {
		P    int32 `json:"p"`
		Next int64 `json:"next"`
	}
	_ = json.Unmarshal(raw, &cached)
	assert.Equal(t, last.Partition, cached.P, "cached position %+v is on another partition than the last write %+v", cached, last)
	assert.Greater(t, cached.Next, last.Offset, "cached position %+v does not cover the last write %+v", cached, last)

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
	require.NotNil(t, d.Steps, "steps after the newer push")
	assert.Equal(t, 5321.0, d.Steps.Value, "steps after the newer push")
	for range 2 { // as computed, then from the in-process cache
		assert.NotEqual(t, hit.Stamp, d.Stamp, "the newer summary has a stamp of its own")
		d, err = r.Dashboard(ctx, user, eventstore.Token{newer})
		require.NoError(t, err)
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
	require.Len(t, series.Points, 2, "days = %+v; want the DST day and 2026-11-21 only", series.Points)
	dst, moved := series.Points[0], series.Points[1]
	assert.Equal(t, "2026-03-29T00:00:00+01:00", dst.Start.Format(time.RFC3339), "the DST day starts at local midnight")
	assert.Equal(t, 23*time.Hour, dst.End.Sub(dst.Start), "the DST day %s lasts 23h", dst.Start.Format(time.RFC3339))
	assert.Equal(t, "2026-11-21", moved.Start.Format("2006-01-02"), "corrected sample = %+v, want it on 2026-11-21 only", moved)
	assert.Equal(t, 100.0, moved.Value, "corrected sample = %+v, want 100 steps", moved)
}
