package metric

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestImperialReadersSeeMilesPoundsAndFahrenheitDifferences(t *testing.T) {
	cases := []struct {
		name     string
		typ      Type
		system   System
		value    float64
		wantUnit string
		want     float64
	}{
		{"a mile of metres is one mile", Distance, Imperial, 1609.344, "mi", 1},
		{"a half marathon", Distance, Imperial, 21082.4064, "mi", 13.1},
		{"45.359237 kg is 100 lb", Weight, Imperial, 45.359237, "lb", 100},
		{"a deviation of 1 degC is 1.8 degF (no +32: it is a difference)", SkinTemperatureDeviation, Imperial, 1, "degF", 1.8},
		{"a negative deviation", SkinTemperatureDeviation, Imperial, -0.5, "degF", -0.9},
		{"steps have no imperial unit", Steps, Imperial, 1200, "count", 1200},
		{"kcal stay kcal", ActiveEnergy, Imperial, 512.5, "kcal", 512.5},
		{"heart rate stays bpm", HeartRate, Imperial, 61, "bpm", 61},
		{"metric readers see metres", Distance, Metric, 1500, "m", 1500},
		{"metric readers see kg", Weight, Metric, 72.5, "kg", 72.5},
		{"an unknown system shows canonical units", Weight, System("nautical"), 72.5, "kg", 72.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def, _ := Lookup(c.typ)
			unit, conv := def.Display(c.system)
			require.Equal(t, c.wantUnit, unit, "%v %s in %s = %v %s, want %v %s", c.value, def.Unit, c.system, conv(c.value), unit, c.want, c.wantUnit)
			require.Equal(t, c.want, conv(c.value), "%v %s in %s = %v %s, want %v %s", c.value, def.Unit, c.system, conv(c.value), unit, c.want, c.wantUnit)
		})
	}
}

func TestDisplayInvertsIngestionForEveryImperialUnit(t *testing.T) {
	for typ, x := range display {
		def, _ := Lookup(typ)
		canonical, err := def.Convert(3.25, x.unit)
		require.NoError(t, err, "%s: the displayed unit %s must be accepted on ingest", typ, x.unit)
		// Ingestion stores nanounits, so the round trip holds to 1e-8.
		_, conv := def.Display(Imperial)
		require.LessOrEqual(t, math.Abs(conv(canonical)-3.25), 1e-8, "%s: 3.25 %s -> %v %s -> %v %s", typ, x.unit, canonical, def.Unit, conv(canonical), x.unit)
	}
}

func TestSystemValid(t *testing.T) {
	require.True(t, Metric.Valid(), "only metric and imperial are unit systems")
	require.True(t, Imperial.Valid(), "only metric and imperial are unit systems")
	require.False(t, System("").Valid(), "only metric and imperial are unit systems")
	require.False(t, System("Metric").Valid(), "only metric and imperial are unit systems")
}
