package ingest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
)

// sampleAt is a bearer-shaped body with one steps sample from start to end.
func sampleAt(start, end string) []byte {
	return fmt.Appendf(nil, `{"source":{"provider":"phone"},"samples":[{"type":"steps","start":%q,"end":%q,"value":10,"unit":"count"}]}`, start, end)
}

// problemsOf returns the fields a validation error names, or fails.
func problemsOf(t *testing.T, err error) map[string]string {
	t.Helper()
	var v *domain.ValidationError
	require.True(t, errors.As(err, &v), "want a validation error, got %v", err)
	out := map[string]string{}
	for _, p := range v.Problems {
		out[p.Field] = p.Detail
	}
	return out
}

// Nothing accepted may break a read: an instant the reads could not encode
// again (an offset beyond ±18:00, a year past what buckets and local days
// can hold) never enters, whatever its own offset says.
func TestOnlyInstantsEveryReadCanEncodeAreAccepted(t *testing.T) {
	rejected := []struct{ name, start, end string }{
		{"an offset of +24:00", "2026-11-20T08:00:00+24:00", "2026-11-20T08:15:00+24:00"},
		{"an offset of -23:59 at the end of year 9999", "9999-12-31T23:00:00-23:59", "9999-12-31T23:59:59-23:59"},
		{"the last half hour of year 9999 in UTC", "9999-12-31T23:30:00Z", "9999-12-31T23:45:00Z"},
		{"year 2200", "2200-01-01T00:00:00Z", "2200-01-01T00:15:00Z"},
		{"before the Unix epoch in UTC", "1970-01-01T00:30:00+01:00", "1970-01-01T00:45:00+01:00"},
	}
	for _, c := range rejected {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(sampleAt(c.start, c.end), false, time.Time{})
			assert.Contains(t, problemsOf(t, err), "/samples/0/start")
		})
	}
	for _, ok := range []struct{ name, start, end string }{
		{"an offset of +14:00 (Kiribati)", "2026-11-20T08:00:00+14:00", "2026-11-20T08:15:00+14:00"},
		{"an offset of -18:00", "2026-11-20T08:00:00-18:00", "2026-11-20T08:15:00-18:00"},
		{"the epoch itself", "1970-01-01T00:00:00Z", "1970-01-01T00:15:00Z"},
	} {
		t.Run(ok.name, func(t *testing.T) {
			_, err := Parse(sampleAt(ok.start, ok.end), false, time.Time{})
			assert.NoError(t, err)
		})
	}
}

// A value may lie a little ahead of the receiving clock (device clocks),
// not a year.
func TestValuesFromTheFutureAreRefusedBeyondTheSkew(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	notAfter := now.Add(24 * time.Hour)
	_, err := Parse(sampleAt("2026-12-08T10:00:00Z", "2026-12-08T10:15:00Z"), false, notAfter)
	assert.NoError(t, err, "22 hours ahead is within the skew")
	_, err = Parse(sampleAt("2100-01-01T00:00:00Z", "2100-01-01T00:15:00Z"), false, notAfter)
	assert.Contains(t, problemsOf(t, err), "/samples/0/end", "year 2100 lies in the future")
	session := `{"source":{"provider":"ring"},"sleep_sessions":[{"start":"2026-12-09T22:00:00Z","end":"2026-12-10T06:00:00Z","stages":[]}]}`
	_, err = Parse([]byte(session), false, notAfter)
	assert.Contains(t, problemsOf(t, err), "/sleep_sessions/0/end")
}

// A person is in one sleep stage at a time: stages of a session must not
// overlap (they would count the same minutes twice); touching is fine.
func TestSleepStagesMustNotOverlap(t *testing.T) {
	session := func(stages string) []byte {
		return fmt.Appendf(nil, `{"source":{"provider":"ring"},"sleep_sessions":[{"start":"2026-11-19T23:00:00+01:00","end":"2026-11-20T07:00:00+01:00","stages":[%s]}]}`, stages)
	}
	deep := `{"stage":"deep","start":"2026-11-19T23:00:00+01:00","end":"2026-11-20T07:00:00+01:00"}`
	_, err := Parse(session(deep+","+deep+","+deep), false, time.Time{})
	problems := problemsOf(t, err)
	assert.Contains(t, problems, "/sleep_sessions/0/stages/1")
	assert.Contains(t, problems, "/sleep_sessions/0/stages/2")

	// An overlap with a long stage listed earlier is found even when a
	// short stage sits between them.
	_, err = Parse(session(`{"stage":"light","start":"2026-11-19T23:00:00+01:00","end":"2026-11-20T03:00:00+01:00"},
		{"stage":"rem","start":"2026-11-20T01:00:00+01:00","end":"2026-11-20T01:30:00+01:00"},
		{"stage":"deep","start":"2026-11-20T02:00:00+01:00","end":"2026-11-20T04:00:00+01:00"}`), false, time.Time{})
	problems = problemsOf(t, err)
	assert.Contains(t, problems, "/sleep_sessions/0/stages/1")
	assert.Contains(t, problems, "/sleep_sessions/0/stages/2")

	_, err = Parse(session(`{"stage":"light","start":"2026-11-19T23:00:00+01:00","end":"2026-11-20T01:00:00+01:00"},
		{"stage":"deep","start":"2026-11-20T01:00:00+01:00","end":"2026-11-20T03:00:00+01:00"},
		{"stage":"rem","start":"2026-11-20T02:00:00Z","end":"2026-11-20T04:30:00Z"}`), false, time.Time{})
	assert.NoError(t, err, "stages that touch (in any offset) do not overlap")
}

// Signed bytes are stored as sent: a body that is not valid UTF-8 is
// refused, never stored with replacement characters.
func TestABodyThatIsNotUTF8IsRefused(t *testing.T) {
	body := []byte("{\"source\":{\"provider\":\"ph\xffone\"},\"samples\":[{\"type\":\"steps\",\"start\":\"2026-11-20T08:00:00Z\",\"end\":\"2026-11-20T08:15:00Z\",\"value\":1,\"unit\":\"count\"}]}")
	_, err := Parse(body, false, time.Time{})
	var m *domain.MalformedError
	require.True(t, errors.As(err, &m), "want a malformed-body error, got %v", err)
	assert.Contains(t, m.Detail, "UTF-8")
}
