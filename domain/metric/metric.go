package metric

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// NormalizationVersion is stored beside every normalized value so a rebuild
// with changed conversion rules is visible in the read models.
const NormalizationVersion = 1

// Type is a metric type name as it appears on the wire ("heart_rate").
// RMSSD and SDNN heart-rate variability are distinct types end to end: they
// measure different things and must never be averaged together.
type Type string

// The metric types of the first slice.
const (
	HeartRate                Type = "heart_rate"
	RestingHeartRate         Type = "resting_heart_rate"
	HRVRMSSD                 Type = "hrv_rmssd"
	HRVSDNN                  Type = "hrv_sdnn"
	Steps                    Type = "steps"
	ActiveEnergy             Type = "active_energy"
	Distance                 Type = "distance"
	SpO2                     Type = "spo2"
	RespiratoryRate          Type = "respiratory_rate"
	SkinTemperatureDeviation Type = "skin_temperature_deviation"
	Weight                   Type = "weight"
)

// Aggregation says how values of one type combine into a bucket: cumulative
// types (steps) are summed, level types (heart rate) are averaged.
type Aggregation int

const (
	// Mean averages the values in a bucket.
	Mean Aggregation = iota
	// Sum adds the values in a bucket (one source per day, see projections).
	Sum
)

// Definition is what BioSync knows about one metric type.
type Definition struct {
	Type        Type
	Unit        string             // canonical unit stored and served
	Aggregation Aggregation        // how buckets combine values
	Accepts     map[string]float64 // accepted unit -> factor to the canonical unit
	Offsets     map[string]float64 // additive part of a conversion (only for affine units)
	Min, Max    float64            // plausible range in the canonical unit
}

var definitions = map[Type]Definition{
	HeartRate:                {Unit: "bpm", Accepts: map[string]float64{"bpm": 1, "count/min": 1}, Min: 20, Max: 250},
	RestingHeartRate:         {Unit: "bpm", Accepts: map[string]float64{"bpm": 1, "count/min": 1}, Min: 20, Max: 200},
	HRVRMSSD:                 {Unit: "ms", Accepts: map[string]float64{"ms": 1, "s": 1000}, Min: 0, Max: 500},
	HRVSDNN:                  {Unit: "ms", Accepts: map[string]float64{"ms": 1, "s": 1000}, Min: 0, Max: 500},
	Steps:                    {Unit: "count", Aggregation: Sum, Accepts: map[string]float64{"count": 1, "steps": 1}, Min: 0, Max: 100000},
	ActiveEnergy:             {Unit: "kcal", Aggregation: Sum, Accepts: map[string]float64{"kcal": 1, "kJ": 1 / 4.184, "kj": 1 / 4.184}, Min: 0, Max: 20000},
	Distance:                 {Unit: "m", Aggregation: Sum, Accepts: map[string]float64{"m": 1, "km": 1000, "mi": 1609.344}, Min: 0, Max: 500000},
	SpO2:                     {Unit: "%", Accepts: map[string]float64{"%": 1, "percent": 1}, Min: 50, Max: 100},
	RespiratoryRate:          {Unit: "breaths/min", Accepts: map[string]float64{"breaths/min": 1, "count/min": 1}, Min: 2, Max: 80},
	SkinTemperatureDeviation: {Unit: "degC", Accepts: map[string]float64{"degC": 1, "°C": 1, "C": 1, "degF": 5.0 / 9.0, "°F": 5.0 / 9.0}, Min: -10, Max: 10},
	Weight:                   {Unit: "kg", Accepts: map[string]float64{"kg": 1, "lb": 0.45359237, "g": 0.001}, Min: 1, Max: 700},
}

func init() {
	for t, d := range definitions {
		d.Type = t
		definitions[t] = d
	}
}

// Lookup returns the definition of t; ok is false for unknown types.
func Lookup(t Type) (Definition, bool) {
	d, ok := definitions[t]
	return d, ok
}

// Types lists every known type, sorted, for error messages and the API spec.
func Types() []Type {
	out := make([]Type, 0, len(definitions))
	for t := range definitions {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Cumulative reports whether values of t add up over a day.
func (d Definition) Cumulative() bool { return d.Aggregation == Sum }

// Convert turns value in unit into the canonical unit. Temperature
// deviations are differences, so degF converts by factor only.
func (d Definition) Convert(value float64, unit string) (float64, error) {
	f, ok := d.Accepts[unit]
	if !ok {
		return 0, fmt.Errorf("unit %q is not accepted for %s (accepted: %s)", unit, d.Type, strings.Join(d.acceptedUnits(), ", "))
	}
	// Round to nanounits so 418.4 kJ is 100 kcal, not 99.99999999999999.
	return math.Round((value*f+d.Offsets[unit])*1e9) / 1e9, nil
}

// CheckRange rejects values outside the plausible range of the type (a
// negative step count, a heart rate of 900), which are sensor or unit errors.
func (d Definition) CheckRange(canonical float64) error {
	if canonical < d.Min || canonical > d.Max {
		return fmt.Errorf("value %g %s is outside the plausible range [%g, %g]", canonical, d.Unit, d.Min, d.Max)
	}
	return nil
}

func (d Definition) acceptedUnits() []string {
	out := make([]string, 0, len(d.Accepts))
	for u := range d.Accepts {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
