package simulator

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// testProfiles returns a spread of profiles over several time zones,
// including a half-hour offset and a southern-hemisphere DST zone.
func testProfiles(t testing.TB) []Profile {
	var ps []Profile
	rng := rand.New(rand.NewPCG(7, 11))
	for _, tz := range []string{"Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney", "UTC"} {
		for range 3 {
			ps = append(ps, NewProfile(rng, mustLoc(t, tz)))
		}
	}
	return ps
}

// forEachDay runs fn for 45 consecutive full days per test profile, spanning
// the 2025 European and US DST changes.
func forEachDay(t *testing.T, fn func(t *testing.T, p Profile, day time.Time, pl PushPayload)) {
	for _, p := range testProfiles(t) {
		first := time.Date(2025, 3, 1, 0, 0, 0, 0, p.Location)
		for i := range 45 {
			day := first.AddDate(0, 0, i)
			fn(t, p, day, GenerateDay(p, day, time.Time{}, DayRand(p, day)))
		}
	}
}

func samplesOf(pl PushPayload, typ string) []Sample {
	var out []Sample
	for _, s := range pl.Samples {
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

func TestGenerateDayStepsInRange(t *testing.T) {
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		var steps, kcal, dist float64
		for _, s := range samplesOf(pl, MetricSteps) {
			require.Equal(t, 15*time.Minute, s.End.Sub(s.Start), "%s: bad step bucket %+v", day.Format(time.DateOnly), s)
			require.True(t, s.Value > 0, "%s: bad step bucket %+v", day.Format(time.DateOnly), s)
			require.Equal(t, UnitCount, s.Unit, "%s: bad step bucket %+v", day.Format(time.DateOnly), s)
			require.LessOrEqual(t, s.Value, float64(15*185), "%s: %v steps in 15 minutes is faster than a sprint cadence", day.Format(time.DateOnly), s.Value)
			steps += s.Value
		}
		for _, s := range samplesOf(pl, MetricActiveEnergy) {
			kcal += s.Value
		}
		for _, s := range samplesOf(pl, MetricDistance) {
			dist += s.Value
		}
		require.GreaterOrEqual(t, steps, float64(minDailySteps), "%s: %v steps, want %d..%d", day.Format(time.DateOnly), steps, minDailySteps, maxDailySteps)
		require.LessOrEqual(t, steps, float64(maxDailySteps), "%s: %v steps, want %d..%d", day.Format(time.DateOnly), steps, minDailySteps, maxDailySteps)
		m := dist / steps
		require.GreaterOrEqual(t, m, 0.6, "%s: %.2f m per step", day.Format(time.DateOnly), m)
		require.LessOrEqual(t, m, 1.1, "%s: %.2f m per step", day.Format(time.DateOnly), m)
		k := kcal / steps
		require.GreaterOrEqual(t, k, 0.025, "%s: %.3f kcal per step", day.Format(time.DateOnly), k)
		require.LessOrEqual(t, k, 0.08, "%s: %.3f kcal per step", day.Format(time.DateOnly), k)
		n := len(samplesOf(pl, MetricActiveEnergy))
		require.Equal(t, len(samplesOf(pl, MetricSteps)), n, "%s: energy/distance buckets do not match step buckets", day.Format(time.DateOnly))
		require.Equal(t, len(samplesOf(pl, MetricDistance)), n, "%s: energy/distance buckets do not match step buckets", day.Format(time.DateOnly))
	})
}

