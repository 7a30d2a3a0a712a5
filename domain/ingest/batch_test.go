package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Pieces of push bodies as bridges send them.
const (
	userID  = "0b0c8d5e-8f1a-4e63-9d7c-1a2b3c4d5e6f"
	user    = `"user_id":"` + userID + `",`
	source  = `"source":{"provider":"oura","device":"ring"}`
	pulse   = `{"type":"heart_rate","start":"2026-11-20T07:00:00+09:00","end":"2026-11-20T07:01:00+09:00","value":61,"unit":"bpm"}`
	night   = `{"start":"2026-11-19T23:00:00+09:00","end":"2026-11-20T06:30:00+09:00","stages":[{"stage":"deep","start":"2026-11-19T23:30:00+09:00","end":"2026-11-20T00:30:00+09:00"}]}`
	walking = `{"type":"steps","start":"2026-11-20T07:00:00Z","end":"2026-11-20T08:00:00Z","value":1200,"unit":"count"}`
)

// withSamples is a bearer body (no user_id) holding the given samples.
func withSamples(samples ...string) string {
	return `{` + source + `,"samples":[` + strings.Join(samples, ",") + `]}`
}

// withNight is a bearer body holding one sleep session.
func withNight(session string) string {
	return `{` + source + `,"sleep_sessions":[` + session + `]}`
}

func TestParse(t *testing.T) {
	// The outcome as the HTTP adapter will report it: 400 for a
	// MalformedError (one field, "" when none can be named), 422 for a
	// ValidationError (every field, in order), 0 for an accepted batch.
	type outcome struct {
		status int
		fields []string
	}
	accepted := outcome{}
	malformed := func(field string) outcome { return outcome{400, []string{field}} }
	invalid := func(fields ...string) outcome { return outcome{422, fields} }
	cases := []struct {
		name    string
		body    string
		webhook bool // requireUserID
		want    outcome
	}{
		{"webhook body", `{` + user + source + `,"samples":[` + pulse + `],"sleep_sessions":[` + night + `]}`, true, accepted},
		{"bearer body", withSamples(pulse, walking), false, accepted},
		{"sleep only", withNight(night), false, accepted},
		{"bearer body naming a user", `{` + user + source + `,"samples":[` + pulse + `]}`, false, invalid("/user_id")},
		{"webhook body without user", withSamples(pulse), true, invalid("/user_id")},
		{"webhook user is not a UUID", `{"user_id":"alice",` + source + `,"samples":[` + pulse + `]}`, true, invalid("/user_id")},
		{"no provider", `{"source":{"device":"ring"},"samples":[` + pulse + `]}`, false, invalid("/source/provider")},
		{"unknown metric type", withSamples(strings.Replace(pulse, "heart_rate", "blood_glucose", 1)), false, invalid("/samples/0/type")},
		{"unknown unit", withSamples(strings.Replace(pulse, `"bpm"`, `"hz"`, 1)), false, invalid("/samples/0/unit")},
		{"negative step count", withSamples(strings.Replace(walking, "1200", "-5", 1)), false, invalid("/samples/0/value")},
		{"heart rate in kJ", withSamples(strings.Replace(pulse, `"bpm"`, `"kJ"`, 1)), false, invalid("/samples/0/unit")},
		{"end before start", withSamples(strings.Replace(pulse, "07:01:00", "06:59:00", 1)), false, invalid("/samples/0/end")},
		{"time without offset", withSamples(strings.Replace(pulse, "2026-11-20T07:00:00+09:00", "2026-11-20T07:00:00", 1)), false, invalid("/samples/0/start")},
		{"time missing", withSamples(`{"type":"steps","end":"2026-11-20T08:00:00Z","value":1,"unit":"count"}`), false, invalid("/samples/0/start")},
		{"time before 1970", withSamples(strings.Replace(walking, "2026-11-20T07", "1969-11-20T07", 1)), false, invalid("/samples/0/start")},
		{"sleep stage outside its session", withNight(strings.Replace(night, "2026-11-20T00:30:00+09:00", "2026-11-20T07:00:00+09:00", 1)), false, invalid("/sleep_sessions/0/stages/0")},
		{"unknown sleep stage", withNight(strings.Replace(night, `"deep"`, `"nap"`, 1)), false, invalid("/sleep_sessions/0/stages/0/stage")},
		{"sleep session over 24 hours", withNight(strings.Replace(night, "2026-11-20T06:30", "2026-11-21T06:30", 1)), false, invalid("/sleep_sessions/0/end")},
		{"empty batch", withSamples(), false, invalid("/samples")},
		{"no items at all", `{` + source + `}`, false, invalid("/samples")},
		{
			"every problem is reported",
			withSamples(pulse, strings.Replace(pulse, "heart_rate", "mood", 1), walking, strings.Replace(walking, `"count"`, `"km"`, 1)),
			false, invalid("/samples/1/type", "/samples/3/unit"),
		},
		{"unknown top-level field", `{` + source + `,"samples":[` + pulse + `],"role":"admin"}`, false, invalid("/role")},
		{"unknown sample field", withSamples(strings.Replace(pulse, `"unit"`, `"units"`, 1)), false, invalid("/units")},
		{"broken JSON", `{` + source + `,"samples":[` + pulse, false, malformed("")},
		{"trailing data after the object", withSamples(pulse) + ` {}`, false, malformed("")},
		{"empty body", ``, false, malformed("")},
		{"not an object", `[` + pulse + `]`, false, malformed("")},
		{"wrong type at the top", `{"source":"oura","samples":[` + pulse + `]}`, false, malformed("/source")},
		{"wrong type in the first sample", withSamples(strings.Replace(pulse, "61", `"61"`, 1)), false, malformed("/samples/0/value")},
		{"wrong type in the fourth sample", withSamples(pulse, pulse, walking, strings.Replace(walking, "1200", `"x"`, 1)), false, malformed("/samples/3/value")},
		{"object where a number belongs", withSamples(pulse, strings.Replace(pulse, "61", `{"bpm":61}`, 1)), false, malformed("/samples/1/value")},
		{"number where a unit belongs", withSamples(pulse, pulse, strings.Replace(pulse, `"bpm"`, `60`, 1)), false, malformed("/samples/2/unit")},
		{"value too large for a float", withSamples(strings.Replace(walking, "1200", "1e999", 1)), false, malformed("/samples/0/value")},
		{
			"wrong type in a nested stage",
			withNight(`{"start":"2026-11-19T23:00:00+09:00","end":"2026-11-20T06:30:00+09:00","stages":[{"stage":"deep"},{"stage":"rem","start":1}]}`),
			false, malformed("/sleep_sessions/0/stages/1/start"),
		},
		{"whitespace does not shift the pointer", "\n  {\n" + source + `, "samples" : [ ` + pulse + ` , {"value" : true} ] }`, false, malformed("/samples/1/value")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Parse([]byte(c.body), c.webhook, time.Time{})
			var me *domain.MalformedError
			var ve *domain.ValidationError
			switch c.want.status {
			case 400:
				require.ErrorAs(t, err, &me, "Parse = %v (%T), want a MalformedError", err, err)
				assert.Equal(t, c.want.fields[0], me.Field, "malformed at %q, want %q (%v)", me.Field, c.want.fields[0], err)
			case 422:
				require.ErrorAs(t, err, &ve, "Parse = %v (%T), want a ValidationError naming %v", err, err, c.want.fields)
				var fields []string
				for _, p := range ve.Problems {
					fields = append(fields, p.Field)
					assert.NotEqual(t, "", p.Detail, "problem at %s has no detail", p.Field)
				}
				assert.Equal(t, c.want.fields, fields, "fields of the problems in\n%v", err)
			default:
				require.NoError(t, err, "Parse = %v, want the batch accepted", err)
				assert.NotEqualValues(t, 0, len(b.Samples)+len(b.SleepSessions), "accepted batch holds nothing")
			}
		})
	}
}

