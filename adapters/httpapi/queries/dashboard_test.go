package queries

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/projections/metrics"
)

func dashboardFixture() metrics.Dashboard {
	now := time.Date(2026, 11, 20, 7, 30, 0, 123456789, time.FixedZone("", 3600))
	a7, a28, r7 := 48.25, 51.7, 1e21
	return metrics.Dashboard{Date: "2026-11-20", Timezone: "Europe/Berlin",
		Steps:        &metrics.DayValue{Date: "2026-11-20", Value: 8342, Source: "garmin/fenix-7"},
		ActiveEnergy: &metrics.DayValue{Date: "2026-11-20", Value: 412.123456789},
		LastNight: &metrics.SleepSummary{Date: "2026-11-20", Start: now.Add(-8 * time.Hour), End: now,
			AsleepMinutes: 431.5, DeepMinutes: 82, REMMinutes: 101, LightMinutes: 248, AwakeMinutes: 0.000001, Source: "garmin/fenix-7"},
		HRV:         metrics.Baseline{Latest: &metrics.DayValue{Date: "2026-11-19", Value: 46, Source: "oura"}, Avg7: &a7, Avg28: &a28, Unit: "ms"},
		RestingHR:   metrics.Baseline{Avg7: &r7, Unit: "bpm"},
		Freshness:   []metrics.Freshness{{Provider: "garmin", Device: "fenix-7", LastSampleAt: now, LastReceivedAt: now}, {Provider: "apple_health", LastSampleAt: now, LastReceivedAt: now}},
		GeneratedAt: now.UTC()}
}

// The wire form is the bytes the summary had when the view types carried
// the JSON tags (recorded from that code): names, order, omitempty and
// number formatting, in both unit systems, and an empty summary.
func TestTheDashboardEncodesAsItAlwaysHas(t *testing.T) {
	for _, c := range []struct {
		system metric.System
		d      metrics.Dashboard
		want   string
	}{
		{metric.Metric, dashboardFixture(), `{"date":"2026-11-20","timezone":"Europe/Berlin","steps":{"date":"2026-11-20","value":8342,"source":"garmin/fenix-7","unit":"count"},"active_energy":{"date":"2026-11-20","value":412.123456789,"unit":"kcal"},"last_night":{"date":"2026-11-20","start":"2026-11-19T23:30:00.123456789+01:00","end":"2026-11-20T07:30:00.123456789+01:00","asleep_minutes":431.5,"deep_minutes":82,"rem_minutes":101,"light_minutes":248,"awake_minutes":0.000001,"source":"garmin/fenix-7"},"hrv_rmssd":{"latest":{"date":"2026-11-19","value":46,"source":"oura","unit":"ms"},"avg_7d":48.25,"avg_28d":51.7,"unit":"ms"},"resting_heart_rate":{"latest":null,"avg_7d":1e+21,"avg_28d":null,"unit":"bpm"},"freshness":[{"provider":"garmin","device":"fenix-7","last_sample_at":"2026-11-20T07:30:00.123456789+01:00","last_received_at":"2026-11-20T07:30:00.123456789+01:00"},{"provider":"apple_health","last_sample_at":"2026-11-20T07:30:00.123456789+01:00","last_received_at":"2026-11-20T07:30:00.123456789+01:00"}],"generated_at":"2026-11-20T06:30:00.123456789Z"}`},
		{metric.Imperial, dashboardFixture(), `{"date":"2026-11-20","timezone":"Europe/Berlin","steps":{"date":"2026-11-20","value":8342,"source":"garmin/fenix-7","unit":"count"},"active_energy":{"date":"2026-11-20","value":412.123456789,"unit":"kcal"},"last_night":{"date":"2026-11-20","start":"2026-11-19T23:30:00.123456789+01:00","end":"2026-11-20T07:30:00.123456789+01:00","asleep_minutes":431.5,"deep_minutes":82,"rem_minutes":101,"light_minutes":248,"awake_minutes":0.000001,"source":"garmin/fenix-7"},"hrv_rmssd":{"latest":{"date":"2026-11-19","value":46,"source":"oura","unit":"ms"},"avg_7d":48.25,"avg_28d":51.7,"unit":"ms"},"resting_heart_rate":{"latest":null,"avg_7d":1e+21,"avg_28d":null,"unit":"bpm"},"freshness":[{"provider":"garmin","device":"fenix-7","last_sample_at":"2026-11-20T07:30:00.123456789+01:00","last_received_at":"2026-11-20T07:30:00.123456789+01:00"},{"provider":"apple_health","last_sample_at":"2026-11-20T07:30:00.123456789+01:00","last_received_at":"2026-11-20T07:30:00.123456789+01:00"}],"generated_at":"2026-11-20T06:30:00.123456789Z"}`},
		{metric.Metric, metrics.Dashboard{}, `{"date":"","timezone":"","steps":null,"active_energy":null,"last_night":null,"hrv_rmssd":{"latest":null,"avg_7d":null,"avg_28d":null,"unit":"ms"},"resting_heart_rate":{"latest":null,"avg_7d":null,"avg_28d":null,"unit":"bpm"},"freshness":[],"generated_at":"0001-01-01T00:00:00Z"}`},
	} {
		body, err := encodeDashboard(c.d, c.system)
		require.NoError(t, err)
		assert.Equal(t, c.want+"\n", string(body), c.system)
	}
}

// A summary from the query side's in-process cache (a stamp) is encoded
// once per unit system; a newer summary of the same user (a new stamp) is
// encoded afresh, and one without a stamp is never kept.
func TestDashboardEncodingsAreKeptPerSummaryAndUnitSystem(t *testing.T) {
	var r renderedDashboards
	d := dashboardFixture()
	d.UserID, d.Stamp = uuid.New(), 7
	first, err := r.body(d, metric.Metric)
	require.NoError(t, err)
	again, err := r.body(d, metric.Metric)
	require.NoError(t, err)
	assert.Same(t, &first[0], &again[0], "the same summary is encoded once")
	imperial, err := r.body(d, metric.Imperial)
	require.NoError(t, err)
	assert.NotSame(t, &first[0], &imperial[0], "each unit system has its own encoding")
	imperialAgain, err := r.body(d, metric.Imperial)
	require.NoError(t, err)
	assert.Same(t, &imperial[0], &imperialAgain[0])

	newer := d
	newer.Stamp, newer.Steps = 8, &metrics.DayValue{Date: "2026-11-20", Value: 9000}
	body, err := r.body(newer, metric.Metric)
	require.NoError(t, err)
	assert.Contains(t, string(body), `"value":9000`, "a newer summary never meets an older encoding")

	unstamped := newer
	unstamped.Stamp, unstamped.Steps = 0, &metrics.DayValue{Date: "2026-11-20", Value: 1}
	body, err = r.body(unstamped, metric.Metric)
	require.NoError(t, err)
	assert.Contains(t, string(body), `"value":1,`)
	body, err = r.body(newer, metric.Metric)
	require.NoError(t, err)
	assert.Contains(t, string(body), `"value":9000`, "an unstamped summary is not kept")
}

// NewDashboardJSON never writes into the summary it was given (a cached
// one is shared by concurrent requests).
func TestTheWireFormSharesNothingWithTheSummary(t *testing.T) {
	d := dashboardFixture()
	w := NewDashboardJSON(d, metric.Imperial)
	w.Steps.Value, *w.HRV.Avg7 = -1, -1
	assert.Equal(t, 8342.0, d.Steps.Value)
	assert.Equal(t, "", d.Steps.Unit)
	assert.Equal(t, 48.25, *d.HRV.Avg7)
}
