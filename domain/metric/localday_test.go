package metric

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones below must not depend on the machine's zoneinfo

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return ts
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// sent is how a sample's timestamp arrives: the instant plus the offset the
// sender wrote, which is "no offset" for Z.
func sent(t *testing.T, s string) (time.Time, int, bool) {
	t.Helper()
	ts := mustTime(t, s)
	_, off := ts.Zone()
	return ts, off, off != 0
}

func TestAttributeDay(t *testing.T) {
	cases := []struct {
		name      string
		at        string // as sent
		zone      string // from the timezone history; "" for none
		wantDate  string
		wantStart string // local midnight, RFC 3339
	}{
		{
			name: "own offset wins over the zone", at: "2026-11-20T23:30:00+09:00", zone: "Pacific/Kiritimati",
			wantDate: "2026-11-20", wantStart: "2026-11-20T00:00:00+09:00",
		},
		{
			name: "own offset wins just after midnight", at: "2026-11-21T00:30:00+09:00", zone: "America/New_York",
			wantDate: "2026-11-21", wantStart: "2026-11-21T00:00:00+09:00",
		},
		{
			name: "negative own offset", at: "2026-11-20T21:00:00-08:00", zone: "Europe/Berlin",
			wantDate: "2026-11-20", wantStart: "2026-11-20T00:00:00-08:00",
		},
		{
			name: "UTC timestamp uses the zone", at: "2026-11-21T03:00:00Z", zone: "America/New_York",
			wantDate: "2026-11-20", wantStart: "2026-11-20T00:00:00-05:00",
		},
		{
			name: "+00:00 is UTC and uses the zone too", at: "2026-11-21T03:00:00+00:00", zone: "America/New_York",
			wantDate: "2026-11-20", wantStart: "2026-11-20T00:00:00-05:00",
		},
		{
			name: "UTC timestamp without a zone stays UTC", at: "2026-11-21T03:00:00Z", zone: "",
			wantDate: "2026-11-21", wantStart: "2026-11-21T00:00:00Z",
		},
		{
			name: "spring-forward day starts in standard time", at: "2026-03-08T12:00:00Z", zone: "America/New_York",
			wantDate: "2026-03-08", wantStart: "2026-03-08T00:00:00-05:00",
		},
		{
			name: "the day after spring-forward starts in daylight time", at: "2026-03-09T12:00:00Z", zone: "America/New_York",
			wantDate: "2026-03-09", wantStart: "2026-03-09T00:00:00-04:00",
		},
		{
			name: "fall-back day, first 01:30", at: "2026-11-01T05:30:00Z", zone: "America/New_York",
			wantDate: "2026-11-01", wantStart: "2026-11-01T00:00:00-04:00",
		},
		{
			name: "fall-back day, repeated 01:30", at: "2026-11-01T06:30:00Z", zone: "America/New_York",
			wantDate: "2026-11-01", wantStart: "2026-11-01T00:00:00-04:00",
		},
		{
			name: "fall-back day, last minute", at: "2026-11-02T04:59:00Z", zone: "America/New_York",
			wantDate: "2026-11-01", wantStart: "2026-11-01T00:00:00-04:00",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var zone *time.Location
			if c.zone != "" {
				zone = mustZone(t, c.zone)
			}
			at, off, hasOffset := sent(t, c.at)
			got := AttributeDay(at, off, hasOffset, zone)
			wantStart := mustTime(t, c.wantStart)
			_, wantOffset := wantStart.Zone()
			assert.Equal(t, c.wantDate, got.Date, "Date = %s, want %s", got.Date, c.wantDate)
			assert.True(t, got.Start.Equal(wantStart), "Start = %s, want %s", got.Start.Format(time.RFC3339), c.wantStart)
			assert.Equal(t, wantOffset, got.Offset, "Offset = %d, want %d", got.Offset, wantOffset)
		})
	}
}

