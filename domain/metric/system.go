package metric

import "math"

// System is a user's choice of units for display ("metric" or "imperial").
// Read models always hold canonical (metric) units; a System only changes
// what the API shows, so switching it never rewrites stored data.
type System string

// The unit systems a user can choose.
const (
	Metric   System = "metric"
	Imperial System = "imperial"
)

// Valid reports whether s is a known unit system.
func (s System) Valid() bool { return s == Metric || s == Imperial }

// display is how an imperial reader sees a canonical unit. Temperature
// deviations are differences, so degC -> degF is a factor (9/5) with no
// +32 offset, the same rule ingestion applies the other way round.
var display = map[Type]struct {
	unit   string
	factor float64 // canonical value * factor = displayed value
}{
	Distance:                 {"mi", 1 / 1609.344},
	Weight:                   {"lb", 1 / 0.45359237},
	SkinTemperatureDeviation: {"degF", 9.0 / 5.0},
}

// Display returns the unit a reader using system sees for t and a function
// turning canonical values into it. Types without an imperial unit (steps,
// bpm, kcal, ms, %) are shown canonical in both systems. Results are rounded
// to nanounits like ingestion, so a round trip is exact at the precision we
// store.
func (d Definition) Display(system System) (unit string, convert func(float64) float64) {
	if system == Imperial {
		if x, ok := display[d.Type]; ok {
			return x.unit, func(v float64) float64 { return math.Round(v*x.factor*1e9) / 1e9 }
		}
	}
	return d.Unit, func(v float64) float64 { return v }
}
