package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/projections/metrics"
)

func TestATimezoneChangeAppliesToDataMeasuredAfterIt(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	s.Register(t, user, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	watch := ingest.Source{Provider: "bridge", Device: "watch"}
	// Measured and pushed before the change: 20:00Z is 21:00 in Berlin on
	// the 18th (it would be the 19th in Tokyo).
	s.Push(t, user, ingest.Batch{Source: watch, Samples: []ingest.Sample{projectiontest.Sample("steps", "2026-11-18T20:00:00Z", "2026-11-18T20:10:00Z", 100, "count")}})
	changed := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s.ChangeSettings(t, user, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Metric}, 1, changed)
	// A units-only change is no timezone fact.
	s.ChangeSettings(t, user, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Imperial}, 2, changed.Add(time.Hour))
	s.Push(t, user, ingest.Batch{Source: watch, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-19T20:00:00Z", "2026-11-19T20:10:00Z", 200, "count"),         // synced late, measured before: Berlin's 19th
		projectiontest.Sample("steps", "2026-11-20T20:00:00Z", "2026-11-20T20:10:00Z", 300, "count"),         // after: 05:00 on the 21st in Tokyo
		projectiontest.Sample("steps", "2026-11-20T22:00:00+01:00", "2026-11-20T22:10:00+01:00", 7, "count"), // its own offset wins over any zone
	}})
	m := &metrics.Projector{}
	project(t, s, m)

	r := &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions, Now: func() time.Time { return time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC) }}
	series, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: metric.Steps, From: time.Date(2026, 11, 17, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay})
	require.NoError(t, err)
	want := map[string]float64{"2026-11-18T00:00:00+01:00": 100, "2026-11-19T00:00:00+01:00": 200, "2026-11-20T00:00:00+01:00": 7, "2026-11-21T00:00:00+09:00": 300}
	got := map[string]float64{}
	for _, p := range series.Points {
		got[p.Start.Format(time.RFC3339)] = p.Value
	}
	assert.Equal(t, want, got, "days")
	var zones int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM tz_history_g1 WHERE user_id = $1`, user).Scan(&zones))
	assert.Equal(t, 2, zones, "timezone history: registration + one change")
	d, err := r.Dashboard(ctx, user, nil)
	require.NoError(t, err)
	assert.Equal(t, "Asia/Tokyo", d.Timezone)
	assert.Equal(t, "2026-11-21", d.Date, "today in Tokyo")
	require.NotNil(t, d.Steps)
	assert.Equal(t, 300.0, d.Steps.Value)
}

func TestLogOrderDecidesBetweenTimezoneChangesStampedOutOfOrder(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	s.Register(t, user, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s.ChangeSettings(t, user, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Metric}, 1, at)
	// Appended later, but stamped earlier by an instance whose clock is behind.
	s.ChangeSettings(t, user, settings.Profile{Timezone: "America/Chicago", Units: metric.Metric}, 2, at.Add(-time.Hour))
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-20T16:00:00Z", "2026-11-20T16:10:00Z", 10, "count"), // 10:00 on the 20th in Chicago, 01:00 on the 21st in Tokyo
	}})
	project(t, s, &metrics.Projector{})
	var date string
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT local_date::text FROM samples_g1 WHERE user_id = $1`, user).Scan(&date))
	assert.Equal(t, "2026-11-20", date, "Chicago's day")
	var zone string
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT zone FROM tz_history_g1 WHERE user_id = $1 ORDER BY valid_from DESC LIMIT 1`, user).Scan(&zone))
	assert.Equal(t, "America/Chicago", zone, "the change later in the log is the current one")
}