func TestGenerateDaySleepSession(t *testing.T) {
	var deepEarly, deepLate, remEarly, remLate time.Duration
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		require.Len(t, pl.SleepSessions, 1, "%s: %d sleep sessions, want 1", day.Format(time.DateOnly), len(pl.SleepSessions))
		ss := pl.SleepSessions[0]
		d := ss.End.Sub(ss.Start)
		require.GreaterOrEqual(t, d, 6*time.Hour, "%s: session lasts %v", day.Format(time.DateOnly), d)
		require.LessOrEqual(t, d, 8*time.Hour+30*time.Minute, "%s: session lasts %v", day.Format(time.DateOnly), d)
		bed := ss.Start.In(p.Location)
		bedMin := bed.Hour()*60 + bed.Minute()
		require.True(t, bedMin >= 22*60+30 || bedMin <= 30, "%s: bedtime %s outside 22:30-00:30", day.Format(time.DateOnly), bed.Format("15:04"))
		end := ss.End.In(p.Location)
		require.Equal(t, day.YearDay(), end.YearDay(), "%s: session ends on %s, not this morning", day.Format(time.DateOnly), end)
		require.NotEqualValues(t, 0, len(ss.Stages), "%s: stages do not span the session", day.Format(time.DateOnly))
		require.True(t, ss.Stages[0].Start.Equal(ss.Start), "%s: stages do not span the session", day.Format(time.DateOnly))
		require.True(t, ss.Stages[len(ss.Stages)-1].End.Equal(ss.End), "%s: stages do not span the session", day.Format(time.DateOnly))
		mid := ss.Start.Add(d / 2)
		var asleep time.Duration
		for i, st := range ss.Stages {
			require.True(t, slices.Contains([]string{StageAwake, StageLight, StageDeep, StageREM}, st.Stage), "unknown stage %q", st.Stage)
			require.True(t, st.End.After(st.Start), "%s: stage %d %+v empty or outside session", day.Format(time.DateOnly), i, st)
			require.False(t, st.Start.Before(ss.Start), "%s: stage %d %+v empty or outside session", day.Format(time.DateOnly), i, st)
			require.False(t, st.End.After(ss.End), "%s: stage %d %+v empty or outside session", day.Format(time.DateOnly), i, st)
			if i > 0 {
				prev := ss.Stages[i-1]
				require.True(t, st.Start.Equal(prev.End), "%s: gap or overlap before stage %d", day.Format(time.DateOnly), i)
				require.NotEqual(t, prev.Stage, st.Stage, "%s: stage %d repeats", day.Format(time.DateOnly), i)
			}
			if st.Stage == StageAwake && i > 0 && i < len(ss.Stages)-1 {
				require.LessOrEqual(t, st.End.Sub(st.Start), 10*time.Minute, "%s: mid-night awakening", day.Format(time.DateOnly))
			}
			if st.Stage != StageAwake {
				asleep += st.End.Sub(st.Start)
			}
			early := overlap(st.Start, st.End, ss.Start, mid)
			late := overlap(st.Start, st.End, mid, ss.End)
			switch st.Stage {
			case StageDeep:
				deepEarly += early
				deepLate += late
			case StageREM:
				remEarly += early
				remLate += late
			}
		}
		f := float64(asleep) / float64(d)
		require.GreaterOrEqual(t, f, 0.85, "%s: sleep efficiency %.2f", day.Format(time.DateOnly), f)
	})
	assert.GreaterOrEqual(t, deepEarly, 2*deepLate, "deep sleep early %v vs late %v: want clearly front-loaded", deepEarly, deepLate)
	assert.GreaterOrEqual(t, remLate, 2*remEarly, "REM early %v vs late %v: want clearly back-loaded", remEarly, remLate)
}

func TestGenerateDayHeartRate(t *testing.T) {
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		hr := samplesOf(pl, MetricHeartRate)
		dayLen := day.AddDate(0, 0, 1).Sub(day)
		want := int(dayLen / (5 * time.Minute))
		require.Len(t, hr, want, "%s: %d heart-rate samples, want %d", day.Format(time.DateOnly), len(hr), want)
		ss := pl.SleepSessions[0]
		var sleepSum, awakeSum float64
		var sleepN, awakeN int
		for i, s := range hr {
			require.True(t, s.Start.Equal(s.End), "bad heart rate sample %+v", s)
			require.Equal(t, UnitBPM, s.Unit, "bad heart rate sample %+v", s)
			require.True(t, s.Value >= 38, "bad heart rate sample %+v", s)
			require.True(t, s.Value <= 195, "bad heart rate sample %+v", s)
			if i > 0 {
				require.Equal(t, 5*time.Minute, s.Start.Sub(hr[i-1].Start), "heart rate not every 5 minutes at %s", s.Start)
			}
			local := s.Start.In(p.Location)
			switch {
			case !s.Start.Before(ss.Start) && s.Start.Before(ss.End):
				sleepSum += s.Value
				sleepN++
			case local.Hour() >= 10 && local.Hour() < 21:
				awakeSum += s.Value
				awakeN++
			}
		}
		sleepMean, awakeMean := sleepSum/float64(sleepN), awakeSum/float64(awakeN)
		require.Less(t, sleepMean, awakeMean-5, "%s: mean HR asleep %.1f not well below awake %.1f", day.Format(time.DateOnly), sleepMean, awakeMean)
		require.True(t, sleepMean >= 45, "%s: implausible means asleep %.1f awake %.1f", day.Format(time.DateOnly), sleepMean, awakeMean)
		require.True(t, sleepMean <= 72, "%s: implausible means asleep %.1f awake %.1f", day.Format(time.DateOnly), sleepMean, awakeMean)
		require.True(t, awakeMean >= 62, "%s: implausible means asleep %.1f awake %.1f", day.Format(time.DateOnly), sleepMean, awakeMean)
		require.True(t, awakeMean <= 100, "%s: implausible means asleep %.1f awake %.1f", day.Format(time.DateOnly), sleepMean, awakeMean)
	})
}

