package simulator

import (
	"math"
	"math/rand/v2"
	"time"
)

const (
	hrInterval     = 5 * time.Minute
	stepBucket     = 15 * time.Minute
	minDailySteps  = 5000
	maxDailySteps  = 14000
	minSleep       = 6 * time.Hour
	maxSleep       = 8*time.Hour + 30*time.Minute
	earliestBedMin = 0   // 22:30
	latestBedMin   = 120 // 00:30
	// nightStream separates the night-plan random streams from the per-day
	// streams callers derive from the same Profile.Seed.
	nightStream = 0x6e69676874 // "night"
)

// sleepHROffset is how far above resting heart rate each sleep stage sits.
var sleepHROffset = map[string]float64{StageDeep: 0, StageLight: 2, StageREM: 4.5, StageAwake: 9}

// night is one planned sleep session.
type night struct {
	start, end time.Time
	stages     []SleepStage
}

func (n night) contains(t time.Time) bool { return !t.Before(n.start) && t.Before(n.end) }

// stageAt returns the sleep stage at t, or "" when t is outside the session.
func (n night) stageAt(t time.Time) string {
	for _, s := range n.stages {
		if !t.Before(s.Start) && t.Before(s.End) {
			return s.Stage
		}
	}
	return ""
}

// asleepDuration is the session length minus wake periods inside it.
func (n night) asleepDuration() time.Duration {
	d := n.end.Sub(n.start)
	for _, s := range n.stages {
		if s.Stage == StageAwake {
			d -= s.End.Sub(s.Start)
		}
	}
	return d
}

// localMidnight returns 00:00 of t's calendar day in loc.
func localMidnight(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}

