package projections_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections"
)

func register(t *testing.T, s *stack, user uuid.UUID, tz string, at time.Time) eventstore.Position {
	body, _ := json.Marshal(identity.Registered{Email: user.String() + "@example.com", Timezone: tz, RegisteredAt: at})
	return s.append(t, eventstore.Event{Type: identity.EventRegistered, UserID: user, Payload: body})
}

func push(t *testing.T, s *stack, user uuid.UUID, b ingest.Batch) eventstore.Position {
	if err := b.Validate(false); err != nil {
		t.Fatalf("test batch invalid: %v", err)
	}
	body, _ := json.Marshal(ingest.Pushed{Channel: "app", ReceivedAt: time.Now().UTC(), Batch: b})
	return s.append(t, eventstore.Event{Type: ingest.EventPushed, UserID: user, Payload: body})
}

func sample(typ, start, end string, v float64, unit string) ingest.Sample {
	return ingest.Sample{Type: typ, Start: start, End: end, Value: v, Unit: unit}
}

// project runs both projectors until they have caught up.
func project(t *testing.T, s *stack, m *projections.Metrics) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, p := range []projections.Projector{projections.Users{}, m} {
		rt := runtime(s, p, 500)
		go func() { _ = rt.Run(ctx) }()
	}
	s.waitCaughtUp(t, projections.Users{})
	s.waitCaughtUp(t, m)
}

