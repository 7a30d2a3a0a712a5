package projections_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections"
)

func changeSettings(t *testing.T, s *stack, user uuid.UUID, p settings.Profile, version int64, at time.Time) eventstore.Position {
	body, _ := json.Marshal(settings.ProfileChanged{Profile: p, Version: version})
	return s.append(t, eventstore.Event{Type: settings.EventProfileChanged, UserID: user, Payload: body, OccurredAt: at, RecordedAt: at})
}

func changeNotifications(t *testing.T, s *stack, user uuid.UUID, n settings.Notifications, version int64) eventstore.Position {
	body, _ := json.Marshal(settings.NotificationsChanged{Notifications: n, Version: version})
	return s.append(t, eventstore.Event{Type: settings.EventNotificationsChanged, UserID: user, Payload: body})
}

func runSettings(t *testing.T, s *stack) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rt := runtime(s, projections.Settings{}, 500)
	go func() { _ = rt.Run(ctx) }()
	s.waitCaughtUp(t, projections.Settings{})
}

func TestSettingsStartAsDefaultsAndEndAtTheLastEventInLogOrder(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada, bob := uuid.New(), uuid.New()
	register(t, s, ada, "Europe/London", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	register(t, s, bob, "Asia/Tokyo", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	first := settings.Profile{DisplayName: "Ada", Timezone: "Europe/Paris", Units: metric.Imperial}
	second := settings.Profile{DisplayName: "Ada L.", Timezone: "Europe/London", Units: metric.Metric}
	changeSettings(t, s, ada, first, 1, time.Now().UTC())
	// An append whose outcome was unknown can leave two events with one
	// version; the later one in the log is what readers see.
	changeSettings(t, s, ada, second, 1, time.Now().UTC())
	quiet := settings.Notifications{DailySummary: settings.DailySummary{Enabled: true, Time: "07:15"}, Channels: settings.Channels{Email: true}}
	changeNotifications(t, s, ada, quiet, 1)
	runSettings(t, s)
	r := &projections.Reader{Pool: s.pool, Partitions: s.cfg.Partitions}

	p, err := r.Profile(ctx, ada)
	if err != nil || p.Profile != second || p.Version != 1 {
		t.Fatalf("ada's settings = %+v, %v; want the later document %+v", p, err, second)
	}
	n, err := r.Notifications(ctx, ada)
	if err != nil || n.DailySummary != quiet.DailySummary || n.Channels != quiet.Channels || n.QuietHours != nil || n.Version != 1 {
		t.Fatalf("ada's notification preferences = %+v, %v; want %+v without quiet hours", n, err, quiet)
	}
	p, err = r.Profile(ctx, bob)
	if err != nil || p.Profile != settings.DefaultProfile("Asia/Tokyo") || p.Version != 0 {
		t.Fatalf("bob's settings = %+v, %v; want the defaults with the registration's zone at version 0", p, err)
	}
	n, err = r.Notifications(ctx, bob)
	if d := settings.DefaultNotifications(); err != nil || n.DailySummary != d.DailySummary || *n.QuietHours != *d.QuietHours || n.Channels != d.Channels || n.Version != 0 {
		t.Fatalf("bob's notification preferences = %+v, %v; want the defaults", n, err)
	}
	if u, err := r.Units(ctx, uuid.New(), true); err != nil || u != metric.Metric {
		t.Fatalf("units of an unknown user = %v, %v; want metric", u, err)
	}
	// The command side learns the highest version in the log.
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM document_versions WHERE user_id = $1 AND document = 'settings'`, ada).Scan(&v); err != nil || v != 1 {
		t.Fatalf("command-side version = %d, %v; want 1", v, err)
	}
}

func TestATimezoneChangeAppliesToDataMeasuredAfterIt(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	register(t, s, user, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	watch := ingest.Source{Provider: "bridge", Device: "watch"}
	// Measured and pushed before the change: 20:00Z is 21:00 in Berlin on
	// the 18th (it would be the 19th in Tokyo).
	push(t, s, user, ingest.Batch{Source: watch, Samples: []ingest.Sample{sample("steps", "2026-11-18T20:00:00Z", "2026-11-18T20:10:00Z", 100, "count")}})
	changed := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	changeSettings(t, s, user, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Metric}, 1, changed)
	// A units-only change is no timezone fact.
	changeSettings(t, s, user, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Imperial}, 2, changed.Add(time.Hour))
	push(t, s, user, ingest.Batch{Source: watch, Samples: []ingest.Sample{
		sample("steps", "2026-11-19T20:00:00Z", "2026-11-19T20:10:00Z", 200, "count"),         // synced late, measured before: Berlin's 19th
		sample("steps", "2026-11-20T20:00:00Z", "2026-11-20T20:10:00Z", 300, "count"),         // after: 05:00 on the 21st in Tokyo
		sample("steps", "2026-11-20T22:00:00+01:00", "2026-11-20T22:10:00+01:00", 7, "count"), // its own offset wins over any zone
	}})
	m := &projections.Metrics{}
	project(t, s, m)

	r := &projections.Reader{Pool: s.pool, Partitions: s.cfg.Partitions, Now: func() time.Time { return time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC) }}
	series, err := r.Metrics(ctx, projections.MetricQuery{UserID: user, Type: metric.Steps, From: time.Date(2026, 11, 17, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Bucket: projections.BucketDay})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"2026-11-18T00:00:00+01:00": 100, "2026-11-19T00:00:00+01:00": 200, "2026-11-20T00:00:00+01:00": 7, "2026-11-21T00:00:00+09:00": 300}
	if len(series.Points) != len(want) {
		t.Fatalf("days = %+v, want %v", series.Points, want)
	}
	for _, p := range series.Points {
		if got := p.Start.Format(time.RFC3339); want[got] != p.Value {
			t.Fatalf("day %s = %v, want %v", got, p.Value, want)
		}
	}
	var zones int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tz_history_g1 WHERE user_id = $1`, user).Scan(&zones); err != nil || zones != 2 {
		t.Fatalf("timezone history has %d entries (%v), want registration + one change", zones, err)
	}
	d, err := r.Dashboard(ctx, user, nil)
	if err != nil || d.Timezone != "Asia/Tokyo" || d.Date != "2026-11-21" || d.Steps == nil || d.Steps.Value != 300 {
		t.Fatalf("dashboard = %+v, %v; want today in Tokyo with its 300 steps", d, err)
	}
}

func TestTheProfileTimezoneFollowsSettingsChanges(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx := context.Background()
	sameBatch, later := uuid.New(), uuid.New()
	register(t, s, sameBatch, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	changeSettings(t, s, sameBatch, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Metric}, 1, time.Now().UTC())
	register(t, s, later, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx2, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	rt := runtime(s, projections.Users{}, 500)
	go func() { _ = rt.Run(ctx2) }()
	s.waitCaughtUp(t, projections.Users{})
	changeSettings(t, s, later, settings.Profile{Timezone: "America/Chicago", Units: metric.Metric}, 1, time.Now().UTC())
	s.waitCaughtUp(t, projections.Users{})

	r := &projections.Reader{Pool: s.pool, Partitions: s.cfg.Partitions}
	for user, want := range map[uuid.UUID]string{sameBatch: "Asia/Tokyo", later: "America/Chicago"} {
		if u, err := r.Me(ctx, user); err != nil || u.Timezone != want {
			t.Fatalf("profile = %+v, %v; want timezone %s", u, err, want)
		}
	}
}

func TestLogOrderDecidesBetweenTimezoneChangesStampedOutOfOrder(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	register(t, s, user, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	changeSettings(t, s, user, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Metric}, 1, at)
	// Appended later, but stamped earlier by an instance whose clock is behind.
	changeSettings(t, s, user, settings.Profile{Timezone: "America/Chicago", Units: metric.Metric}, 2, at.Add(-time.Hour))
	push(t, s, user, ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{
		sample("steps", "2026-11-20T16:00:00Z", "2026-11-20T16:10:00Z", 10, "count"), // 10:00 on the 20th in Chicago, 01:00 on the 21st in Tokyo
	}})
	project(t, s, &projections.Metrics{})
	var date string
	if err := s.pool.QueryRow(ctx, `SELECT local_date::text FROM samples_g1 WHERE user_id = $1`, user).Scan(&date); err != nil || date != "2026-11-20" {
		t.Fatalf("local date %q (%v); want Chicago's 2026-11-20", date, err)
	}
	var zone string
	if err := s.pool.QueryRow(ctx, `SELECT zone FROM tz_history_g1 WHERE user_id = $1 ORDER BY valid_from DESC LIMIT 1`, user).Scan(&zone); err != nil || zone != "America/Chicago" {
		t.Fatalf("latest zone %q (%v); the change later in the log must be the current one", zone, err)
	}
}
