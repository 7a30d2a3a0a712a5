package simulator

import (
	"math/rand/v2"
	"time"
)

// Profile is the stable physiology and lifestyle of one simulated user.
// GenerateDay varies around these baselines day by day, so different
// profiles give visibly different but individually consistent histories.
type Profile struct {
	// Seed drives everything that must agree between neighbouring days
	// (the night plan shared by two calendar days, slow drifts). It is
	// independent of the per-day random source passed to GenerateDay.
	Seed uint64
	// Location is the user's home time zone; days are local calendar days
	// and every timestamp carries its UTC offset. Nil means UTC.
	Location *time.Location
	// Device is the simulated wearable kind ("watch" or "ring").
	Device string
	// RestingHR is the baseline nightly resting heart rate in bpm.
	RestingHR float64
	// HRVBaseline is the personal RMSSD baseline in ms.
	HRVBaseline float64
	// StepsMean is the typical daily step count.
	StepsMean float64
	// StrideM is the walking stride length in metres.
	StrideM float64
	// WeightKg is the baseline body weight.
	WeightKg float64
	// BedtimeMin is the preferred bedtime in minutes after 22:30 local.
	BedtimeMin float64
	// SleepNeedH is the typical time in bed in hours.
	SleepNeedH float64
	// WorkoutProb is the chance of a run or other workout on a given day.
	WorkoutProb float64
	// RespRate is the baseline nightly breathing rate in breaths/min.
	RespRate float64
}

// NewProfile draws a plausible adult profile from rng for a user living in
// loc. Fitter profiles (lower resting heart rate) tend to get higher HRV.
func NewProfile(rng *rand.Rand, loc *time.Location) Profile {
	if loc == nil {
		loc = time.UTC
	}
	devices := [...]string{"watch", "ring"}
	rhr := 49 + 12*rng.Float64()
	fitness := (61 - rhr) / 12 // 0 (unfit) .. 1 (fit)
	return Profile{
		Seed:        rng.Uint64(),
		Location:    loc,
		Device:      devices[rng.IntN(len(devices))],
		RestingHR:   rhr,
		HRVBaseline: 30 + 40*clamp(0.6*fitness+0.4*rng.Float64(), 0, 1),
		StepsMean:   6500 + 5000*rng.Float64(),
		StrideM:     0.66 + 0.14*rng.Float64(),
		WeightKg:    55 + 40*rng.Float64(),
		BedtimeMin:  10 + 70*rng.Float64(),
		SleepNeedH:  6.9 + 1.1*rng.Float64(),
		WorkoutProb: 0.15 + 0.35*rng.Float64(),
		RespRate:    12.5 + 3.5*rng.Float64(),
	}
}

func (p Profile) loc() *time.Location {
	if p.Location == nil {
		return time.UTC
	}
	return p.Location
}

func clamp(x, lo, hi float64) float64 {
	return max(lo, min(hi, x))
}
