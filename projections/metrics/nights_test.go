package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// TestANightIsDerivedUpdatedByALaterPushAndRebuiltByteIdentical: a ring
// pushes the night that ends on the morning of 20 November (Berlin) with
// its stages, heart rate, breathing and skin temperature, and an afternoon
// nap; the night appears with the values domain/nights derives, the nap
// counted apart. A later push adds HRV and the provider's resting heart
// rate, and the night changes with it. A clean rebuild of the log in one
// batch holds byte-identical nights rows.
func TestANightIsDerivedUpdatedByALaterPushAndRebuiltByteIdentical(t *testing.T) {
	pool, _ := testbackend.Store(t, 8)
	ctx := context.Background()
	user := uuid.New()
	l := &userLog{t: t, user: user}
	l.add(uuid.New(), identity.EventRegistered, identity.Registered{Email: "night@example.com", Timezone: "Europe/Berlin", RegisteredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	ring := ingest.Source{Provider: "oura"}
	// 23:00-07:00: awake 15, light 165, deep 120, rem 150, awake 30.
	night := ingest.SleepSession{Start: at(19, 23, 0), End: at(20, 7, 0), Stages: []ingest.Stage{
		{Stage: "awake", Start: at(19, 23, 0), End: at(19, 23, 15)},
		{Stage: "light", Start: at(19, 23, 15), End: at(20, 2, 0)},
		{Stage: "deep", Start: at(20, 2, 0), End: at(20, 4, 0)},
		{Stage: "rem", Start: at(20, 4, 0), End: at(20, 6, 30)},
		{Stage: "awake", Start: at(20, 6, 30), End: at(20, 7, 0)},
	}}
	nap := ingest.SleepSession{Start: at(20, 14, 0), End: at(20, 14, 30), Stages: []ingest.Stage{{Stage: "light", Start: at(20, 14, 0), End: at(20, 14, 30)}}}
	// Heart rate every 10 minutes: 60, but 50 from 03:00 to 03:30, and 40
	// during the nap (not the night's).
	var hr []ingest.Sample
	for m := 0; m < 8*60; m += 10 {
		v := 60.0
		if m >= 4*60 && m < 4*60+30 {
			v = 50
		}
		ts := at(19, 23, m)
		hr = append(hr, projectiontest.Sample("heart_rate", ts, ts, v, "bpm"))
	}
	hr = append(hr, projectiontest.Sample("heart_rate", at(20, 14, 10), at(20, 14, 10), 40, "bpm"))
	l.push(ring, hr[:20])
	l.push(ring, append(hr[20:],
		projectiontest.Sample("respiratory_rate", at(20, 1, 0), at(20, 1, 0), 15, "breaths/min"),
		projectiontest.Sample("respiratory_rate", at(20, 5, 0), at(20, 5, 0), 16, "breaths/min"),
		projectiontest.Sample("skin_temperature_deviation", at(20, 7, 0), at(20, 7, 0), 0.3, "degC"),
	), night, nap)

	live := &metrics.Projector{}
	applyBatches(t, pool, live, l.events, 1, 2)
	r := &metrics.Reader{Pool: pool, Partitions: 1}
	read := func() metrics.Night {
		t.Helper()
		page, err := r.Nights(ctx, metrics.NightsQuery{UserID: user, From: "2026-11-19", To: "2026-11-21"})
		require.NoError(t, err)
		require.Len(t, page.Nights, 1, "one night (the nap is not a night of its own): %+v", page.Nights)
		return page.Nights[0]
	}
	f := func(v float64) *float64 { return &v }
	want := metrics.Night{Date: "2026-11-20", Source: "oura", SleepMinutes: 435, InBedMinutes: 480, DeepSleepMinutes: 120, REMSleepMinutes: 150,
		SleepLatencyMinutes: f(15), SleepEfficiency: f(435.0 / 480), RestingHeartRate: f(50), RespiratoryRate: f(15.5),
		SkinTemperatureDeviation: f(0.3), Naps: 1, AlgorithmVersion: 1}
	assert.Equal(t, want, read(), "no HRV yet; resting heart rate is the lowest 30-minute mean (03:00-03:30)")

	first := len(l.events)
	l.push(ring, []ingest.Sample{
		projectiontest.Sample("hrv_rmssd", at(20, 1, 0), at(20, 1, 0), 40, "ms"),
		projectiontest.Sample("hrv_rmssd", at(20, 5, 0), at(20, 5, 0), 60, "ms"),
		projectiontest.Sample("hrv_rmssd", at(20, 14, 5), at(20, 14, 5), 90, "ms"), // the nap's
		projectiontest.Sample("resting_heart_rate", at(20, 7, 0), at(20, 7, 0), 48, "bpm"),
	})
	applyBatches(t, pool, live, l.events[first:], 1)
	want.HRVRMSSD, want.RestingHeartRate = f(50), f(48)
	assert.Equal(t, want, read(), "the later push adds HRV, and the provider's resting value replaces the derived one")

	gen, err := (&engine.Versions{Pool: pool}).Create(ctx, live)
	require.NoError(t, err)
	applyBatches(t, pool, &metrics.Projector{Gen: gen}, l.events, len(l.events))
	got := tableDigest(t, pool, "nights_g1")
	assert.Contains(t, got, "(1 rows)")
	assert.Equal(t, tableDigest(t, pool, fmt.Sprintf("nights_g%d", gen)), got, "live (actual) against a clean rebuild (expected)")
}

// TestDeletingTheSleepRemovesTheNight: a deletion of the sleep sessions
// removes the night with them; deleting HRV alone leaves a night without
// HRV.
func TestDeletingTheSleepRemovesTheNight(t *testing.T) {
	pool, _ := testbackend.Store(t, 8)
	ctx := context.Background()
	user := uuid.New()
	l := &userLog{t: t, user: user}
	l.add(uuid.New(), identity.EventRegistered, identity.Registered{Email: "gone@example.com", Timezone: "Europe/Berlin", RegisteredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	l.push(ingest.Source{Provider: "oura"}, []ingest.Sample{projectiontest.Sample("hrv_rmssd", at(20, 1, 0), at(20, 1, 0), 40, "ms")},
		ingest.SleepSession{Start: at(19, 23, 0), End: at(20, 7, 0), Stages: []ingest.Stage{{Stage: "light", Start: at(19, 23, 0), End: at(20, 7, 0)}}})
	l.delete(ingest.Deletion{From: time.Date(2026, 11, 19, 0, 0, 0, 0, berlin), To: time.Date(2026, 11, 21, 0, 0, 0, 0, berlin), Type: "hrv_rmssd"})
	live := &metrics.Projector{}
	applyBatches(t, pool, live, l.events, 1)
	r := &metrics.Reader{Pool: pool, Partitions: 1}
	page, err := r.Nights(ctx, metrics.NightsQuery{UserID: user, From: "2026-11-01", To: "2026-11-30"})
	require.NoError(t, err)
	require.Len(t, page.Nights, 1)
	assert.Nil(t, page.Nights[0].HRVRMSSD, "the deleted HRV is not the night's any more")
	assert.Equal(t, 480.0, page.Nights[0].SleepMinutes)

	l.delete(ingest.Deletion{From: time.Date(2026, 11, 19, 0, 0, 0, 0, berlin), To: time.Date(2026, 11, 21, 0, 0, 0, 0, berlin), Type: ingest.SleepType})
	applyBatches(t, pool, live, l.events[len(l.events)-1:], 1)
	page, err = r.Nights(ctx, metrics.NightsQuery{UserID: user, From: "2026-11-01", To: "2026-11-30"})
	require.NoError(t, err)
	assert.Empty(t, page.Nights, "no session, no night")
}
