package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/biosync/biosync/domain"
	"github.com/stretchr/testify/require"
)

// FuzzPushBody feeds arbitrary bytes to Parse, the first thing that reads
// an (authenticated) push body. It must never panic, must classify every
// failure as malformed (400) or invalid (422) with fields that are JSON
// pointers, and what it accepts must normalize completely and survive a
// round trip through JSON (the event payload is the re-encoded batch).
func FuzzPushBody(f *testing.F) {
	seeds := []string{
		`{"user_id":"0b0c8d5e-8f1a-4e63-9d7c-1a2b3c4d5e6f","source":{"provider":"oura","device":"ring"},"samples":[{"type":"heart_rate","start":"2026-11-20T07:00:00+09:00","end":"2026-11-20T07:01:00+09:00","value":61,"unit":"bpm"}],"sleep_sessions":[{"start":"2026-11-19T23:00:00+09:00","end":"2026-11-20T06:30:00+09:00","stages":[{"stage":"deep","start":"2026-11-19T23:30:00+09:00","end":"2026-11-20T00:30:00+09:00"}]}]}`,
		`{"source":{"provider":"apple_health"},"samples":[{"type":"steps","start":"2026-11-20T07:00:00Z","end":"2026-11-20T08:00:00Z","value":1200,"unit":"count"}]}`,
		`{"source":{"provider":"x"},"samples":[{"type":"weight","start":"2026-03-29T01:59:59.999999999+01:00","end":"2026-03-29T03:00:00+02:00","value":154.3,"unit":"lb"}]}`,
		`{"source":{"provider":"x"},"samples":[{"type":"skin_temperature_deviation","start":"2026-11-20T00:00:00-12:00","end":"2026-11-20T00:00:00+14:00","value":-0.5,"unit":"°F"}]}`,
		`{"source":{"provider":"x"},"samples":[{"type":"steps","start":"0000-01-01T00:00:00Z","end":"9999-12-31T23:59:59Z","value":1e308,"unit":"count"}]}`,
		`{"source":{"provider":"x"},"samples":[{"type":"steps","value":1}],"role":"admin"}`,
		`{"source":{"provider":"x"},"samples":null,"sleep_sessions":[{"start":"2026-11-20T00:00:00Z","end":"2026-11-19T00:00:00Z","stages":[{"stage":"rem"}]}]}`,
		`{"SOURCE":{"Provider":"x"},"Samples":[]}`,
		`{"source":{"provider":"x"}} {}`,
		`{"source":"x"}`,
		`[]`, `null`, ``, `{`, `"\ud800"`, `{"source":{"provider":"\u0000"}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, requireUserID bool) {
		b, err := Parse(body, requireUserID, time.Time{})
		if err != nil {
			var me *domain.MalformedError
			var ve *domain.ValidationError
			switch {
			case errors.As(err, &me):
				if me.Field != "" {
					require.True(t, strings.HasPrefix(me.Field, "/"), "malformed field %q is not a JSON pointer", me.Field)
				}
			case errors.As(err, &ve):
				require.NotEmpty(t, ve.Problems, "validation error without problems")
				for _, p := range ve.Problems {
					require.True(t, strings.HasPrefix(p.Field, "/"), "problem %+v", p)
					require.NotEqual(t, "", p.Detail, "problem %+v", p)
				}
			default:
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			return
		}
		n := len(b.Samples) + len(b.SleepSessions)
		require.NotEqualValues(t, 0, n, "accepted a batch of %d items", n)
		require.LessOrEqual(t, n, MaxItems, "accepted a batch of %d items", n)
		points, nights, skipped := Normalize(b)
		require.EqualValues(t, 0, skipped, "accepted batch does not normalize: %d points, %d nights, %d skipped", len(points), len(nights), skipped)
		require.Len(t, points, len(b.Samples), "accepted batch does not normalize: %d points, %d nights, %d skipped", len(points), len(nights), skipped)
		require.Len(t, nights, len(b.SleepSessions), "accepted batch does not normalize: %d points, %d nights, %d skipped", len(points), len(nights), skipped)
		// Every accepted instant can be read back: encoded as sent (its own
		// offset), in UTC, and as the day buckets and local days derived from
		// it (up to a day and ±18 hours around it).
		for _, p := range points {
			readable(t, p.Start, p.Offset)
			readable(t, p.End, p.Offset)
		}
		for _, n := range nights {
			readable(t, n.Start, n.Offset)
			readable(t, n.End, n.Offset)
		}
		enc, err := json.Marshal(b)
		require.NoError(t, err, "accepted batch does not encode")
		_, err = Parse(enc, requireUserID, time.Time{})
		require.NoError(t, err, "re-encoded batch rejected: %v\n%s", err, enc)
	})
}

// readable fails t unless the instant t0 (sent with offset seconds east of
// UTC) and what the read models derive from it encode as JSON.
func readable(t *testing.T, t0 time.Time, offset int) {
	t.Helper()
	zone := time.FixedZone("", offset)
	for _, x := range []time.Time{t0, t0.In(zone), t0.Truncate(time.Hour).Add(time.Hour), t0.Add(24 * time.Hour).In(zone), t0.Add(-24 * time.Hour).In(zone)} {
		_, err := x.MarshalJSON()
		require.NoError(t, err, "an accepted instant %v cannot be read back", x)
	}
}
