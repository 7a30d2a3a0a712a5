package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
)

func TestADeletionNamesEveryBrokenRuleByItsParameter(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.FixedZone("", 9*3600))
	beyond := time.Date(2026, 11, 20, 0, 0, 0, 0, time.FixedZone("", 19*3600))
	cases := []struct {
		name   string
		d      Deletion
		fields []string // nil: accepted
	}{
		{"one day, every source and type", Deletion{From: day, To: day.AddDate(0, 0, 1)}, nil},
		{"one provider's steps", Deletion{From: day, To: day.AddDate(0, 0, 1), Provider: "apple_health", Type: "steps"}, nil},
		{"sleep sessions only", Deletion{From: day, To: day.AddDate(0, 0, 1), Type: SleepType}, nil},
		{"a range in the far future", Deletion{From: time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2150, 1, 2, 0, 0, 0, 0, time.UTC)}, nil},
		{"exactly 400 days", Deletion{From: day, To: day.Add(MaxDeletionSpan)}, nil},
		{"one instant more than 400 days", Deletion{From: day, To: day.Add(MaxDeletionSpan + time.Microsecond)}, []string{"/from"}},
		{"from after to", Deletion{From: day.AddDate(0, 0, 1), To: day}, []string{"/from"}},
		{"an empty range", Deletion{From: day, To: day}, []string{"/from"}},
		{"no from", Deletion{To: day}, []string{"/from"}},
		{"no range at all", Deletion{}, []string{"/from", "/to"}},
		{"an offset beyond ±18:00", Deletion{From: day, To: beyond.AddDate(0, 0, 1)}, []string{"/to"}},
		{"a blank source", Deletion{From: day, To: day.AddDate(0, 0, 1), Provider: "  "}, []string{"/source"}},
		{"a source longer than a push may send", Deletion{From: day, To: day.AddDate(0, 0, 1), Provider: string(make([]byte, 65))}, []string{"/source"}},
		{"a source with a control character", Deletion{From: day, To: day.AddDate(0, 0, 1), Provider: "oura\n"}, []string{"/source"}},
		{"an unknown type", Deletion{From: day, To: day.AddDate(0, 0, 1), Type: "mood"}, []string{"/type"}},
		{"everything wrong at once", Deletion{From: day, To: day, Provider: " ", Type: "mood"}, []string{"/from", "/source", "/type"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.d.Validate()
			if c.fields == nil {
				require.NoError(t, err)
				return
			}
			var v *domain.ValidationError
			require.ErrorAs(t, err, &v, "Validate = %v, want a ValidationError naming %v", err, c.fields)
			var fields []string
			for _, p := range v.Problems {
				fields = append(fields, p.Field)
				assert.NotEmpty(t, p.Detail, "problem at %s has no detail", p.Field)
			}
			assert.Equal(t, c.fields, fields, "fields of the problems in\n%v", err)
		})
	}
}

// The type decides what a deletion reaches: every metric type and sleep
// without one, sleep sessions alone with sleep, one metric type and no
// sleep session with a metric type.
func TestTheTypeOfADeletionDecidesBetweenSamplesAndSleep(t *testing.T) {
	all := Deletion{}
	assert.Equal(t, metric.Types(), all.SampleTypes(), "without a type: every metric type")
	assert.True(t, all.Sleep(), "without a type: sleep sessions too")

	sleep := Deletion{Type: SleepType}
	assert.Empty(t, sleep.SampleTypes(), "sleep: no samples")
	assert.True(t, sleep.Sleep(), "sleep: sleep sessions")

	steps := Deletion{Type: string(metric.Steps)}
	assert.Equal(t, []metric.Type{metric.Steps}, steps.SampleTypes(), "steps: the steps samples")
	assert.False(t, steps.Sleep(), "a metric type leaves sleep sessions alone")
}