// A DST day has its real length: the next day's start minus this one's.
func TestLocalDayLengthAcrossDST(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	cases := []struct {
		name     string
		noon     string // any instant on the day, UTC
		nextNoon string
		want     time.Duration
	}{
		{"spring-forward day has 23 hours", "2026-03-08T17:00:00Z", "2026-03-09T16:00:00Z", 23 * time.Hour},
		{"fall-back day has 25 hours", "2026-11-01T16:00:00Z", "2026-11-02T17:00:00Z", 25 * time.Hour},
		{"an ordinary day has 24 hours", "2026-11-20T17:00:00Z", "2026-11-21T17:00:00Z", 24 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			day := AttributeDay(mustTime(t, c.noon), 0, false, ny)
			next := AttributeDay(mustTime(t, c.nextNoon), 0, false, ny)
			got := next.Start.Sub(day.Start)
			assert.Equal(t, c.want, got, "%s lasts %v, want %v", day.Date, got, c.want)
		})
	}
}

func TestZoneAt(t *testing.T) {
	moved := mustTime(t, "2026-11-20T12:00:00Z")
	history := []TimezoneChange{
		{From: mustTime(t, "2026-01-10T00:00:00Z"), Zone: "Europe/Berlin"},
		{From: moved, Zone: "Asia/Tokyo"},
	}
	cases := []struct {
		name    string
		history []TimezoneChange
		at      time.Time
		want    string
	}{
		{"no history is UTC", nil, moved, "UTC"},
		{"before the first change the first zone applies", history, mustTime(t, "2025-12-31T12:00:00Z"), "Europe/Berlin"},
		{"at the first change", history, history[0].From, "Europe/Berlin"},
		{"just before the move", history, moved.Add(-time.Nanosecond), "Europe/Berlin"},
		{"a change applies from its instant on", history, moved, "Asia/Tokyo"},
		{"long after the last change", history, mustTime(t, "2027-06-01T00:00:00Z"), "Asia/Tokyo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ZoneAt(c.history, c.at)
			assert.Equal(t, c.want, got, "ZoneAt(%s) = %s, want %s", c.at.Format(time.RFC3339Nano), got, c.want)
		})
	}
}

// A traveller flies from Berlin to Tokyo; their tracker sends UTC. Data
// measured before the move keeps its Berlin days, data after it gets Tokyo
// days, even when the other zone would have put it on another date.
func TestTravellerKeepsTheDayOfWhereTheyWere(t *testing.T) {
	history := []TimezoneChange{
		{From: mustTime(t, "2026-01-10T00:00:00Z"), Zone: "Europe/Berlin"},
		{From: mustTime(t, "2026-11-20T12:00:00Z"), Zone: "Asia/Tokyo"},
	}
	cases := []struct {
		name     string
		at       string
		wantZone string
		wantDate string
	}{
		// 17:00 in Berlin, already 01:00 the next day in Tokyo.
		{"evening in Berlin before the flight", "2026-11-19T16:00:00Z", "Europe/Berlin", "2026-11-19"},
		{"just before the change", "2026-11-20T11:59:00Z", "Europe/Berlin", "2026-11-20"},
		// 01:00 in Tokyo, still 17:00 the previous day in Berlin.
		{"after landing in Tokyo", "2026-11-20T16:00:00Z", "Asia/Tokyo", "2026-11-21"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := mustTime(t, c.at)
			zone := ZoneAt(history, at)
			require.Equal(t, c.wantZone, zone, "ZoneAt = %s, want %s", zone, c.wantZone)
			got := AttributeDay(at, 0, false, mustZone(t, zone))
			assert.Equal(t, c.wantDate, got.Date, "Date = %s, want %s", got.Date, c.wantDate)
			local := got.Start.In(mustZone(t, c.wantZone))
			assert.Equal(t, "00:00", local.Format("15:04"), "Start = %s, want midnight in %s", got.Start, c.wantZone)
		})
	}
}
