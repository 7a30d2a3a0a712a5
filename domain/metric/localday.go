package metric

import "time"

// LocalDay is a calendar date in the user's local time, the unit daily
// rollups are keyed by.
type LocalDay struct {
	Date   string // YYYY-MM-DD
	Start  time.Time
	End    time.Time // the next local midnight: 23 or 25 hours later on DST days
	Offset int       // seconds east of UTC at Start (local midnight)
}

// TimezoneAt returns the IANA zone that applied to the user at instant t,
// given their timezone history (changes sorted by From). A change applies
// from its instant on, so data measured before a move keeps its old day.
type TimezoneChange struct {
	From time.Time
	Zone string
}

// ZoneAt picks the zone in force at t; before the first change the first
// zone applies (data can predate registration), with no history UTC.
func ZoneAt(history []TimezoneChange, t time.Time) string {
	zone := "UTC"
	if len(history) > 0 {
		zone = history[0].Zone
	}
	for _, c := range history {
		if c.From.After(t) {
			break
		}
		zone = c.Zone
	}
	return zone
}

// AttributeDay returns the local day a measurement at t belongs to. When the
// timestamp carried a non-zero UTC offset (hasOffset), that offset is the
// truth about where the person was; a UTC ("Z" or +00:00) timestamp is
// interpreted in the zone from the user's timezone history at that moment.
// The day's start is local midnight expressed in the same rule, so a DST
// day has its real length.
func AttributeDay(t time.Time, offsetSeconds int, hasOffset bool, zone *time.Location) LocalDay {
	var local time.Time
	if hasOffset && offsetSeconds != 0 {
		local = t.In(time.FixedZone("", offsetSeconds))
	} else if zone != nil {
		local = t.In(zone)
	} else {
		local = t.UTC()
	}
	y, m, d := local.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, local.Location())
	end := time.Date(y, m, d+1, 0, 0, 0, 0, local.Location())
	_, off := start.Zone()
	return LocalDay{Date: start.Format("2006-01-02"), Start: start, End: end, Offset: off}
}
