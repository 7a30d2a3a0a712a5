package nights_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain/nights"
)

// t0 is 23:00 UTC the evening before the wake date.
var t0 = time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func f(v float64) *float64 { return &v }

// every returns one sample per step minutes in [from, to) with the values
// given in turn.
func every(from, to, step int, values ...float64) []nights.Sample {
	var out []nights.Sample
	for i, m := 0, from; m < to; i, m = i+1, m+step {
		out = append(out, nights.Sample{Start: at(m), End: at(m + step), Source: "oura", Value: values[i%len(values)]})
	}
	return out
}

// main is an eight-hour session, 23:00-07:00: 20 awake before falling
// asleep at 23:20, 40 awake in all, 240 light, 100 deep, 100 rem.
var main = nights.Session{Start: at(0), End: at(480), Source: "oura", FirstSleep: at(20), Awake: 40, Light: 240, Deep: 100, REM: 100}

func TestNightsAreDerivedFromTheMainSessionAndItsSamples(t *testing.T) {
	nap := nights.Session{Start: at(900), End: at(930), Source: "oura", FirstSleep: at(905), Light: 25}
	cases := []struct {
		name string
		in   nights.Input
		want nights.Night
	}{{
		// asleep 240+100+100 = 440 of 480 in bed: efficiency 440/480;
		// latency 23:00 -> 23:20; HRV mean (40+50+60)/3 = 50 (the 70
		// after the session's end is not the night's); the provider's
		// resting value wins over the heart rate samples.
		name: "worked example",
		in: nights.Input{
			Sessions:                 []nights.Session{main},
			HRVRMSSD:                 append(every(60, 240, 60, 40, 50, 60), nights.Sample{Start: at(480), End: at(481), Source: "oura", Value: 70}),
			HeartRate:                every(0, 480, 5, 60),
			Respiratory:              every(0, 480, 60, 14, 15),
			RestingHeartRate:         []nights.Sample{{Start: at(420), End: at(421), Source: "oura", Value: 52}},
			SkinTemperatureDeviation: []nights.Sample{{Start: at(420), End: at(421), Source: "oura", Value: -0.2}},
		},
		want: nights.Night{Source: "oura", SleepMinutes: 440, InBedMinutes: 480, DeepSleepMinutes: 100, REMSleepMinutes: 100,
			SleepLatencyMinutes: f(20), SleepEfficiency: f(440.0 / 480), HRVRMSSD: f(50), RestingHeartRate: f(52),
			RespiratoryRate: f(14.5), SkinTemperatureDeviation: f(-0.2)},
	}, {
		// No provider value: heart rate every 5 minutes is 60 except
		// 45 from 03:00 to 03:30 (six samples), so the lowest 30-minute
		// mean is 45; the last ten minutes are 30, but a window over
		// them would end after the session (06:45 + 30 min) and is not
		// taken, and the last one that fits (06:30-07:00) averages 50.
		name: "lowest 30-minute mean",
		in: nights.Input{
			Sessions: []nights.Session{main},
			HeartRate: append(append(append(every(0, 240, 5, 60), every(240, 270, 5, 45)...), every(270, 470, 5, 60)...),
				every(470, 480, 5, 30)...),
		},
		want: nights.Night{Source: "oura", SleepMinutes: 440, InBedMinutes: 480, DeepSleepMinutes: 100, REMSleepMinutes: 100,
			SleepLatencyMinutes: f(20), SleepEfficiency: f(440.0 / 480), RestingHeartRate: f(45)},
	}, {
		// The nap (30 min) is shorter than the main session; its HRV
		// and heart rate are not the night's, it is only counted.
		name: "naps apart",
		in: nights.Input{
			Sessions:  []nights.Session{nap, main},
			HRVRMSSD:  append(every(60, 120, 60, 40), every(900, 930, 10, 90)...),
			HeartRate: every(900, 930, 5, 40),
		},
		want: nights.Night{Source: "oura", SleepMinutes: 440, InBedMinutes: 480, DeepSleepMinutes: 100, REMSleepMinutes: 100,
			SleepLatencyMinutes: f(20), SleepEfficiency: f(440.0 / 480), HRVRMSSD: f(40), Naps: 1},
	}, {
		// No stage timings, no samples, a zero-length session: every
		// value that needs a missing input is absent.
		name: "missing inputs are null",
		in:   nights.Input{Sessions: []nights.Session{{Start: at(0), End: at(0), Source: "garmin"}}},
		want: nights.Night{Source: "garmin"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := nights.Derive(c.in)
			require.True(t, ok)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestNoSessionIsNoNight(t *testing.T) {
	_, ok := nights.Derive(nights.Input{HRVRMSSD: every(0, 60, 10, 50)})
	assert.False(t, ok)
}

func TestTheMainSessionIsTheLongestWhateverTheOrder(t *testing.T) {
	a := nights.Session{Start: at(0), End: at(300), Source: "b"}
	b := nights.Session{Start: at(0), End: at(300), Source: "a"}
	c := nights.Session{Start: at(400), End: at(420), Source: "a"}
	for _, in := range [][]nights.Session{{a, b, c}, {c, b, a}, {b, c, a}} {
		m, naps, ok := nights.Main(in)
		require.True(t, ok)
		assert.Equal(t, b, m, "equal lengths and starts go to the smaller source")
		assert.Equal(t, 2, naps)
	}
}

func TestTheProviderValueOfTheSessionSourceWins(t *testing.T) {
	s := []nights.Sample{
		{Start: at(400), End: at(401), Source: "apple", Value: 50},
		{Start: at(300), End: at(301), Source: "oura", Value: 55},
		{Start: at(410), End: at(411), Source: "oura", Value: 53},
	}
	v, ok := nights.DayValue(s, "oura")
	require.True(t, ok)
	assert.Equal(t, 53.0, v, "the latest of the session's source")
	v, ok = nights.DayValue(s, "garmin")
	require.True(t, ok)
	assert.Equal(t, 50.0, v, "otherwise the smallest source name")
}

func TestASessionShorterThanTheWindowHasNoLowestMean(t *testing.T) {
	_, ok := nights.LowestMean(every(0, 25, 5, 50), at(25), nights.RestingWindow)
	assert.False(t, ok)
}