func TestMetricsReadModels(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx := context.Background()
	tokyo, ny := uuid.New(), uuid.New()
	register(t, s, tokyo, "Asia/Tokyo", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	register(t, s, ny, "America/New_York", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

	watch := ingest.Source{Provider: "apple_health", Device: "watch"}
	phone := ingest.Source{Provider: "apple_health", Device: "phone"}
	stepsWatch := ingest.Batch{Source: watch, Samples: []ingest.Sample{
		sample("steps", "2026-11-20T08:00:00+09:00", "2026-11-20T08:15:00+09:00", 1200, "count"),
		sample("steps", "2026-11-20T23:30:00+09:00", "2026-11-20T23:45:00+09:00", 300, "count"),
		sample("distance", "2026-11-20T08:00:00+09:00", "2026-11-20T08:15:00+09:00", 1.2, "km"),
		sample("hrv_rmssd", "2026-11-20T06:00:00+09:00", "2026-11-20T06:05:00+09:00", 40, "ms"),
		sample("hrv_sdnn", "2026-11-20T06:00:00+09:00", "2026-11-20T06:05:00+09:00", 90, "ms"),
	}, SleepSessions: []ingest.SleepSession{{Start: "2026-11-19T23:00:00+09:00", End: "2026-11-20T06:30:00+09:00", Stages: []ingest.Stage{
		{Stage: "light", Start: "2026-11-19T23:00:00+09:00", End: "2026-11-20T01:00:00+09:00"},
		{Stage: "deep", Start: "2026-11-20T01:00:00+09:00", End: "2026-11-20T02:30:00+09:00"},
		{Stage: "rem", Start: "2026-11-20T02:30:00+09:00", End: "2026-11-20T04:00:00+09:00"},
		{Stage: "awake", Start: "2026-11-20T04:00:00+09:00", End: "2026-11-20T04:10:00+09:00"},
		{Stage: "light", Start: "2026-11-20T04:10:00+09:00", End: "2026-11-20T06:30:00+09:00"},
	}}}}
	push(t, s, tokyo, stepsWatch)
	push(t, s, tokyo, stepsWatch) // redelivered with a new event id: natural keys make it harmless
	push(t, s, tokyo, ingest.Batch{Source: phone, Samples: []ingest.Sample{
		sample("steps", "2026-11-20T08:00:00+09:00", "2026-11-20T09:00:00+09:00", 1100, "count"),
	}})
	// New York user: UTC timestamps fall on the local day of the user's
	// timezone, across the 2026-03-08 DST change.
	push(t, s, ny, ingest.Batch{Source: watch, Samples: []ingest.Sample{
		sample("steps", "2026-11-21T03:00:00Z", "2026-11-21T03:10:00Z", 50, "count"),          // 22:00 EST on 11-20
		sample("steps", "2026-03-08T06:30:00Z", "2026-03-08T06:40:00Z", 10, "count"),          // 01:30 EST on 03-08
		sample("steps", "2026-03-09T04:30:00Z", "2026-03-09T04:40:00Z", 20, "count"),          // 00:30 EDT on 03-09
		sample("weight", "2026-11-20T12:00:00-05:00", "2026-11-20T12:00:00-05:00", 150, "lb"), // converted to kg
	}})
	m := &projections.Metrics{}
	project(t, s, m)
	r := &projections.Reader{Pool: s.pool, Partitions: s.cfg.Partitions}

	day := func(user uuid.UUID, typ string, from, to string) []projections.MetricPoint {
		t.Helper()
		f, _ := time.Parse(time.RFC3339, from)
		tt, _ := time.Parse(time.RFC3339, to)
		series, err := r.Metrics(ctx, projections.MetricQuery{UserID: user, Type: metricType(typ), From: f, To: tt, Bucket: projections.BucketDay})
		if err != nil {
			t.Fatal(err)
		}
		return series.Points
	}

	steps := day(tokyo, "steps", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z")
	if len(steps) != 1 || steps[0].Value != 1500 || steps[0].Source != "apple_health/watch" {
		t.Fatalf("Tokyo steps = %+v; want one day of 1500 from the watch only (duplicates and the phone not added)", steps)
	}
	if got := steps[0].Start.Format(time.RFC3339); got != "2026-11-20T00:00:00+09:00" {
		t.Fatalf("day bucket starts %s, want local midnight 2026-11-20T00:00:00+09:00", got)
	}
	if d := day(tokyo, "distance", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"); len(d) != 1 || d[0].Value != 1200 {
		t.Fatalf("distance = %+v, want 1200 m (km converted)", d)
	}
	if rm, sd := day(tokyo, "hrv_rmssd", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"), day(tokyo, "hrv_sdnn", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"); len(rm) != 1 || rm[0].Value != 40 || len(sd) != 1 || sd[0].Value != 90 {
		t.Fatalf("RMSSD %+v and SDNN %+v must stay separate", rm, sd)
	}

	nyDays := day(ny, "steps", "2026-03-01T00:00:00Z", "2026-12-01T00:00:00Z")
	want := map[string]float64{"2026-03-08T00:00:00-05:00": 10, "2026-03-09T00:00:00-04:00": 20, "2026-11-20T00:00:00-05:00": 50}
	if len(nyDays) != len(want) {
		t.Fatalf("New York days = %+v", nyDays)
	}
	for _, p := range nyDays {
		if want[p.Start.Format(time.RFC3339)] != p.Value {
			t.Fatalf("New York day %s = %v, want %v", p.Start.Format(time.RFC3339), p.Value, want)
		}
	}
	if w := day(ny, "weight", "2026-11-19T00:00:00Z", "2026-11-22T00:00:00Z"); len(w) != 1 || w[0].Value < 68.03 || w[0].Value > 68.04 {
		t.Fatalf("weight = %+v, want 68.04 kg", w)
	}

	sessions, err := r.SleepSessions(ctx, tokyo, time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 || sessions[0].Date != "2026-11-20" || sessions[0].DeepMinutes != 90 || sessions[0].REMMinutes != 90 || sessions[0].AwakeMinutes != 10 || sessions[0].AsleepMinutes != 440 {
		t.Fatalf("sleep = %+v; want the night counted on the wake-up date with stage minutes", sessions)
	}

	hours, err := r.Metrics(ctx, projections.MetricQuery{UserID: tokyo, Type: "steps", From: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Bucket: projections.BucketHour})
	if err != nil {
		t.Fatal(err)
	}
	if len(hours.Points) != 2 || hours.Points[0].Start.Format(time.RFC3339) != "2026-11-20T08:00:00+09:00" || hours.Points[0].Value != 1200 {
		t.Fatalf("hour buckets = %+v", hours.Points)
	}

	me, err := r.Me(ctx, tokyo)
	if err != nil || me.Timezone != "Asia/Tokyo" {
		t.Fatalf("me = %+v, %v", me, err)
	}
}

func TestDashboardIsCachedWithItsLogPositionAndRefreshedAfterCommit(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx := context.Background()
	rc, err := redis.Open(testbackend.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC) // 21:00 in Tokyo
	r := &projections.Reader{Pool: s.pool, Cache: redis.Cache{C: rc}, Partitions: s.cfg.Partitions, Now: func() time.Time { return now }}
	m := &projections.Metrics{Cache: &projections.DashboardCache{Reader: r}}
	user := uuid.New()
	register(t, s, user, "Asia/Tokyo", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for d := 0; d < 10; d++ {
		date := time.Date(2026, 11, 11+d, 6, 0, 0, 0, time.FixedZone("", 9*3600))
		push(t, s, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, Samples: []ingest.Sample{
			sample("hrv_rmssd", date.Format(time.RFC3339), date.Add(5*time.Minute).Format(time.RFC3339), float64(30+d), "ms"),
			sample("resting_heart_rate", date.Format(time.RFC3339), date.Format(time.RFC3339), 55, "bpm"),
		}})
	}
	last := push(t, s, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, Samples: []ingest.Sample{
		sample("steps", "2026-11-20T10:00:00+09:00", "2026-11-20T11:00:00+09:00", 4321, "count"),
	}})
	project(t, s, m)
	if err := r.WaitFor(ctx, eventstore.Token{last}, projections.NameMetrics); err != nil {
		t.Fatal(err)
	}
	d, err := r.Dashboard(ctx, user, eventstore.Token{last})
	if err != nil {
		t.Fatal(err)
	}
	if d.Date != "2026-11-20" || d.Steps == nil || d.Steps.Value != 4321 {
		t.Fatalf("dashboard = %+v; want today's (Tokyo) steps 4321", d)
	}
	if d.HRV.Latest == nil || d.HRV.Latest.Value != 39 || d.HRV.Avg7 == nil || *d.HRV.Avg7 != 36 || d.HRV.Avg28 == nil || *d.HRV.Avg28 != 34.5 {
		t.Fatalf("HRV baseline = %+v", d.HRV)
	}
	if len(d.Freshness) != 1 || d.Freshness[0].Provider != "oura" {
		t.Fatalf("freshness = %+v", d.Freshness)
	}
	// The cache now holds the summary with the position it reflects; a
	// cache hit must not touch PostgreSQL, so close the pool's tables away.
	raw, err := redis.Cache{C: rc}.Get(ctx, "biosync:dashboard:v1:"+user.String())
	if err != nil {
		t.Fatalf("dashboard not cached after commit: %v", err)
	}
	var cached struct {
		P    int32 `json:"p"`
		Next int64 `json:"next"`
	}
	_ = json.Unmarshal(raw, &cached)
	if cached.P != last.Partition || cached.Next <= last.Offset {
		t.Fatalf("cached position %+v does not cover the last write %+v", cached, last)
	}

	// The API keeps its encoding of a cached summary beside it; a newer
	// summary must start without it (never the older rendering).
	hit, err := r.Dashboard(ctx, user, eventstore.Token{last})
	if err != nil {
		t.Fatal(err)
	}
	hit.Rendered.Store("metric", []byte("rendered at the first position"))
	if again, err := r.Dashboard(ctx, user, nil); err != nil {
		t.Fatal(err)
	} else if b, ok := again.Rendered.Load("metric"); !ok || string(b) != "rendered at the first position" {
		t.Fatal("a second hit on the same cached summary lost its rendering")
	}
	newer := push(t, s, user, ingest.Batch{Source: ingest.Source{Provider: "oura", Device: "ring"}, Samples: []ingest.Sample{
		sample("steps", "2026-11-20T12:00:00+09:00", "2026-11-20T13:00:00+09:00", 1000, "count"),
	}})
	if err := r.WaitFor(ctx, eventstore.Token{newer}, projections.NameMetrics); err != nil {
		t.Fatal(err)
	}
	d, err = r.Dashboard(ctx, user, eventstore.Token{newer})
	if err != nil {
		t.Fatal(err)
	}
	if d.Steps == nil || d.Steps.Value != 5321 {
		t.Fatalf("steps after the newer push = %+v, want 5321", d.Steps)
	}
	for range 2 { // as computed, then from the in-process cache
		if _, ok := d.Rendered.Load("metric"); ok {
			t.Fatal("the newer summary came with the older summary's rendering")
		}
		if d, err = r.Dashboard(ctx, user, eventstore.Token{newer}); err != nil {
			t.Fatal(err)
		}
	}
}

func metricType(s string) metric.Type { return metric.Type(s) }

// TestACorrectedOffsetMovesTheSampleToItsNewDayOnly: the same instant resent
// with a corrected offset is one sample, counted once, on the new day; the
// day it left loses its rollup. Day buckets carry their real length.
func TestACorrectedOffsetMovesTheSampleToItsNewDayOnly(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx := context.Background()
	user := uuid.New()
	register(t, s, user, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := ingest.Source{Provider: "bridge"}
	push(t, s, user, ingest.Batch{Source: src, Samples: []ingest.Sample{sample("steps", "2026-11-20T23:30:00+01:00", "2026-11-20T23:45:00+01:00", 100, "count")}})
	push(t, s, user, ingest.Batch{Source: src, Samples: []ingest.Sample{sample("steps", "2026-11-21T00:30:00+02:00", "2026-11-21T00:45:00+02:00", 100, "count")}})
	// DST: Berlin's 2026-03-29 has 23 hours.
	push(t, s, user, ingest.Batch{Source: src, Samples: []ingest.Sample{sample("steps", "2026-03-29T12:00:00Z", "2026-03-29T12:10:00Z", 7, "count")}})
	project(t, s, &projections.Metrics{})
	r := &projections.Reader{Pool: s.pool, Partitions: s.cfg.Partitions}
	series, err := r.Metrics(ctx, projections.MetricQuery{UserID: user, Type: "steps", From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Bucket: projections.BucketDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(series.Points) != 2 {
		t.Fatalf("days = %+v; want the DST day and 2026-11-21 only", series.Points)
	}
	dst, moved := series.Points[0], series.Points[1]
	if got := dst.End.Sub(dst.Start); got != 23*time.Hour || dst.Start.Format(time.RFC3339) != "2026-03-29T00:00:00+01:00" {
		t.Fatalf("DST day %s lasts %v, want 23h", dst.Start.Format(time.RFC3339), got)
	}
	if moved.Start.Format("2006-01-02") != "2026-11-21" || moved.Value != 100 {
		t.Fatalf("corrected sample = %+v, want 100 steps on 2026-11-21 only", moved)
	}
}
