// Package nights derives a user's nightly values (sleep, in bed, deep and
// REM minutes, latency, efficiency, and the heart, breathing and skin
// temperature values of the night) from one wake date's sleep sessions and
// samples. The rules are pure so that the metrics projector only loads,
// calls and stores, a rebuild from the log gives the same values, and the
// worked examples of docs/scores.md are tested without I/O.
//
// A night belongs to its wake-up date. Of several sessions ending on one
// wake date the longest is the main session; the others are naps, counted
// apart and never mixed into the night's values. A value whose input is
// missing is absent (nil), never invented.
package nights

import (
	"math"
	"sort"
	"time"
)

// Version versions these derivations; it is stored with every night row so
// a rule change is deployed as a new read-model generation.
const Version = 1

// RestingWindow is the window of the fallback resting heart rate: the
// lowest mean of heart rate samples over this span inside the main session.
const RestingWindow = 30 * time.Minute

// Session is one sleep session as the read model stores it.
type Session struct {
	Start, End time.Time
	Source     string
	// FirstSleep is the start of the first stage that is not awake; zero
	// when unknown (no stage timings), which leaves the latency absent.
	FirstSleep              time.Time
	Awake, Light, Deep, REM float64 // minutes per stage
}

// InBed is the session's length.
func (s Session) InBed() time.Duration { return s.End.Sub(s.Start) }

// Sample is one measured value with its time span and source.
type Sample struct {
	Start, End time.Time
	Source     string
	Value      float64
}

// Input is what one (user, wake date) holds: every sleep session ending on
// that date, the samples that may fall inside them (any that do not are
// ignored), and the day values the provider reports for the wake date.
type Input struct {
	Sessions    []Session
	HRVRMSSD    []Sample
	HeartRate   []Sample
	Respiratory []Sample
	// RestingHeartRate and SkinTemperatureDeviation are the samples of
	// those types attributed to the wake date.
	RestingHeartRate         []Sample
	SkinTemperatureDeviation []Sample
}

// Night is the derived values of one night. Pointers are nil when their
// input is missing.
type Night struct {
	Source                   string // the main session's
	SleepMinutes             float64
	InBedMinutes             float64
	DeepSleepMinutes         float64
	REMSleepMinutes          float64
	SleepLatencyMinutes      *float64
	SleepEfficiency          *float64
	HRVRMSSD                 *float64
	RestingHeartRate         *float64
	RespiratoryRate          *float64
	SkinTemperatureDeviation *float64
	Naps                     int
}

// Main picks the main session (the longest; equal lengths go to the
// earlier start, then the smaller source name, so the choice never depends
// on input order) and counts the others as naps. ok is false without
// sessions.
func Main(sessions []Session) (main Session, naps int, ok bool) {
	if len(sessions) == 0 {
		return Session{}, 0, false
	}
	main = sessions[0]
	for _, s := range sessions[1:] {
		if longer(s, main) {
			main = s
		}
	}
	return main, len(sessions) - 1, true
}

func longer(a, b Session) bool {
	if a.InBed() != b.InBed() {
		return a.InBed() > b.InBed()
	}
	if !a.Start.Equal(b.Start) {
		return a.Start.Before(b.Start)
	}
	return a.Source < b.Source
}

// Derive computes the night of one wake date; ok is false when no session
// ends on it (then there is no night, not a night of zeros).
func Derive(in Input) (n Night, ok bool) {
	main, naps, ok := Main(in.Sessions)
	if !ok {
		return Night{}, false
	}
	n.Source, n.Naps = main.Source, naps
	n.SleepMinutes = main.Light + main.Deep + main.REM
	n.InBedMinutes = main.InBed().Minutes()
	n.DeepSleepMinutes, n.REMSleepMinutes = main.Deep, main.REM
	if !main.FirstSleep.IsZero() && !main.FirstSleep.Before(main.Start) {
		n.SleepLatencyMinutes = ptr(main.FirstSleep.Sub(main.Start).Minutes())
	}
	if n.InBedMinutes > 0 {
		n.SleepEfficiency = ptr(n.SleepMinutes / n.InBedMinutes)
	}
	n.HRVRMSSD = mean(Inside(in.HRVRMSSD, main))
	n.RespiratoryRate = mean(Inside(in.Respiratory, main))
	if v, ok := DayValue(in.RestingHeartRate, main.Source); ok {
		n.RestingHeartRate = ptr(v)
	} else if v, ok := LowestMean(Inside(in.HeartRate, main), main.End, RestingWindow); ok {
		n.RestingHeartRate = ptr(v)
	}
	if v, ok := DayValue(in.SkinTemperatureDeviation, main.Source); ok {
		n.SkinTemperatureDeviation = ptr(v)
	}
	return n, true
}

// Inside returns the samples that start within the session ([Start, End)),
// ordered by start, then end, then source.
func Inside(samples []Sample, s Session) []Sample {
	var out []Sample
	for _, x := range samples {
		if !x.Start.Before(s.Start) && x.Start.Before(s.End) {
			out = append(out, x)
		}
	}
	sortSamples(out)
	return out
}

// DayValue picks the provider's value for a wake date: the main session's
// source first (the device that watched the night), otherwise any source
// (the smallest source name); within a source the latest sample.
func DayValue(samples []Sample, source string) (float64, bool) {
	var best *Sample
	for i := range samples {
		x := &samples[i]
		if best == nil || better(x, best, source) {
			best = x
		}
	}
	if best == nil {
		return 0, false
	}
	return best.Value, true
}

func better(a, b *Sample, source string) bool {
	if (a.Source == source) != (b.Source == source) {
		return a.Source == source
	}
	if a.Source != b.Source {
		return a.Source < b.Source
	}
	if !a.Start.Equal(b.Start) {
		return a.Start.After(b.Start)
	}
	return a.End.After(b.End)
}

// LowestMean is the lowest mean over windows of the given length: one
// window starts at each sample's start and takes the samples starting
// before its end; a window must end by until (the session's end), so a
// session shorter than the window has none. ok is false without a window.
// samples must be ordered by start (Inside orders them).
func LowestMean(samples []Sample, until time.Time, window time.Duration) (float64, bool) {
	best, found := math.Inf(1), false
	for i, x := range samples {
		end := x.Start.Add(window)
		if end.After(until) {
			break
		}
		var sum float64
		n := 0
		for _, y := range samples[i:] {
			if !y.Start.Before(end) {
				break
			}
			sum += y.Value
			n++
		}
		if m := sum / float64(n); m < best {
			best, found = m, true
		}
	}
	return best, found
}

func mean(samples []Sample) *float64 {
	if len(samples) == 0 {
		return nil
	}
	var sum float64
	for _, x := range samples {
		sum += x.Value
	}
	return ptr(sum / float64(len(samples)))
}

func sortSamples(s []Sample) {
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if !a.End.Equal(b.End) {
			return a.End.Before(b.End)
		}
		return a.Source < b.Source
	})
}

func ptr(v float64) *float64 { return &v }
