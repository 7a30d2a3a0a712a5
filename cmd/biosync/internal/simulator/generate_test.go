package simulator

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
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
			if s.End.Sub(s.Start) != 15*time.Minute || s.Value <= 0 || s.Unit != UnitCount {
				t.Fatalf("%s: bad step bucket %+v", day.Format(time.DateOnly), s)
			}
			if s.Value > 15*185 {
				t.Fatalf("%s: %v steps in 15 minutes is faster than a sprint cadence", day.Format(time.DateOnly), s.Value)
			}
			steps += s.Value
		}
		for _, s := range samplesOf(pl, MetricActiveEnergy) {
			kcal += s.Value
		}
		for _, s := range samplesOf(pl, MetricDistance) {
			dist += s.Value
		}
		if steps < minDailySteps || steps > maxDailySteps {
			t.Fatalf("%s: %v steps, want %d..%d", day.Format(time.DateOnly), steps, minDailySteps, maxDailySteps)
		}
		if m := dist / steps; m < 0.6 || m > 1.1 {
			t.Fatalf("%s: %.2f m per step", day.Format(time.DateOnly), m)
		}
		if k := kcal / steps; k < 0.025 || k > 0.08 {
			t.Fatalf("%s: %.3f kcal per step", day.Format(time.DateOnly), k)
		}
		if n := len(samplesOf(pl, MetricActiveEnergy)); n != len(samplesOf(pl, MetricSteps)) || n != len(samplesOf(pl, MetricDistance)) {
			t.Fatalf("%s: energy/distance buckets do not match step buckets", day.Format(time.DateOnly))
		}
	})
}

func TestGenerateDaySleepSession(t *testing.T) {
	var deepEarly, deepLate, remEarly, remLate time.Duration
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		if len(pl.SleepSessions) != 1 {
			t.Fatalf("%s: %d sleep sessions, want 1", day.Format(time.DateOnly), len(pl.SleepSessions))
		}
		ss := pl.SleepSessions[0]
		d := ss.End.Sub(ss.Start)
		if d < 6*time.Hour || d > 8*time.Hour+30*time.Minute {
			t.Fatalf("%s: session lasts %v", day.Format(time.DateOnly), d)
		}
		bed := ss.Start.In(p.Location)
		bedMin := bed.Hour()*60 + bed.Minute()
		if bedMin < 22*60+30 && bedMin > 30 {
			t.Fatalf("%s: bedtime %s outside 22:30-00:30", day.Format(time.DateOnly), bed.Format("15:04"))
		}
		if end := ss.End.In(p.Location); end.YearDay() != day.YearDay() {
			t.Fatalf("%s: session ends on %s, not this morning", day.Format(time.DateOnly), end)
		}
		if len(ss.Stages) == 0 || !ss.Stages[0].Start.Equal(ss.Start) || !ss.Stages[len(ss.Stages)-1].End.Equal(ss.End) {
			t.Fatalf("%s: stages do not span the session", day.Format(time.DateOnly))
		}
		mid := ss.Start.Add(d / 2)
		var asleep time.Duration
		for i, st := range ss.Stages {
			if !slices.Contains([]string{StageAwake, StageLight, StageDeep, StageREM}, st.Stage) {
				t.Fatalf("unknown stage %q", st.Stage)
			}
			if !st.End.After(st.Start) || st.Start.Before(ss.Start) || st.End.After(ss.End) {
				t.Fatalf("%s: stage %d %+v empty or outside session", day.Format(time.DateOnly), i, st)
			}
			if i > 0 && !st.Start.Equal(ss.Stages[i-1].End) {
				t.Fatalf("%s: gap or overlap before stage %d", day.Format(time.DateOnly), i)
			}
			if i > 0 && st.Stage == ss.Stages[i-1].Stage {
				t.Fatalf("%s: stage %d repeats %q", day.Format(time.DateOnly), i, st.Stage)
			}
			if st.Stage == StageAwake && i > 0 && i < len(ss.Stages)-1 && st.End.Sub(st.Start) > 10*time.Minute {
				t.Fatalf("%s: mid-night awakening of %v", day.Format(time.DateOnly), st.End.Sub(st.Start))
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
		if f := float64(asleep) / float64(d); f < 0.85 {
			t.Fatalf("%s: sleep efficiency %.2f", day.Format(time.DateOnly), f)
		}
	})
	if deepEarly < 2*deepLate {
		t.Errorf("deep sleep early %v vs late %v: want clearly front-loaded", deepEarly, deepLate)
	}
	if remLate < 2*remEarly {
		t.Errorf("REM early %v vs late %v: want clearly back-loaded", remEarly, remLate)
	}
}

