package ingest

import (
	"time"

	"github.com/biosync/biosync/domain/metric"
)

// Point is one normalized sample: canonical unit, parsed instants, and the
// sender's UTC offset kept for local-day attribution.
type Point struct {
	Type      metric.Type
	Start     time.Time
	End       time.Time
	Offset    int  // seconds east of UTC as sent
	HasOffset bool // false when sent as UTC ("Z" or +00:00)
	Value     float64
	Unit      string
}

// Night is one normalized sleep session with minutes per stage.
type Night struct {
	Start, End   time.Time
	Offset       int
	HasOffset    bool
	StageMinutes map[string]float64 // awake, light, deep, rem
	// FirstSleep is the earliest start of a stage other than awake (the
	// end of the sleep latency); zero when the session has no such stage.
	FirstSleep time.Time
}

// Normalize derives canonical points and nights from a batch that passed
// Validate. Items that no longer validate under today's rules (possible when
// rules tighten after an event was stored) are skipped and counted, so one
// old bad value never blocks a user's projection.
func Normalize(b Batch) (points []Point, nights []Night, skipped int) {
	points = make([]Point, 0, len(b.Samples))
	for _, s := range b.Samples {
		def, ok := metric.Lookup(metric.Type(s.Type))
		if !ok {
			skipped++
			continue
		}
		v, err := def.Convert(s.Value, s.Unit)
		start, err1 := ParseTime(s.Start)
		end, err2 := ParseTime(s.End)
		if err != nil || err1 != nil || err2 != nil || end.Before(start) {
			skipped++
			continue
		}
		_, off := start.Zone()
		points = append(points, Point{Type: def.Type, Start: micro(start), End: micro(end), Offset: off, HasOffset: off != 0, Value: v, Unit: def.Unit})
	}
	for _, ss := range b.SleepSessions {
		start, err1 := ParseTime(ss.Start)
		end, err2 := ParseTime(ss.End)
		if err1 != nil || err2 != nil || end.Before(start) {
			skipped++
			continue
		}
		_, off := end.Zone()
		n := Night{Start: micro(start), End: micro(end), Offset: off, HasOffset: off != 0, StageMinutes: map[string]float64{}}
		for _, st := range ss.Stages {
			s2, e1 := ParseTime(st.Start)
			e2, e3 := ParseTime(st.End)
			if e1 != nil || e3 != nil || !validStage(st.Stage) || e2.Before(s2) {
				continue
			}
			n.StageMinutes[st.Stage] += e2.Sub(s2).Minutes()
			if st.Stage != "awake" && (n.FirstSleep.IsZero() || s2.Before(n.FirstSleep)) {
				n.FirstSleep = micro(s2)
			}
		}
		nights = append(nights, n)
	}
	return points, nights, skipped
}

// micro truncates to microseconds, the resolution PostgreSQL stores: two
// instants that differ below it are the same key in the read model, so they
// must be the same key here too.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
