package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shared cache's entries keep the bytes earlier versions wrote
// (recorded from the code in which the view types carried JSON tags), so
// instances of both versions read each other's entries during a deploy.
func TestCachedSummariesKeepTheirStorageFormat(t *testing.T) {
	now := time.Date(2026, 11, 20, 7, 30, 0, 123456789, time.FixedZone("", 3600))
	a7, a28 := 48.25, 51.7
	d := Dashboard{Date: "2026-11-20", Timezone: "Europe/Berlin",
		Steps: &DayValue{Date: "2026-11-20", Value: 8342, Source: "garmin/fenix-7"},
		LastNight: &SleepSummary{Date: "2026-11-20", Start: now.Add(-8 * time.Hour), End: now,
			AsleepMinutes: 431.5, DeepMinutes: 82, REMMinutes: 101, LightMinutes: 248, AwakeMinutes: 0.000001, Source: "garmin/fenix-7"},
		HRV:         Baseline{Latest: &DayValue{Date: "2026-11-19", Value: 46, Source: "oura"}, Avg7: &a7, Avg28: &a28, Unit: "ms"},
		RestingHR:   Baseline{Unit: "bpm"},
		Freshness:   []Freshness{{Provider: "garmin", Device: "fenix-7", LastSampleAt: now, LastReceivedAt: now}, {Provider: "apple_health", LastSampleAt: now, LastReceivedAt: now}},
		GeneratedAt: now.UTC()}
	want := `{"g":2,"p":7,"next":12345,"d":{"date":"2026-11-20","timezone":"Europe/Berlin","steps":{"date":"2026-11-20","value":8342,"source":"garmin/fenix-7"},"active_energy":null,"last_night":{"date":"2026-11-20","start":"2026-11-19T23:30:00.123456789+01:00","end":"2026-11-20T07:30:00.123456789+01:00","asleep_minutes":431.5,"deep_minutes":82,"rem_minutes":101,"light_minutes":248,"awake_minutes":0.000001,"source":"garmin/fenix-7"},"hrv_rmssd":{"latest":{"date":"2026-11-19","value":46,"source":"oura"},"avg_7d":48.25,"avg_28d":51.7,"unit":"ms"},"resting_heart_rate":{"latest":null,"avg_7d":null,"avg_28d":null,"unit":"bpm"},"freshness":[{"provider":"garmin","device":"fenix-7","last_sample_at":"2026-11-20T07:30:00.123456789+01:00","last_received_at":"2026-11-20T07:30:00.123456789+01:00"},{"provider":"apple_health","last_sample_at":"2026-11-20T07:30:00.123456789+01:00","last_received_at":"2026-11-20T07:30:00.123456789+01:00"}],"generated_at":"2026-11-20T06:30:00.123456789Z"}}`
	c := cachedDashboard{Generation: 2, Partition: 7, Next: 12345, Dashboard: d}
	raw, err := encodeCached(c)
	require.NoError(t, err)
	assert.Equal(t, want, string(raw))

	back, err := decodeCached([]byte(want))
	require.NoError(t, err)
	assert.Equal(t, c.Generation, back.Generation)
	assert.Equal(t, c.Partition, back.Partition)
	assert.Equal(t, c.Next, back.Next)
	again, err := encodeCached(back)
	require.NoError(t, err)
	assert.Equal(t, want, string(again), "decoding and encoding again changes nothing")
}
