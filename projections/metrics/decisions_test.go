package metrics

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
)

var day = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func c(v float64) contrib {
	return contrib{value: v, dayStart: day, dayEnd: day.Add(24 * time.Hour), unit: "count"}
}

func TestFoldAddsNewSamplesToAnEmptyPartial(t *testing.T) {
	next, delta, ok := fold(partial{}, false, &srcChange{added: []contrib{c(3), c(1.5), c(7)}})
	require.True(t, ok)
	assert.Equal(t, int64(11_500_000_000), delta, "exact 1e-9 units")
	assert.Equal(t, 3, next.count)
	assert.Equal(t, 1.5, next.min)
	assert.Equal(t, 7.0, next.max)
	assert.Equal(t, "count", next.unit)
	assert.True(t, next.dayStart.Equal(day))
}

func TestFoldReplacesASampleThatHeldNoExtreme(t *testing.T) {
	s := partial{count: 3, min: 1, max: 9, dayStart: day, dayEnd: day.Add(24 * time.Hour), unit: "count"}
	next, delta, ok := fold(s, true, &srcChange{removed: []contrib{c(5)}, added: []contrib{c(6)}})
	require.True(t, ok)
	assert.Equal(t, int64(1_000_000_000), delta)
	assert.Equal(t, 3, next.count)
	assert.Equal(t, 1.0, next.min)
	assert.Equal(t, 9.0, next.max)
}

// A departing sample that held the minimum or maximum (and no arriving one
// holds it) cannot be folded: the partial is recomputed from the samples.
func TestFoldRecomputesWhenADepartingSampleHeldAnExtreme(t *testing.T) {
	s := partial{count: 3, min: 1, max: 9, dayStart: day, dayEnd: day.Add(24 * time.Hour), unit: "count"}
	_, _, ok := fold(s, true, &srcChange{removed: []contrib{c(9)}, added: []contrib{c(4)}})
	assert.False(t, ok, "the maximum left")
	_, _, ok = fold(s, true, &srcChange{removed: []contrib{c(1)}})
	assert.False(t, ok, "the minimum left")
	_, _, ok = fold(s, true, &srcChange{removed: []contrib{c(9)}, added: []contrib{c(9)}})
	assert.True(t, ok, "an arriving sample holds the same maximum")
	_, _, ok = fold(partial{}, false, &srcChange{removed: []contrib{c(2)}})
	assert.False(t, ok, "a departure the stored state cannot account for")
	_, _, ok = fold(partial{count: 1, min: 2, max: 2}, true, &srcChange{removed: []contrib{c(2), c(2)}})
	assert.False(t, ok, "more departures than samples")
}

// The day columns are extremes too: a departing sample that held them is
// recomputed; one that did not is folded.
func TestFoldTreatsTheDayColumnsAsExtremes(t *testing.T) {
	s := partial{count: 2, min: 1, max: 9, dayStart: day, dayEnd: day.Add(24 * time.Hour), unit: "count"}
	_, _, ok := fold(s, true, &srcChange{removed: []contrib{c(4)}})
	assert.False(t, ok, "the departing sample held day_start, day_end, day_offset and unit")

	other := contrib{value: 4, dayStart: day.Add(time.Hour), dayEnd: day.Add(25 * time.Hour), dayOffset: 3600, unit: "other"}
	next, delta, ok := fold(partial{count: 2, min: 1, max: 9, dayStart: day, dayEnd: day.Add(24 * time.Hour), unit: "count"}, true,
		&srcChange{removed: []contrib{other}})
	require.True(t, ok, "it held no extreme")
	assert.Equal(t, 1, next.count)
	assert.Equal(t, int64(-4_000_000_000), delta)
}

func TestFoldRecomputesWhenTheSumLeavesInt64(t *testing.T) {
	_, _, ok := fold(partial{}, false, &srcChange{added: []contrib{c(9e9), c(9e9)}})
	assert.False(t, ok)
	_, _, ok = fold(partial{}, false, &srcChange{added: []contrib{c(math.Inf(1))}})
	assert.False(t, ok)
}

func TestNanoUnitsRoundHalfToEvenLikePostgreSQL(t *testing.T) {
	v, ok := nanoUnits(0.0000000025)
	require.True(t, ok)
	assert.Equal(t, int64(2), v)
	v, ok = nanoUnits(-1.5)
	require.True(t, ok)
	assert.Equal(t, int64(-1_500_000_000), v)
	_, ok = nanoUnits(1e10)
	assert.False(t, ok)
	assert.Equal(t, 0.0, plusZero(math.Copysign(0, -1)))
	assert.False(t, math.Signbit(plusZero(math.Copysign(0, -1))))
}

func settingsEvent(t *testing.T, zone string, at time.Time) eventstore.Stored {
	body, err := json.Marshal(settings.ProfileChanged{Profile: settings.Profile{Timezone: zone, Units: metric.Metric}, Version: 1})
	require.NoError(t, err)
	return eventstore.Stored{Event: eventstore.Event{Type: settings.EventProfileChanged, Payload: body, OccurredAt: at}}
}

// A settings change is a timezone fact only when the zone changes; it
// applies from its own time, or just after the latest change when its
// clock was behind (log order decides).
func TestTimezoneHistoryDecidesTheLocalDay(t *testing.T) {
	reg := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	history := []metric.TimezoneChange{{From: reg, Zone: "Europe/Berlin"}}

	_, changed, err := timezoneChange(settingsEvent(t, "Europe/Berlin", reg.Add(time.Hour)), history)
	require.NoError(t, err)
	assert.False(t, changed, "the same zone is no fact")

	at := time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC)
	tokyo, changed, err := timezoneChange(settingsEvent(t, "Asia/Tokyo", at), history)
	require.NoError(t, err)
	require.True(t, changed)
	assert.Equal(t, at.Truncate(time.Microsecond), tokyo.From, "microseconds, like the table")
	history = addChange(history, tokyo)

	skewed, changed, err := timezoneChange(settingsEvent(t, "America/Chicago", at.Add(-time.Hour)), history)
	require.NoError(t, err)
	require.True(t, changed)
	assert.Equal(t, tokyo.From.Add(time.Microsecond), skewed.From, "stamped before the latest change: applies just after it")
	history = addChange(history, skewed)

	assert.Equal(t, "Europe/Berlin", zoneAt(history, reg.Add(-time.Hour)).String(), "data before registration takes the first zone")
	assert.Equal(t, "Europe/Berlin", zoneAt(history, at.Add(-time.Minute)).String())
	assert.Equal(t, "America/Chicago", zoneAt(history, at.Add(time.Minute)).String())
	assert.Equal(t, "UTC", zoneAt(nil, at).String(), "no history: UTC")
	assert.Equal(t, "UTC", loadZone("Not/AZone").String(), "an unknown zone reads as UTC")

	_, changed, err = timezoneChange(eventstore.Stored{Event: eventstore.Event{Type: settings.EventProfileChanged, Payload: []byte("{")}}, history)
	assert.Error(t, err, "a broken payload is the projector rejecting the event")
	assert.False(t, changed)
}

func TestAddChangeKeepsTheHistorySortedByTime(t *testing.T) {
	a := metric.TimezoneChange{From: day, Zone: "A"}
	b := metric.TimezoneChange{From: day.Add(time.Hour), Zone: "B"}
	h := addChange([]metric.TimezoneChange{b}, a)
	assert.Equal(t, []metric.TimezoneChange{a, b}, h)
}