// The accepted batch is what the samples.pushed event carries, so it must be
// the body as sent: times stay strings with their offsets, units unconverted.
func TestParseKeepsTheBatchAsSent(t *testing.T) {
	body := `{` + user + source + `,"samples":[` + pulse + `],"sleep_sessions":[` + night + `]}`
	got, err := Parse([]byte(body), true, time.Time{})
	require.NoError(t, err)
	want := Batch{
		UserID:  userID,
		Source:  Source{Provider: "oura", Device: "ring"},
		Samples: []Sample{{Type: "heart_rate", Start: "2026-11-20T07:00:00+09:00", End: "2026-11-20T07:01:00+09:00", Value: 61, Unit: "bpm"}},
		SleepSessions: []SleepSession{{
			Start: "2026-11-19T23:00:00+09:00", End: "2026-11-20T06:30:00+09:00",
			Stages: []Stage{{Stage: "deep", Start: "2026-11-19T23:30:00+09:00", End: "2026-11-20T00:30:00+09:00"}},
		}},
	}
	assert.Equal(t, want, got, "Parse")
}

// pointerAt is checked directly for what Parse cannot reach: keys that need
// escaping are unknown fields of a batch and rejected before any type error.
func TestPointerAt(t *testing.T) {
	const doc = `{"a/b": {"m~n": [10, {"x": true}]}, "c": "s"}`
	cases := []struct {
		name  string
		after string // the value ends (scalar) or opens (object, array) just past this prefix
		want  string
	}{
		{"the root object", `{`, ""},
		{"an object member with a slash", `{"a/b": {`, "/a~1b"},
		{"an array under a key with a tilde", `{"a/b": {"m~n": [`, "/a~1b/m~0n"},
		{"the first element", `{"a/b": {"m~n": [10`, "/a~1b/m~0n/0"},
		{"a member of the second element", `{"a/b": {"m~n": [10, {"x": true`, "/a~1b/m~0n/1/x"},
		{"a member after a nested object", `{"a/b": {"m~n": [10, {"x": true}]}, "c": "s"`, "/c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.True(t, strings.HasPrefix(doc, c.after), "%q is not a prefix of the document", c.after)
			got, ok := pointerAt([]byte(doc), int64(len(c.after)))
			assert.True(t, ok, "pointerAt(%d) found no pointer", len(c.after))
			assert.Equal(t, c.want, got, "pointerAt(%d)", len(c.after))
		})
	}
	got, ok := pointerAt([]byte(doc), 3)
	assert.False(t, ok, "pointerAt inside a key = %q, want no value", got)
}

