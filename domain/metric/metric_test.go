package metric

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConvertToCanonicalUnit(t *testing.T) {
	cases := []struct {
		name  string
		typ   Type
		value float64
		unit  string
		want  float64 // exact: conversions are rounded to nanounits
	}{
		{"418.4 kJ is exactly 100 kcal", ActiveEnergy, 418.4, "kJ", 100},
		{"lower-case kj is accepted too", ActiveEnergy, 41.84, "kj", 10},
		{"kcal stays kcal", ActiveEnergy, 512.5, "kcal", 512.5},
		{"km to metres", Distance, 1.5, "km", 1500},
		{"a mile is 1609.344 m", Distance, 1, "mi", 1609.344},
		{"a half marathon in miles", Distance, 13.1, "mi", 21082.4064},
		{"metres stay metres", Distance, 420, "m", 420},
		{"100 lb is 45.359237 kg", Weight, 100, "lb", 45.359237},
		{"grams to kg", Weight, 72500, "g", 72.5},
		// A deviation is a difference: 1.8 degF of deviation is 1 degC,
		// not (1.8 - 32) * 5/9 = -16.78 degC.
		{"degF deviation converts by factor only", SkinTemperatureDeviation, 1.8, "degF", 1},
		{"negative °F deviation", SkinTemperatureDeviation, -0.9, "°F", -0.5},
		{"degC deviation stays", SkinTemperatureDeviation, -0.4, "degC", -0.4},
		{"RMSSD in seconds to ms", HRVRMSSD, 0.042, "s", 42},
		{"SDNN in seconds to ms", HRVSDNN, 0.055, "s", 55},
		{"RMSSD in ms stays", HRVRMSSD, 38, "ms", 38},
		{"count/min is bpm", HeartRate, 61, "count/min", 61},
		{"percent is %", SpO2, 97, "percent", 97},
		{"steps are a count", Steps, 1200, "steps", 1200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def, ok := Lookup(c.typ)
			require.True(t, ok, "Lookup(%q): unknown type", c.typ)
			got, err := def.Convert(c.value, c.unit)
			require.NoError(t, err, "Convert(%v, %q)", c.value, c.unit)
			assert.Equal(t, c.want, got, "Convert(%v %s) = %v %s, want %v", c.value, c.unit, got, def.Unit, c.want)
		})
	}
}

func TestConvertRejectsUnknownUnitNamingAcceptedOnes(t *testing.T) {
	cases := []struct {
		name     string
		typ      Type
		unit     string
		accepted string // sorted list quoted in the error
	}{
		{"feet are not a distance unit", Distance, "ft", "km, m, mi"},
		{"stone is not a weight unit", Weight, "st", "g, kg, lb"},
		{"units are case-sensitive", Weight, "KG", "g, kg, lb"},
		{"HRV in microseconds", HRVSDNN, "us", "ms, s"},
		{"kJ is energy, not heart rate", HeartRate, "kJ", "bpm, count/min"},
		{"an empty unit", Steps, "", "count, steps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def, _ := Lookup(c.typ)
			_, err := def.Convert(1, c.unit)
			require.Error(t, err, "Convert(1, %q) for %s: accepted, want an error", c.unit, c.typ)
			for _, want := range []string{string(c.typ), "(accepted: " + c.accepted + ")"} {
				assert.Contains(t, err.Error(), want, "error %q does not mention %q", err, want)
			}
		})
	}
}

func TestCheckRangeRejectsImplausibleValues(t *testing.T) {
	cases := []struct {
		name  string
		typ   Type
		value float64 // canonical unit
		ok    bool
	}{
		{"no steps", Steps, 0, true},
		{"a negative step count", Steps, -5, false},
		{"the most steps in a day", Steps, 100000, true},
		{"more steps than anyone walks", Steps, 100001, false},
		{"resting pulse of an athlete", HeartRate, 38, true},
		{"a heart rate of 900", HeartRate, 900, false},
		{"full saturation", SpO2, 100, true},
		{"saturation over 100 percent", SpO2, 101, false},
		{"lower deviation bound", SkinTemperatureDeviation, -10, true},
		{"below the deviation bound", SkinTemperatureDeviation, -10.5, false},
		{"half a kilogram of person", Weight, 0.5, false},
		{"zero HRV", HRVRMSSD, 0, true},
		{"HRV read in microseconds as ms", HRVSDNN, 55000, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def, _ := Lookup(c.typ)
			err := def.CheckRange(c.value)
			if c.ok {
				assert.NoError(t, err, "CheckRange(%v %s)", c.value, def.Unit)
				return
			}
			require.Error(t, err, "CheckRange(%v %s) = nil, want out of range", c.value, def.Unit)
			assert.Contains(t, err.Error(), "plausible range", "error %q does not say it is a range problem", err)
		})
	}
}

func TestTypesAreSortedAndKeepHRVKindsApart(t *testing.T) {
	types := Types()
	assert.True(t, slices.IsSorted(types), "Types() = %v, not sorted", types)
	assert.Len(t, types, len(definitions), "Types() has %d entries, %d are defined", len(types), len(definitions))
	for _, hrv := range []Type{"hrv_rmssd", "hrv_sdnn"} {
		assert.True(t, slices.Contains(types, hrv), "Types() = %v, missing %s", types, hrv)
		def, ok := Lookup(hrv)
		if assert.True(t, ok, "Lookup(%s) found no definition", hrv) {
			assert.Equal(t, hrv, def.Type, "Lookup(%s) gives another type's definition", hrv)
			assert.Equal(t, "ms", def.Unit, "Lookup(%s) unit", hrv)
		}
	}
	assert.NotEqual(t, HRVSDNN, HRVRMSSD, "RMSSD and SDNN share one type name; they must never be averaged together")
}

func TestEveryDefinitionIsConsistent(t *testing.T) {
	for _, typ := range Types() {
		t.Run(string(typ), func(t *testing.T) {
			def, ok := Lookup(typ)
			require.True(t, ok, "Types() lists %s but Lookup does not know it", typ)
			assert.Equal(t, typ, def.Type, "definition of %s says Type %q", typ, def.Type)
			f := def.Accepts[def.Unit]
			assert.EqualValues(t, 1, f, "canonical unit %q converts by %v, want 1", def.Unit, f)
			assert.Less(t, def.Min, def.Max, "range [%v, %v] is empty", def.Min, def.Max)
		})
	}
	_, ok := Lookup("blood_glucose")
	assert.False(t, ok, "Lookup(blood_glucose) = ok, want unknown")
}

func TestOnlyStepsEnergyAndDistanceAreCumulative(t *testing.T) {
	cumulative := []Type{Steps, ActiveEnergy, Distance}
	for _, typ := range Types() {
		t.Run(string(typ), func(t *testing.T) {
			def, _ := Lookup(typ)
			want := slices.Contains(cumulative, typ)
			assert.Equal(t, want, def.Cumulative(), "%s.Cumulative() = %v, want %v", typ, def.Cumulative(), want)
			assert.Equal(t, (def.Aggregation == Sum), want, "%s aggregates by %v, want Sum only for cumulative types", typ, def.Aggregation)
		})
	}
}
