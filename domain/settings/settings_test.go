package settings

import (
	"slices"
	"strings"
	"testing"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/stretchr/testify/require"
)

func fields(v *domain.ValidationError) []string {
	var out []string
	for _, p := range v.Problems {
		out = append(out, p.Field)
	}
	return out
}

func TestProfileRules(t *testing.T) {
	ok := Profile{DisplayName: "Ada Lovelace", Timezone: "Europe/London", Units: metric.Imperial}
	cases := []struct {
		name string
		edit func(*Profile)
		want []string // fields named, in order; nil = valid
	}{
		{"a full valid document", func(*Profile) {}, nil},
		{"no display name is fine", func(p *Profile) { p.DisplayName = "" }, nil},
		{"names in any script", func(p *Profile) { p.DisplayName = "李小龍 Ωmega Zoë 👩🏽‍🔬" }, nil},
		{"64 characters", func(p *Profile) { p.DisplayName = strings.Repeat("é", 64) }, nil},
		{"65 characters", func(p *Profile) { p.DisplayName = strings.Repeat("é", 65) }, []string{"/display_name"}},
		{"a newline", func(p *Profile) { p.DisplayName = "Ada\nLovelace" }, []string{"/display_name"}},
		{"a NUL byte", func(p *Profile) { p.DisplayName = "Ada\x00" }, []string{"/display_name"}},
		{"a C1 control", func(p *Profile) { p.DisplayName = "Ada\u0085" }, []string{"/display_name"}},
		{"a line separator", func(p *Profile) { p.DisplayName = "Ada\u2028" }, []string{"/display_name"}},
		{"broken UTF-8", func(p *Profile) { p.DisplayName = "Ada\xff" }, []string{"/display_name"}},
		{"an unknown zone", func(p *Profile) { p.Timezone = "Mars/Olympus" }, []string{"/timezone"}},
		{"the server's local zone", func(p *Profile) { p.Timezone = "Local" }, []string{"/timezone"}},
		{"no zone", func(p *Profile) { p.Timezone = "" }, []string{"/timezone"}},
		{"UTC", func(p *Profile) { p.Timezone = "UTC" }, nil},
		{"units other than metric or imperial", func(p *Profile) { p.Units = "Metric" }, []string{"/units"}},
		{"no units", func(p *Profile) { p.Units = "" }, []string{"/units"}},
		{"every field wrong at once", func(p *Profile) { p.DisplayName, p.Timezone, p.Units = "\t", "X", "si" }, []string{"/display_name", "/timezone", "/units"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := ok
			c.edit(&p)
			v := &domain.ValidationError{}
			p.Validate(v)
			got := fields(v)
			require.True(t, slices.Equal(got, c.want), "fields %v, want %v (%v)", got, c.want, v.Problems)
		})
	}
}

func TestNormalizeTrimsTheDisplayName(t *testing.T) {
	got := (Profile{DisplayName: "  Ada \t"}).Normalize().DisplayName
	require.Equal(t, "Ada", got, "normalized %q", got)
}

func TestNotificationRules(t *testing.T) {
	ok := Notifications{DailySummary: DailySummary{Enabled: true, Time: "07:30"}, QuietHours: &QuietHours{Start: "22:00", End: "06:45"}, Channels: Channels{Push: true}}
	cases := []struct {
		name string
		edit func(*Notifications)
		want []string
	}{
		{"a full valid document", func(*Notifications) {}, nil},
		{"no quiet hours", func(n *Notifications) { n.QuietHours = nil }, nil},
		{"quiet hours within one day", func(n *Notifications) { n.QuietHours = &QuietHours{"13:00", "14:00"} }, nil},
		{"midnight and one minute before", func(n *Notifications) { n.QuietHours = &QuietHours{"00:00", "23:59"} }, nil},
		{"24:00 is not a time", func(n *Notifications) { n.DailySummary.Time = "24:00" }, []string{"/daily_summary/time"}},
		{"one-digit hour", func(n *Notifications) { n.DailySummary.Time = "7:30" }, []string{"/daily_summary/time"}},
		{"seconds", func(n *Notifications) { n.DailySummary.Time = "07:30:00" }, []string{"/daily_summary/time"}},
		{"a disabled summary still needs a valid time", func(n *Notifications) { n.DailySummary = DailySummary{Time: ""} }, []string{"/daily_summary/time"}},
		{"minute 60", func(n *Notifications) { n.QuietHours.Start = "22:60" }, []string{"/quiet_hours/start"}},
		{"an empty window", func(n *Notifications) { n.QuietHours = &QuietHours{"22:00", "22:00"} }, []string{"/quiet_hours/end"}},
		{"every field wrong at once", func(n *Notifications) {
			n.DailySummary.Time, n.QuietHours = "noon", &QuietHours{"late", "early"}
		}, []string{"/daily_summary/time", "/quiet_hours/start", "/quiet_hours/end"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := ok
			q := *ok.QuietHours
			n.QuietHours = &q
			c.edit(&n)
			v := &domain.ValidationError{}
			n.Validate(v)
			got := fields(v)
			require.True(t, slices.Equal(got, c.want), "fields %v, want %v (%v)", got, c.want, v.Problems)
		})
	}
}

func TestDefaultsAreValidAndOptIn(t *testing.T) {
	v := &domain.ValidationError{}
	DefaultProfile("Asia/Tokyo").Validate(v)
	d := DefaultNotifications()
	d.Validate(v)
	require.NoError(t, v.Err())
	require.False(t, d.DailySummary.Enabled, "defaults must send nothing until the user opts in: %+v", d)
	require.False(t, d.Channels.Email, "defaults must send nothing until the user opts in: %+v", d)
	require.False(t, d.Channels.Push, "defaults must send nothing until the user opts in: %+v", d)
}