// dayNumber numbers civil days (days since 1970-01-01) independently of time
// zone and DST, to key deterministic per-day random streams.
func dayNumber(day time.Time) int64 {
	return time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// DayRand returns the deterministic random source GenerateDay should use for
// p on the given local day, so a day's data is reproducible in isolation.
func DayRand(p Profile, day time.Time) *rand.Rand {
	return rand.New(rand.NewPCG(p.Seed, uint64(dayNumber(day.In(p.loc())))))
}

// planNight plans the sleep session that starts on the evening of the local
// day `evening`. It depends only on p and that date, so the two calendar days
// a night spans agree on it.
func planNight(p Profile, evening time.Time) night {
	loc := p.loc()
	d := localMidnight(evening, loc)
	rng := rand.New(rand.NewPCG(p.Seed^nightStream, uint64(dayNumber(d))))

	bedMin := p.BedtimeMin + 20*rng.NormFloat64()
	if wd := d.Weekday(); wd == time.Friday || wd == time.Saturday {
		bedMin += 35
	}
	bedMin = clamp(bedMin, earliestBedMin, latestBedMin)
	start := time.Date(d.Year(), d.Month(), d.Day(), 22, 30, 0, 0, loc).Add(time.Duration(math.Round(bedMin)) * time.Minute)

	durMin := p.SleepNeedH*60 + 30*rng.NormFloat64()
	if rng.Float64() < 0.12 { // the occasional short night
		durMin -= 50 + 40*rng.Float64()
	}
	durMin = clamp(durMin, minSleep.Minutes(), maxSleep.Minutes())
	dur := time.Duration(math.Round(durMin)) * time.Minute

	return night{start: start, end: start.Add(dur), stages: buildStages(rng, start, dur)}
}

// stageSpan is a stage with a length in whole minutes, before placement.
type stageSpan struct {
	stage string
	min   int
}

// buildStages lays out a hypnogram of ~90-minute cycles (light, deep, light,
// REM) with more deep sleep early, more REM late, brief awakenings between
// cycles, a sleep-onset latency and usually a short wake before getting up.
// The result is contiguous and covers [start, start+dur) exactly.
func buildStages(rng *rand.Rand, start time.Time, dur time.Duration) []SleepStage {
	total := int(dur / time.Minute)
	spans := []stageSpan{{StageAwake, 4 + rng.IntN(14)}}
	used := spans[0].min
	for cycle := 0; used < total; cycle++ {
		length := 85 + rng.IntN(26)
		deep := int(math.Round(max(0, 40-12*float64(cycle)) * (0.8 + 0.4*rng.Float64())))
		rem := int(math.Round((8 + 9*float64(cycle)) * (0.8 + 0.4*rng.Float64())))
		rem = min(rem, length/2)
		light := max(20, length-deep-rem)
		first := light * 3 / 5
		for _, s := range []stageSpan{{StageLight, first}, {StageDeep, deep}, {StageLight, light - first}, {StageREM, rem}} {
			spans = append(spans, s)
			used += s.min
		}
		if rng.Float64() < 0.4 {
			s := stageSpan{StageAwake, 1 + rng.IntN(5)}
			spans = append(spans, s)
			used += s.min
		}
	}

	// Clip to the session length, then carve the final wake-up.
	var clipped []stageSpan
	left := total
	for _, s := range spans {
		if left == 0 {
			break
		}
		s.min = min(s.min, left)
		left -= s.min
		if s.min > 0 {
			clipped = append(clipped, s)
		}
	}
	switch last := &clipped[len(clipped)-1]; {
	case last.stage == StageAwake:
	case last.min <= 10:
		last.stage = StageAwake // a clipped sliver reads as lying awake
	case rng.Float64() < 0.7:
		wake := 2 + rng.IntN(7)
		last.min -= wake
		clipped = append(clipped, stageSpan{StageAwake, wake})
	}

	// Merge neighbours of the same stage (e.g. light-light when a late cycle
	// has no deep sleep) and place on the clock.
	var out []SleepStage
	t := start
	for _, s := range clipped {
		end := t.Add(time.Duration(s.min) * time.Minute)
		if n := len(out); n > 0 && out[n-1].Stage == s.stage {
			out[n-1].End = end
		} else {
			out = append(out, SleepStage{Stage: s.stage, Start: t, End: end})
		}
		t = end
	}
	return out
}

// block is a period of purposeful activity that attracts steps.
type block struct {
	from, to time.Time
	weight   float64 // relative step intensity per fully covered bucket
}

// overlap returns how long [a1,a2) and [b1,b2) intersect.
func overlap(a1, a2, b1, b2 time.Time) time.Duration {
	lo, hi := intersect(a1, a2, b1, b2)
	return hi.Sub(lo)
}

// softClamp limits x to [lo, hi] but compresses values in the outer 15% of
// the range first, so totals rarely sit exactly on a bound.
func softClamp(x, lo, hi float64) float64 {
	margin := 0.15 * (hi - lo)
	if top := hi - margin; x > top {
		x = top + (x-top)*0.3
	}
	if bottom := lo + margin; x < bottom {
		x = bottom - (bottom-x)*0.3
	}
	return clamp(x, lo, hi)
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// GenerateDay produces one local calendar day of data for p: the sleep
// session that ends on that morning with its nightly metrics, 15-minute step
// buckets with active energy and distance, heart rate every five minutes, and
// a morning weigh-in every third day. day may be any instant on that day; it
// is interpreted in p.Location. Data ending after until is left out (the
// zero Time means the whole day), which is how the last simulated day stops
// at "now". The result's UserID is empty; the caller fills it.
//
// GenerateDay is a pure function: the same arguments and the same state of
// rng always give the same payload. Use DayRand for a reproducible rng.
func GenerateDay(p Profile, day time.Time, until time.Time, rng *rand.Rand) PushPayload {
	loc := p.loc()
	dayStart := localMidnight(day, loc)
	dayEnd := dayStart.AddDate(0, 0, 1)
	end := dayEnd
	if !until.IsZero() && until.Before(end) {
		end = until.In(loc)
	}
	out := PushPayload{
		Source:        Source{Provider: ProviderName, Device: p.Device},
		Samples:       []Sample{},
		SleepSessions: []SleepSession{},
	}
	if !end.After(dayStart) {
		return out
	}
	at := func(h, m int) time.Time {
		return time.Date(dayStart.Year(), dayStart.Month(), dayStart.Day(), h, m, 0, 0, loc)
	}
	add := func(typ string, start, stop time.Time, v float64, unit string) {
		if stop.After(end) {
			return
		}
		out.Samples = append(out.Samples, Sample{Type: typ, Start: start, End: stop, Value: v, Unit: unit})
	}

	prev := planNight(p, dayStart.AddDate(0, 0, -1)) // ends this morning
	next := planNight(p, dayStart)                   // starts tonight
	wake, bedtime := prev.end, next.start

	// Slow, smooth drifts keyed by the civil day, with profile-specific
	// phases, so consecutive days agree without sharing random state.
	dn := float64(dayNumber(dayStart))
	phase := float64(p.Seed%6283) / 1000
	drift := 1.6*math.Sin(2*math.Pi*dn/23+phase) + 0.8*math.Sin(2*math.Pi*dn/61+2*phase)
	sleepDebt := max(0, p.SleepNeedH-0.4-prev.asleepDuration().Hours())

	// Planted effects of what the user logged yesterday evening on last
	// night: each drink (up to four) raises the resting heart rate by 1.5
	// bpm and lowers HRV by 7 %, a late meal raises the resting heart rate
	// by 1 bpm, so insights have something true to find.
	yesterday := GenerateJournal(p, dayStart.AddDate(0, 0, -1))
	drinks := min(4, yesterday.amount("alcohol_drinks"))
	rhr := math.Round(p.RestingHR + drift + 1.2*sleepDebt + 1.5*drinks + yesterday.amount("late_meal") + 0.7*rng.NormFloat64())
	hrv := p.HRVBaseline * math.Exp(0.15*rng.NormFloat64()-0.12*sleepDebt-0.03*drift-0.07*drinks)

	// Last night: session plus nightly summary metrics.
	if !prev.end.After(end) {
		out.SleepSessions = append(out.SleepSessions, SleepSession{Start: prev.start, End: prev.end, Stages: prev.stages})
		add(MetricRestingHeartRate, prev.start, prev.end, rhr, UnitBPM)
		add(MetricHRVRMSSD, prev.start, prev.end, round(clamp(hrv, 8, 180), 1), UnitMillis)
		add(MetricSpO2, prev.start, prev.end, round(clamp(97+0.6*rng.NormFloat64(), 93, 99.8), 1), UnitPercent)
		add(MetricRespiratoryRate, prev.start, prev.end, round(p.RespRate+0.35*rng.NormFloat64()+0.3*sleepDebt, 1), UnitBreathsPerMin)
		temp := 0.12*rng.NormFloat64() + 0.08*sleepDebt
		if rng.Float64() < 0.04 { // a feverish night now and then
			temp += 0.5 + 0.5*rng.Float64()
		}
		add(MetricSkinTempDeviation, prev.start, prev.end, round(temp, 2), UnitDegC)
	}

	// Weigh-in every third morning, shortly after getting up.
	weight := p.WeightKg + 0.7*math.Sin(2*math.Pi*dn/45+3*phase) + 0.25*rng.NormFloat64()
	if (int64(dn)+int64(p.Seed%3))%3 == 0 {
		t := wake.Add(time.Duration(5+rng.IntN(20)) * time.Minute)
		add(MetricWeight, t, t, round(weight, 1), UnitKg)
	}

	// Activity blocks for the waking day.
	weekend := dayStart.Weekday() == time.Saturday || dayStart.Weekday() == time.Sunday
	mins := func(n float64) time.Duration { return time.Duration(math.Round(n)) * time.Minute }
	blocks := []block{{from: wake.Add(15 * time.Minute), to: wake.Add(45 * time.Minute), weight: 1}}
	if weekend {
		if rng.Float64() < 0.6 {
			s := at(10, 30).Add(mins(60 * rng.Float64()))
			blocks = append(blocks, block{from: s, to: s.Add(mins(45 + 45*rng.Float64())), weight: 3})
		}
	} else {
		blocks = append(blocks,
			block{from: wake.Add(60 * time.Minute), to: wake.Add(mins(85 + 10*rng.Float64())), weight: 3},
			block{from: at(17, 30).Add(mins(30 * rng.Float64())), to: at(18, 15).Add(mins(30 * rng.Float64())), weight: 3},
		)
	}
	if rng.Float64() < 0.6 {
		s := at(12, 10).Add(mins(20 * rng.Float64()))
		blocks = append(blocks, block{from: s, to: s.Add(mins(20 + 25*rng.Float64())), weight: 3})
	}
	for range 2 {
		s := at(14, 0).Add(mins(180 * rng.Float64()))
		blocks = append(blocks, block{from: s, to: s.Add(mins(15 + 15*rng.Float64())), weight: 1.5})
	}
	if rng.Float64() < 0.4 {
		s := at(19, 0).Add(mins(45 * rng.Float64()))
		blocks = append(blocks, block{from: s, to: s.Add(mins(30 + 30*rng.Float64())), weight: 3.5})
	}
	// A run on some days, at a realistic cadence; its steps are counted
	// exactly and the rest of the day's steps are spread around it.
	var workout block
	cadence := 0.0
	if workedOut(p, dayStart) {
		var s time.Time
		if rng.Float64() < 0.5 {
			s = wake.Add(mins(30 + 20*rng.Float64()))
		} else {
			s = at(18, 0).Add(mins(75 * rng.Float64()))
		}
		workout = block{from: s, to: s.Add(mins(30 + 30*rng.Float64()))}
		cadence = 140 + 30*rng.Float64() // steps per minute
	}
	target := p.StepsMean * (1 + 0.2*rng.NormFloat64())
	if weekend {
		target *= 0.9
	}

	// Split the day into 15-minute buckets (92/96/100 with DST): workout
	// steps per bucket are cadence x minutes; the remaining steps follow the
	// awake time and activity blocks.
	nb := int(dayEnd.Sub(dayStart) / stepBucket)
	runSteps := make([]int, nb)
	weights := make([]float64, nb)
	var sumW float64
	var totalRun int
	for i := range nb {
		b0 := dayStart.Add(time.Duration(i) * stepBucket)
		a0, a1 := intersect(b0, b0.Add(stepBucket), wake, bedtime)
		if a1.Sub(a0) == 0 {
			continue
		}
		run := overlap(a0, a1, workout.from, workout.to)
		runSteps[i] = int(math.Round(cadence * run.Minutes()))
		totalRun += runSteps[i]
		w := 0.25 * float64(a1.Sub(a0)) / float64(stepBucket)
		for _, bl := range blocks {
			w += bl.weight * float64(overlap(a0, a1, bl.from, bl.to)) / float64(stepBucket)
		}
		w *= (1 - float64(run)/float64(stepBucket)) * (0.85 + 0.3*rng.Float64())
		weights[i] = w
		sumW += w
	}
	total := int(math.Round(softClamp(target+float64(totalRun)*0.4, minDailySteps, maxDailySteps)))
	rest := max(total-totalRun, 0)

	// Round cumulatively so the buckets sum to exactly total.
	steps := make([]int, nb)
	var cumW float64
	assigned := 0
	for i, w := range weights {
		steps[i] = runSteps[i]
		if sumW == 0 {
			continue
		}
		cumW += w
		upto := int(math.Round(float64(rest) * cumW / sumW))
		steps[i] += upto - assigned
		assigned = upto
	}
	walkKcal := 0.00055 * p.WeightKg
	for i, n := range steps {
		if n <= 0 {
			continue
		}
		b0 := dayStart.Add(time.Duration(i) * stepBucket)
		b1 := b0.Add(stepBucket)
		walk, run := float64(n-runSteps[i]), float64(runSteps[i])
		add(MetricSteps, b0, b1, float64(n), UnitCount)
		add(MetricActiveEnergy, b0, b1, round(walk*walkKcal+run*walkKcal*1.3, 1), UnitKcal)
		add(MetricDistance, b0, b1, round(walk*p.StrideM+run*p.StrideM*1.35, 1), UnitMeters)
	}

	// Heart rate every five minutes: sleep-stage dependent at night, a
	// circadian curve plus step cadence and workouts by day.
	for t := dayStart; t.Before(dayEnd) && !t.After(end); t = t.Add(hrInterval) {
		var hr float64
		switch {
		case prev.contains(t) || next.contains(t):
			n := prev
			if next.contains(t) {
				n = next
			}
			offset := sleepHROffset[n.stageAt(t)]
			progress := float64(t.Sub(n.start)) / float64(n.end.Sub(n.start))
			hr = rhr + offset + 3*math.Max(0, 0.4-progress) + 1.3*rng.NormFloat64()
		default:
			i := int(t.Sub(dayStart) / stepBucket)
			spm := float64(steps[i]) / stepBucket.Minutes()
			lt := t.In(loc)
			hour := float64(lt.Hour()) + float64(lt.Minute())/60
			hr = rhr + 13 + 4*math.Cos(2*math.Pi*(hour-16)/24) + min(95, 0.42*spm) + 2.5*rng.NormFloat64()
			if !t.Before(workout.from) && t.Before(workout.to) {
				hr = max(hr, rhr+60+10*rng.Float64()) + 12 // running, whatever this bucket averages
			}
		}
		add(MetricHeartRate, t, t, math.Round(clamp(hr, 38, 195)), UnitBPM)
	}
	return out
}

// intersect returns the intersection of [a1,a2) and [b1,b2); it is empty
// (lo == hi) when they do not meet.
func intersect(a1, a2, b1, b2 time.Time) (lo, hi time.Time) {
	lo, hi = a1, a2
	if b1.After(lo) {
		lo = b1
	}
	if b2.Before(hi) {
		hi = b2
	}
	if hi.Before(lo) {
		hi = lo
	}
	return lo, hi
}