func TestGenerateDayNightlyMetrics(t *testing.T) {
	ranges := map[string][2]float64{
		MetricRestingHeartRate:  {42, 75},
		MetricHRVRMSSD:          {10, 140},
		MetricSpO2:              {93, 100},
		MetricRespiratoryRate:   {10, 19},
		MetricSkinTempDeviation: {-1, 1.5},
		MetricWeight:            {50, 100},
	}
	units := map[string]string{
		MetricRestingHeartRate: UnitBPM, MetricHRVRMSSD: UnitMillis, MetricSpO2: UnitPercent,
		MetricRespiratoryRate: UnitBreathsPerMin, MetricSkinTempDeviation: UnitDegC, MetricWeight: UnitKg,
	}
	weighIns := 0
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		ss := pl.SleepSessions[0]
		for typ, r := range ranges {
			got := samplesOf(pl, typ)
			if typ == MetricWeight {
				weighIns += len(got)
			} else {
				require.Len(t, got, 1, "%s: %d %s samples, want 1", day.Format(time.DateOnly), len(got), typ)
			}
			for _, s := range got {
				require.GreaterOrEqual(t, s.Value, r[0], "%s: %s = %v %s outside %v", day.Format(time.DateOnly), typ, s.Value, s.Unit, r)
				require.LessOrEqual(t, s.Value, r[1], "%s: %s = %v %s outside %v", day.Format(time.DateOnly), typ, s.Value, s.Unit, r)
				require.Equal(t, units[typ], s.Unit, "%s: %s = %v %s outside %v", day.Format(time.DateOnly), typ, s.Value, s.Unit, r)
				if typ != MetricWeight {
					require.True(t, s.Start.Equal(ss.Start), "%s: %s starts at %s, not with the night at %s", day.Format(time.DateOnly), typ, s.Start, ss.Start)
					require.True(t, s.End.Equal(ss.End), "%s: %s ends at %s, not with the night at %s", day.Format(time.DateOnly), typ, s.End, ss.End)
				}
			}
		}
	})
	// 18 profiles x 45 days, weighed every third day.
	assert.InDelta(t, 18*15, weighIns, 18, "weigh-ins: want about one every three days")
}

// TestGenerateDayHRVFollowsSleep checks HRV is lower after short nights.
func TestGenerateDayHRVFollowsSleep(t *testing.T) {
	var shortSum, longSum float64
	var shortN, longN int
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		ss := pl.SleepSessions[0]
		rel := samplesOf(pl, MetricHRVRMSSD)[0].Value / p.HRVBaseline
		switch d := ss.End.Sub(ss.Start); {
		case d < time.Duration(p.SleepNeedH*float64(time.Hour))-45*time.Minute:
			shortSum += rel
			shortN++
		case d >= time.Duration(p.SleepNeedH*float64(time.Hour)):
			longSum += rel
			longN++
		}
	})
	require.NotEqualValues(t, 0, shortN, "no short (%d) or long (%d) nights to compare", shortN, longN)
	require.NotEqualValues(t, 0, longN, "no short (%d) or long (%d) nights to compare", shortN, longN)
	short, long := shortSum/float64(shortN), longSum/float64(longN)
	assert.Less(t, short, long, "relative HRV after short nights %.2f, after long nights %.2f", short, long)
}