// FuzzMalformedFieldIsExactPointer checks the pointer Parse reports for a
// wrong JSON type against what encoding/json knows: the same path, plus the
// array indices that its Field leaves out.
func FuzzMalformedFieldIsExactPointer(f *testing.F) {
	for _, s := range []string{
		withSamples(pulse, pulse, walking, strings.Replace(walking, "1200", `"x"`, 1)),
		withSamples(strings.Replace(walking, "1200", "1e999", 1)),
		withNight(`{"stages":[{},{"stage":"rem","end":[1]}]}`),
		`{"sleep_sessions":[{},{"stages":{}}]}`,
		`{"source":{"provider":1}}`, `[]`, `"x"`, `{"samples":[null,true]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var typ *json.UnmarshalTypeError
		if err := dec.Decode(&Batch{}); !errors.As(err, &typ) {
			return
		}
		var me *domain.MalformedError
		_, err := Parse(body, false, time.Time{})
		require.ErrorAs(t, err, &me, "Parse = %v, want a MalformedError", err)
		var named []string
		for _, seg := range strings.Split(me.Field, "/")[1:] {
			if strings.Trim(seg, "0123456789") != "" {
				named = append(named, seg)
			}
		}
		// Keys match fields case-insensitively; the pointer keeps the
		// spelling of the body, which is what the client sent.
		got, want := strings.Join(named, "."), typ.Field
		require.True(t, strings.EqualFold(got, want), "field %q names %q, encoding/json says %q", me.Field, got, want)
	})
}

func TestNormalize(t *testing.T) {
	sample := func(typ, start string, value float64, unit string) Sample {
		end := strings.Replace(start, "T07:", "T08:", 1)
		return Sample{Type: typ, Start: start, End: end, Value: value, Unit: unit}
	}
	cases := []struct {
		name       string
		sample     Sample
		wantType   metric.Type
		wantValue  float64
		wantUnit   string
		wantStart  string // the instant, UTC
		wantOffset int
		hasOffset  bool
	}{
		{"kJ to kcal, Tokyo offset kept", sample("active_energy", "2026-11-20T07:00:00+09:00", 418.4, "kJ"), metric.ActiveEnergy, 100, "kcal", "2026-11-19T22:00:00Z", 9 * 3600, true},
		{"lb to kg, New York offset kept", sample("weight", "2026-11-20T07:00:00-05:00", 100, "lb"), metric.Weight, 45.359237, "kg", "2026-11-20T12:00:00Z", -5 * 3600, true},
		{"km to m, India's half-hour offset", sample("distance", "2026-11-20T07:00:00+05:30", 2.5, "km"), metric.Distance, 2500, "m", "2026-11-20T01:30:00Z", 5*3600 + 1800, true},
		{"seconds to ms for HRV, Z has no offset", sample("hrv_sdnn", "2026-11-20T07:00:00Z", 0.048, "s"), metric.HRVSDNN, 48, "ms", "2026-11-20T07:00:00Z", 0, false},
		{"+00:00 has no offset either", sample("hrv_rmssd", "2026-11-20T07:00:00+00:00", 35, "ms"), metric.HRVRMSSD, 35, "ms", "2026-11-20T07:00:00Z", 0, false},
		{"degF deviation by factor", sample("skin_temperature_deviation", "2026-11-20T07:00:00+01:00", -0.9, "degF"), metric.SkinTemperatureDeviation, -0.5, "degC", "2026-11-20T06:00:00Z", 3600, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			points, nights, skipped := Normalize(Batch{Source: Source{Provider: "oura"}, Samples: []Sample{c.sample}})
			require.Len(t, points, 1, "Normalize = %d points, %d nights, %d skipped; want one point", len(points), len(nights), skipped)
			require.Len(t, nights, 0, "Normalize = %d points, %d nights, %d skipped; want one point", len(points), len(nights), skipped)
			require.EqualValues(t, 0, skipped, "Normalize = %d points, %d nights, %d skipped; want one point", len(points), len(nights), skipped)
			p := points[0]
			assert.Equal(t, c.wantType, p.Type, "point type")
			assert.Equal(t, c.wantValue, p.Value, "point value in %s", c.wantUnit)
			assert.Equal(t, c.wantUnit, p.Unit, "point unit")
			want, _ := time.Parse(time.RFC3339, c.wantStart)
			assert.True(t, p.Start.Equal(want), "Start = %s, want %s", p.Start, c.wantStart)
			assert.Equal(t, time.UTC, p.Start.Location(), "Start = %s, want it in UTC", p.Start)
			assert.Equal(t, time.Hour, p.End.Sub(p.Start), "End - Start = %v, want 1h", p.End.Sub(p.Start))
			assert.Equal(t, c.wantOffset, p.Offset, "Offset (seconds east of UTC as sent)")
			assert.Equal(t, c.hasOffset, p.HasOffset, "HasOffset")
		})
	}
}

func TestNormalizeSumsStageMinutes(t *testing.T) {
	session := SleepSession{
		Start: "2026-11-19T23:00:00+09:00", End: "2026-11-20T06:30:00+09:00",
		Stages: []Stage{
			{Stage: "light", Start: "2026-11-19T23:00:00+09:00", End: "2026-11-19T23:40:00+09:00"},
			{Stage: "deep", Start: "2026-11-19T23:40:00+09:00", End: "2026-11-20T00:25:00+09:00"},
			{Stage: "rem", Start: "2026-11-20T00:25:00+09:00", End: "2026-11-20T00:45:00+09:00"},
			{Stage: "light", Start: "2026-11-20T00:45:00+09:00", End: "2026-11-20T02:15:30+09:00"},
			{Stage: "deep", Start: "2026-11-20T02:15:30+09:00", End: "2026-11-20T02:45:30+09:00"},
			{Stage: "awake", Start: "2026-11-20T06:20:00+09:00", End: "2026-11-20T06:30:00+09:00"},
		},
	}
	_, nights, skipped := Normalize(Batch{Source: Source{Provider: "oura"}, SleepSessions: []SleepSession{session}})
	require.Len(t, nights, 1, "Normalize = %d nights, %d skipped; want one night", len(nights), skipped)
	require.EqualValues(t, 0, skipped, "Normalize = %d nights, %d skipped; want one night", len(nights), skipped)
	n := nights[0]
	want := map[string]float64{"light": 40 + 90.5, "deep": 45 + 30, "rem": 20, "awake": 10}
	for stage, minutes := range want {
		assert.LessOrEqual(t, math.Abs(n.StageMinutes[stage]-minutes), 1e-9, "%s = %v minutes, want %v", stage, n.StageMinutes[stage], minutes)
	}
	assert.Len(t, n.StageMinutes, len(want), "StageMinutes = %v, want only %v", n.StageMinutes, want)
	assert.Equal(t, 9*3600, n.Offset, "Offset: want +09:00 kept")
	assert.True(t, n.HasOffset, "HasOffset: want +09:00 kept")
	assert.Equal(t, 7*time.Hour+30*time.Minute, n.End.Sub(n.Start), "night lasts %v, want 7h30m", n.End.Sub(n.Start))
}

// Rules may tighten after an event was stored; an item that no longer
// validates is skipped and counted, the rest still normalize.
func TestNormalizeSkipsWhatNoLongerValidates(t *testing.T) {
	b := Batch{
		Source: Source{Provider: "oura"},
		Samples: []Sample{
			{Type: "heart_rate", Start: "2026-11-20T07:00:00Z", End: "2026-11-20T07:01:00Z", Value: 61, Unit: "bpm"},
			{Type: "mood", Start: "2026-11-20T07:00:00Z", End: "2026-11-20T07:01:00Z", Value: 3, Unit: "score"},
			{Type: "steps", Start: "2026-11-20T07:00:00Z", End: "2026-11-20T07:01:00Z", Value: 10, Unit: "paces"},
			{Type: "steps", Start: "2026-11-20T07:00:00", End: "2026-11-20T07:01:00Z", Value: 10, Unit: "count"},
		},
		SleepSessions: []SleepSession{{Start: "2026-11-20T07:00:00Z", End: "2026-11-20T06:00:00Z"}},
	}
	points, nights, skipped := Normalize(b)
	if assert.Len(t, points, 1, "Normalize points = %+v; want the heart rate only", points) {
		assert.Equal(t, metric.HeartRate, points[0].Type, "the point kept")
	}
	assert.Empty(t, nights, "nights kept")
	assert.Equal(t, 4, skipped, "samples and nights skipped")
}