func TestGenerateDayHeartRate(t *testing.T) {
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		hr := samplesOf(pl, MetricHeartRate)
		dayLen := day.AddDate(0, 0, 1).Sub(day)
		if want := int(dayLen / (5 * time.Minute)); len(hr) != want {
			t.Fatalf("%s: %d heart-rate samples, want %d", day.Format(time.DateOnly), len(hr), want)
		}
		ss := pl.SleepSessions[0]
		var sleepSum, awakeSum float64
		var sleepN, awakeN int
		for i, s := range hr {
			if !s.Start.Equal(s.End) || s.Unit != UnitBPM || s.Value < 38 || s.Value > 195 {
				t.Fatalf("bad heart rate sample %+v", s)
			}
			if i > 0 && s.Start.Sub(hr[i-1].Start) != 5*time.Minute {
				t.Fatalf("heart rate not every 5 minutes at %s", s.Start)
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
		if sleepMean >= awakeMean-5 {
			t.Fatalf("%s: mean HR asleep %.1f not well below awake %.1f", day.Format(time.DateOnly), sleepMean, awakeMean)
		}
		if sleepMean < 45 || sleepMean > 72 || awakeMean < 62 || awakeMean > 100 {
			t.Fatalf("%s: implausible means asleep %.1f awake %.1f", day.Format(time.DateOnly), sleepMean, awakeMean)
		}
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
			} else if len(got) != 1 {
				t.Fatalf("%s: %d %s samples, want 1", day.Format(time.DateOnly), len(got), typ)
			}
			for _, s := range got {
				if s.Value < r[0] || s.Value > r[1] || s.Unit != units[typ] {
					t.Fatalf("%s: %s = %v %s outside %v", day.Format(time.DateOnly), typ, s.Value, s.Unit, r)
				}
				if typ != MetricWeight && (!s.Start.Equal(ss.Start) || !s.End.Equal(ss.End)) {
					t.Fatalf("%s: %s does not cover the night", day.Format(time.DateOnly), typ)
				}
			}
		}
	})
	// 18 profiles x 45 days, weighed every third day.
	if weighIns < 18*14 || weighIns > 18*16 {
		t.Errorf("%d weigh-ins, want about one every three days", weighIns)
	}
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
	if shortN == 0 || longN == 0 {
		t.Fatalf("no short (%d) or long (%d) nights to compare", shortN, longN)
	}
	if short, long := shortSum/float64(shortN), longSum/float64(longN); short >= long {
		t.Errorf("relative HRV after short nights %.2f, after long nights %.2f", short, long)
	}
}

func TestGenerateDayOffsetsAndLimits(t *testing.T) {
	p := NewProfile(rand.New(rand.NewPCG(1, 2)), mustLoc(t, "Asia/Kolkata"))
	day := time.Date(2025, 6, 2, 0, 0, 0, 0, p.Location)
	until := time.Date(2025, 6, 2, 14, 7, 31, 0, time.UTC).In(p.Location) // 19:37:31 IST
	pl := GenerateDay(p, day, until, DayRand(p, day))
	if len(pl.Samples) == 0 {
		t.Fatal("no samples")
	}
	for _, s := range pl.Samples {
		if s.End.After(until) || s.End.Before(s.Start) {
			t.Fatalf("sample %+v ends after %s", s, until)
		}
	}
	body, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(`"start":"2025-06-02T00:00:00+05:30"`)) {
		t.Fatalf("times do not carry the local offset: %.300s", body)
	}
	if bytes.Contains(body, []byte("Z\"")) {
		t.Fatal("found a UTC timestamp; want local offsets only")
	}
	if bytes.Contains(body, []byte(`"sleep_sessions":null`)) || bytes.Contains(body, []byte(`"samples":null`)) {
		t.Fatal("null arrays in payload")
	}

	// Before the day starts there is nothing to send.
	empty := GenerateDay(p, day, day.Add(-time.Hour), DayRand(p, day))
	if len(empty.Samples) != 0 || len(empty.SleepSessions) != 0 {
		t.Fatal("data before the day started")
	}
	// At 05:00 the night is still running: no session yet, but sleep HR.
	early := GenerateDay(p, day, day.Add(5*time.Hour), DayRand(p, day))
	if len(early.SleepSessions) != 0 || len(samplesOf(early, MetricHeartRate)) != 61 {
		t.Fatalf("early morning: %d sessions, %d HR samples", len(early.SleepSessions), len(samplesOf(early, MetricHeartRate)))
	}
}

func TestGenerateDayDeterministic(t *testing.T) {
	loc := mustLoc(t, "Europe/Berlin")
	gen := func(seed uint64) []byte {
		p := NewProfile(rand.New(rand.NewPCG(seed, 1)), loc)
		var all []byte
		for i := range 7 {
			day := time.Date(2025, 10, 20+i, 0, 0, 0, 0, loc)
			b, err := json.Marshal(GenerateDay(p, day, time.Time{}, DayRand(p, day)))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	a, b, c := gen(42), gen(42), gen(43)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed gave different data")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds gave identical data")
	}
}

func TestGenerateDayBodySize(t *testing.T) {
	forEachDay(t, func(t *testing.T, p Profile, day time.Time, pl PushPayload) {
		b, err := json.Marshal(pl)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 256<<10 {
			t.Fatalf("%s: payload is %d bytes, want well under 1 MiB", day.Format(time.DateOnly), len(b))
		}
		if strings.Contains(string(b), "NaN") {
			t.Fatal("NaN in payload")
		}
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
				if s.Value > 85 {
					t.Fatalf("seed %d: heart rate %v at %s although asleep", seed, s.Value, s.Start)
				}
			}
		}
		if asleep == 0 {
			t.Fatalf("seed %d: the evening before a bedtime of %s has no heart rate during sleep", seed, ss.Start)
		}
		return
	}
	t.Fatal("no profile among 50 seeds goes to bed before midnight; the sleep model changed")
}