func TestGenerateDayOffsetsAndLimits(t *testing.T) {
	p := NewProfile(rand.New(rand.NewPCG(1, 2)), mustLoc(t, "Asia/Kolkata"))
	day := time.Date(2025, 6, 2, 0, 0, 0, 0, p.Location)
	until := time.Date(2025, 6, 2, 14, 7, 31, 0, time.UTC).In(p.Location) // 19:37:31 IST
	pl := GenerateDay(p, day, until, DayRand(p, day))
	require.NotEqualValues(t, 0, len(pl.Samples), "no samples")
	for _, s := range pl.Samples {
		require.False(t, s.End.After(until), "sample %+v ends after %s", s, until)
		require.False(t, s.End.Before(s.Start), "sample %+v ends after %s", s, until)
	}
	body, err := json.Marshal(pl)
	require.NoError(t, err)
	require.True(t, bytes.Contains(body, []byte(`"start":"2025-06-02T00:00:00+05:30"`)), "times do not carry the local offset: %.300s", body)
	require.False(t, bytes.Contains(body, []byte("Z\"")), "found a UTC timestamp; want local offsets only")
	require.False(t, bytes.Contains(body, []byte(`"sleep_sessions":null`)), "null arrays in payload")
	require.False(t, bytes.Contains(body, []byte(`"samples":null`)), "null arrays in payload")

	// Before the day starts there is nothing to send.
	empty := GenerateDay(p, day, day.Add(-time.Hour), DayRand(p, day))
	require.Len(t, empty.Samples, 0, "data before the day started")
	require.Len(t, empty.SleepSessions, 0, "data before the day started")
	// At 05:00 the night is still running: no session yet, but sleep HR.
	early := GenerateDay(p, day, day.Add(5*time.Hour), DayRand(p, day))
	require.Len(t, early.SleepSessions, 0, "early morning: %d sessions, %d HR samples", len(early.SleepSessions), len(samplesOf(early, MetricHeartRate)))
	require.Len(t, samplesOf(early, MetricHeartRate), 61, "early morning: %d sessions, %d HR samples", len(early.SleepSessions), len(samplesOf(early, MetricHeartRate)))
}

func TestGenerateDayDeterministic(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	gen := func(seed uint64) []byte {
		p := NewProfile(rand.New(rand.NewPCG(seed, 1)), loc)
		var all []byte
		for i := range 7 {
			day := time.Date(2025, 10, 20+i, 0, 0, 0, 0, loc)
			b, err := json.Marshal(GenerateDay(p, day, time.Time{}, DayRand(p, day)))
			require.NoError(t, err)
			all = append(all, b...)
		}
		return all
	}
	a, b, c := gen(42), gen(42), gen(43)
	require.Equal(t, b, a, "same seed gave different data")
	require.False(t, bytes.Equal(a, c), "different seeds gave identical data")
}

func TestGenerateDayBodySize(t *testing.T) {
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		b, err := json.Marshal(pl)
		require.NoError(t, err)
		require.LessOrEqual(t, len(b), 256<<10, "%s: payload is %d bytes, want well under 1 MiB", day.Format(time.DateOnly), len(b))
		require.NotContains(t, string(b), "NaN", "NaN in payload")
	})
}

// TestNightsAgreeAcrossDays checks the session a day reports is the same
// night the previous day's evening heart rate already treated as sleep.
func TestNightsAgreeAcrossDays(t *testing.T) {
	// Find a seeded profile whose bedtime falls before midnight, so the
	// evening's day really holds part of the night (the comparison needs it).
	for seed := uint64(1); seed <= 50; seed++ {
		p := NewProfile(rand.New(rand.NewPCG(seed, seed)), mustLoc(t, "America/New_York"))
		d1 := time.Date(2025, 11, 1, 0, 0, 0, 0, p.Location) // DST ends on Nov 2
		d2 := d1.AddDate(0, 0, 1)
		ss := GenerateDay(p, d2, time.Time{}, DayRand(p, d2)).SleepSessions[0]
		if !ss.Start.Before(d2) {
			continue
		}
		evening := GenerateDay(p, d1, time.Time{}, DayRand(p, d1))
		asleep := 0
		for _, s := range samplesOf(evening, MetricHeartRate) {
			if !s.Start.Before(ss.Start) {
				asleep++
				require.True(t, s.Value <= 85, "seed %d: heart rate %v at %s although asleep", seed, s.Value, s.Start)
			}
		}
		require.NotEqualValues(t, 0, asleep, "seed %d: the evening before a bedtime of %s has no heart rate during sleep", seed, ss.Start)
		return
	}
	require.FailNow(t, "no profile among 50 seeds goes to bed before midnight; the sleep model changed")
}
