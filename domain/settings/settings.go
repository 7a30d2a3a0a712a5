package settings

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/metric"
)

// Stable event type names (schema version 1 each).
const (
	EventProfileChanged       = "user.settings_changed"
	EventNotificationsChanged = "user.notification_preferences_changed"
)

// Document names the command side versions independently: an edit of one
// never conflicts with an edit of the other.
type Document string

// The versioned documents of a user.
const (
	DocProfile       Document = "settings"
	DocNotifications Document = "notification_preferences"
)

// MaxDisplayNameLength bounds a display name in characters (runes): long
// enough for real names, short enough for a notification title.
const MaxDisplayNameLength = 64

// Profile is the settings document (GET/PUT /v1/me/settings). DisplayName
// is personal data: it lives only in encrypted events and in the read
// model, never in a command-side table.
type Profile struct {
	DisplayName string        `json:"display_name"`
	Timezone    string        `json:"timezone"`
	Units       metric.System `json:"units"`
}

// DefaultProfile is what a new user has before the first edit: the
// registration's timezone, no display name, metric units.
func DefaultProfile(timezone string) Profile {
	return Profile{Timezone: timezone, Units: metric.Metric}
}

// Normalize trims surrounding white space from the display name, so " Ada "
// and "Ada" are the same name; everything else is taken as sent.
func (p Profile) Normalize() Profile {
	p.DisplayName = strings.TrimSpace(p.DisplayName)
	return p
}

// Validate records every broken rule in v (fields as JSON pointers).
func (p Profile) Validate(v *domain.ValidationError) {
	switch n := p.DisplayName; {
	case !utf8.ValidString(n):
		v.Add("/display_name", "must be valid UTF-8")
	case utf8.RuneCountInString(n) > MaxDisplayNameLength:
		v.Add("/display_name", "must be at most %d characters", MaxDisplayNameLength)
	case strings.IndexFunc(n, forbiddenInName) >= 0:
		v.Add("/display_name", "must not contain control characters or line breaks")
	}
	if err := identity.ValidateTimezone(p.Timezone); err != nil {
		v.Add("/timezone", "%v", err)
	}
	if !p.Units.Valid() {
		v.Add("/units", "must be metric or imperial")
	}
}

// forbiddenInName rejects characters that would let a name break a log
// line, an email header or a notification: C0/C1 controls, and the line
// and paragraph separators.
func forbiddenInName(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// ProfileChanged is the body of user.settings_changed: the whole new
// document and the version it got.
type ProfileChanged struct {
	Profile
	Version int64 `json:"version"`
}

// DailySummary is when the daily summary is sent, in the user's local time.
type DailySummary struct {
	Enabled bool   `json:"enabled"`
	Time    string `json:"time"` // "HH:MM", local
}

// QuietHours is a local window without notifications; End before Start
// spans midnight (22:00-07:00).
type QuietHours struct {
	Start string `json:"start"` // "HH:MM", local
	End   string `json:"end"`   // "HH:MM", local
}

// Channels says where notifications may go.
type Channels struct {
	Email bool `json:"email"`
	Push  bool `json:"push"`
}

// Notifications is the notification preferences document (GET/PUT
// /v1/me/notification-preferences). QuietHours nil means none.
type Notifications struct {
	DailySummary DailySummary `json:"daily_summary"`
	QuietHours   *QuietHours  `json:"quiet_hours"`
	Channels     Channels     `json:"channels"`
}

// DefaultNotifications is opt-in: nothing is sent about a user's health
// until they ask for it (the summary time and quiet hours are pre-filled
// so enabling is one switch).
func DefaultNotifications() Notifications {
	return Notifications{
		DailySummary: DailySummary{Enabled: false, Time: "08:00"},
		QuietHours:   &QuietHours{Start: "22:00", End: "07:00"},
		Channels:     Channels{Email: false, Push: false},
	}
}

var clock = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// ValidClock reports whether s is a 24-hour local time "HH:MM".
func ValidClock(s string) bool { return clock.MatchString(s) }

// Validate records every broken rule in v (fields as JSON pointers).
func (n Notifications) Validate(v *domain.ValidationError) {
	if !ValidClock(n.DailySummary.Time) {
		v.Add("/daily_summary/time", "must be a local time HH:MM (00:00 to 23:59)")
	}
	if q := n.QuietHours; q != nil {
		okStart, okEnd := ValidClock(q.Start), ValidClock(q.End)
		if !okStart {
			v.Add("/quiet_hours/start", "must be a local time HH:MM (00:00 to 23:59)")
		}
		if !okEnd {
			v.Add("/quiet_hours/end", "must be a local time HH:MM (00:00 to 23:59)")
		}
		if okStart && okEnd && q.Start == q.End {
			v.Add("/quiet_hours/end", "must differ from start (send null for no quiet hours)")
		}
	}
}

// NotificationsChanged is the body of user.notification_preferences_changed:
// the whole new document and the version it got.
type NotificationsChanged struct {
	Notifications
	Version int64 `json:"version"`
}
