package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// berlin is the offset of the test user's days (Europe/Berlin in winter).
var berlin = time.FixedZone("", 3600)

// userLog builds one user's log in memory (partition 0, offsets in order).
type userLog struct {
	t      *testing.T
	user   uuid.UUID
	events []eventstore.Stored
}

func (l *userLog) add(id uuid.UUID, typ string, payload any) eventstore.Stored {
	l.t.Helper()
	body, err := json.Marshal(payload)
	require.NoError(l.t, err)
	e := eventstore.Stored{Event: eventstore.Event{ID: id, Type: typ, UserID: l.user, Payload: body, SchemaVersion: 1},
		Position: eventstore.Position{Partition: 0, Offset: int64(len(l.events))}}
	l.events = append(l.events, e)
	return e
}

func (l *userLog) push(src ingest.Source, samples []ingest.Sample, nights ...ingest.SleepSession) eventstore.Stored {
	l.t.Helper()
	b := ingest.Batch{Source: src, Samples: samples, SleepSessions: nights}
	require.NoError(l.t, b.Validate(false, time.Time{}), "test batch invalid")
	return l.add(uuid.New(), ingest.EventPushed, ingest.Pushed{Channel: "app", ReceivedAt: time.Date(2026, 11, 21, 0, 0, len(l.events), 0, time.UTC), Batch: b})
}

// again appends a record of an earlier event (same id and body): a
// redelivery that the push command's deduplication no longer recognised.
func (l *userLog) again(e eventstore.Stored) {
	l.events = append(l.events, eventstore.Stored{Event: e.Event, Position: eventstore.Position{Partition: 0, Offset: int64(len(l.events))}})
}

func (l *userLog) delete(d ingest.Deletion) {
	l.t.Helper()
	require.NoError(l.t, d.Validate(), "test deletion invalid")
	l.add(uuid.New(), ingest.EventDeleted, d)
}

// withoutDeleted is the log as it would be had the deleted data never been
// pushed: every push keeps its id and position but loses the samples and
// sleep sessions a later deletion selects, and the deletions are gone.
// Building it is the specification of a deletion, written without the
// projector's SQL.
func withoutDeleted(t *testing.T, log []eventstore.Stored) []eventstore.Stored {
	t.Helper()
	var out []eventstore.Stored
	for i, e := range log {
		if e.Type == ingest.EventDeleted {
			continue
		}
		if e.Type != ingest.EventPushed {
			out = append(out, e)
			continue
		}
		var p ingest.Pushed
		require.NoError(t, json.Unmarshal(e.Payload, &p))
		for _, later := range log[i+1:] {
			if later.Type != ingest.EventDeleted {
				continue
			}
			var d ingest.Deletion
			require.NoError(t, json.Unmarshal(later.Payload, &d))
			if d.Provider != "" && d.Provider != p.Batch.Source.Provider {
				continue
			}
			inRange := func(start string) bool {
				at, err := ingest.ParseTime(start)
				require.NoError(t, err)
				return !at.Before(d.From) && at.Before(d.To)
			}
			var kept []ingest.Sample
			for _, s := range p.Batch.Samples {
				if !(d.Type == "" || d.Type == s.Type) || !inRange(s.Start) {
					kept = append(kept, s)
				}
			}
			var nights []ingest.SleepSession
			for _, n := range p.Batch.SleepSessions {
				if !d.Sleep() || !inRange(n.Start) {
					nights = append(nights, n)
				}
			}
			p.Batch.Samples, p.Batch.SleepSessions = kept, nights
		}
		body, err := json.Marshal(p)
		require.NoError(t, err)
		e.Payload = body
		out = append(out, e)
	}
	return out
}

// at is a local Berlin time on 2026-11-<day> in RFC 3339.
func at(day, hour, min int) string {
	return time.Date(2026, 11, day, hour, min, 0, 0, berlin).Format(time.RFC3339)
}

// deletionsLog is one user's three days from a watch, a phone and a ring,
// a sample from a watch clock set to 2099, and deletions of every kind: a
// provider's afternoon (which held the day's extreme heart rates), one
// type's whole day across sources, the far-future day, one provider's
// sleep, and a provider's remaining data altogether. Around them: pushes
// after a deletion that re-add data inside its range, a redelivery of an
// older push after the deletion that removed its samples (a copy of an
// applied event: skipped, so the deletion holds), and a provider
// whose name continues another's ("garmin/x" is not a device of garmin).
func deletionsLog(t *testing.T, user uuid.UUID) []eventstore.Stored {
	l := &userLog{t: t, user: user}
	l.add(uuid.New(), identity.EventRegistered, identity.Registered{Email: "del@example.com", Timezone: "Europe/Berlin", RegisteredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	watch, phone := ingest.Source{Provider: "garmin", Device: "fenix"}, ingest.Source{Provider: "apple_health", Device: "iphone"}
	ring, lookalike := ingest.Source{Provider: "oura"}, ingest.Source{Provider: "garmin/x"}
	for day := 18; day <= 20; day++ {
		for hour := 0; hour < 24; hour += 2 {
			var w, p []ingest.Sample
			for min := 0; min < 120; min += 10 {
				h, m := hour+min/60, min%60
				w = append(w, projectiontest.Sample("heart_rate", at(day, h, m), at(day, h, m), float64(55+(day*7+h*3+m)%40), "bpm"))
			}
			w = append(w, projectiontest.Sample("steps", at(day, hour, 0), at(day, hour, 30), float64(100+day+hour), "count"),
				projectiontest.Sample("active_energy", at(day, hour, 0), at(day, hour, 30), float64(hour)+0.3, "kJ"))
			p = append(p, projectiontest.Sample("steps", at(day, hour, 30), at(day, hour+1, 0), float64(200+day*hour), "count"))
			l.push(watch, w)
			l.push(phone, p)
		}
		l.push(ring, nil, ingest.SleepSession{Start: at(day-1, 23, 0), End: at(day, 6, 30), Stages: []ingest.Stage{{Stage: "deep", Start: at(day-1, 23, 30), End: at(day, 1, 0)}}})
		l.push(watch, nil, ingest.SleepSession{Start: at(day-1, 23, 10), End: at(day, 6, 20), Stages: []ingest.Stage{{Stage: "light", Start: at(day-1, 23, 10), End: at(day, 6, 20)}}})
	}
	extremes := l.push(watch, []ingest.Sample{
		projectiontest.Sample("heart_rate", at(19, 11, 5), at(19, 11, 5), 200, "bpm"),
		projectiontest.Sample("heart_rate", at(19, 12, 5), at(19, 12, 5), 30, "bpm"),
	})
	l.push(phone, []ingest.Sample{projectiontest.Sample("weight", at(19, 7, 0), at(19, 7, 0), 70.5, "kg")})
	l.push(lookalike, []ingest.Sample{projectiontest.Sample("heart_rate", at(19, 11, 0), at(19, 11, 0), 66, "bpm")})
	future := time.Date(2099, 3, 1, 10, 0, 0, 0, berlin)
	l.push(watch, []ingest.Sample{
		projectiontest.Sample("steps", future.Format(time.RFC3339), future.Add(time.Hour).Format(time.RFC3339), 5000, "count"),
		projectiontest.Sample("heart_rate", future.Format(time.RFC3339), future.Format(time.RFC3339), 61, "bpm"),
	})

	// garmin's afternoon of the 19th, with the day's highest and lowest
	// heart rate; the lookalike provider keeps its sample.
	l.delete(ingest.Deletion{From: time.Date(2026, 11, 19, 10, 0, 0, 0, berlin), To: time.Date(2026, 11, 19, 14, 0, 0, 0, berlin), Provider: "garmin"})
	// Pushed after the deletion, inside its range: stays.
	l.push(watch, []ingest.Sample{projectiontest.Sample("heart_rate", at(19, 11, 30), at(19, 11, 30), 64, "bpm")})
	// Steps of the 20th, every source; heart rate and energy stay.
	l.delete(ingest.Deletion{From: time.Date(2026, 11, 20, 0, 0, 0, 0, berlin), To: time.Date(2026, 11, 21, 0, 0, 0, 0, berlin), Type: "steps"})
	l.push(phone, []ingest.Sample{projectiontest.Sample("steps", at(20, 15, 0), at(20, 15, 30), 321, "count")})
	// The far-future day: garmin's newest sample goes, so does its freshness.
	l.delete(ingest.Deletion{From: time.Date(2099, 3, 1, 0, 0, 0, 0, berlin), To: time.Date(2099, 3, 2, 0, 0, 0, 0, berlin)})
	// Oura's newest night, then everything oura has left.
	l.delete(ingest.Deletion{From: time.Date(2026, 11, 19, 12, 0, 0, 0, berlin), To: time.Date(2026, 11, 20, 12, 0, 0, 0, berlin), Provider: "oura", Type: ingest.SleepType})
	l.delete(ingest.Deletion{From: time.Date(2026, 11, 15, 0, 0, 0, 0, berlin), To: time.Date(2026, 11, 22, 0, 0, 0, 0, berlin), Provider: "oura"})
	// A redelivery of the push with the extremes, after the deletion
	// that removed them: a copy of an event the read model applied, so it
	// is skipped and the extremes stay deleted.
	l.again(extremes)
	return l.events
}

// TestDeletionsLeaveTheTablesOfACleanBuildWithoutTheDeletedData: a read
// model that applied the deletions live (small batches, then a rewind that
// applies a stretch of the log again, deletions included, after later
// pushes were stored) is byte-identical, table by table, to a clean rebuild
// of the same log and to a clean build of the log as it would be had the
// deleted data never been pushed: samples, sleep sessions, the per-source
// and daily rollups of every touched day, and source freshness.
func TestDeletionsLeaveTheTablesOfACleanBuildWithoutTheDeletedData(t *testing.T) {
	pool, _ := testbackend.Store(t, 8)
	ctx := context.Background()
	user := uuid.New()
	log := deletionsLog(t, user)

	live := &metrics.Projector{}
	applyBatches(t, pool, live, log[:len(log)-12], 1, 3, 2, 7, 1, 5)
	applyBatches(t, pool, live, log[len(log)-12:], 1)
	applyBatches(t, pool, live, log[len(log)/2:], 4, 1, 9)
	applyBatches(t, pool, live, log[len(log)-8:], 2, 1)

	versions := &engine.Versions{Pool: pool}
	rebuildGen, err := versions.Create(ctx, live)
	require.NoError(t, err)
	applyBatches(t, pool, &metrics.Projector{Gen: rebuildGen}, log, len(log))
	neverGen, err := versions.Create(ctx, live)
	require.NoError(t, err)
	applyBatches(t, pool, &metrics.Projector{Gen: neverGen}, withoutDeleted(t, log), len(log))

	for _, base := range live.Tables() {
		got := tableDigest(t, pool, base+"_g1")
		assert.Equal(t, tableDigest(t, pool, fmt.Sprintf("%s_g%d", base, rebuildGen)), got, "%s: live (actual) against a clean rebuild of the same log (expected)", base)
		if base == "pushes_applied" {
			continue // the other log's pushes have other bodies, hence other digests
		}
		assert.Equal(t, tableDigest(t, pool, fmt.Sprintf("%s_g%d", base, neverGen)), got, "%s: live (actual) against a build that never saw the deleted data (expected)", base)
	}

	// What that means for the reads.
	r := &metrics.Reader{Pool: pool, Partitions: 1}
	day := func(typ string, from, to time.Time) []metrics.MetricPoint {
		t.Helper()
		s, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: metricType(typ), From: from, To: to, Bucket: metrics.BucketDay})
		require.NoError(t, err)
		return s.Points
	}
	nov := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, berlin) }
	steps := day("steps", nov(18), nov(21))
	if assert.Len(t, steps, 3, "steps days %+v", steps) {
		assert.Equal(t, 321.0, steps[2].Value, "the 20th has only the steps pushed after its deletion")
		assert.Equal(t, "apple_health/iphone", steps[2].Source)
	}
	hr := day("heart_rate", nov(19), nov(20))
	if assert.Len(t, hr, 1) {
		assert.Less(t, hr[0].Max, 200.0, "the redelivered copy of the push with the extremes is skipped: they stay deleted")
	}
	assert.Empty(t, day("steps", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 12, 1, 0, 0, 0, 0, time.UTC)), "the far-future steps are gone")
	raw, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: "heart_rate", From: nov(19).Add(10 * time.Hour), To: nov(19).Add(14 * time.Hour), Bucket: metrics.BucketRaw})
	require.NoError(t, err)
	sources := map[string]int{}
	for _, p := range raw.Points {
		sources[p.Source]++
	}
	assert.Equal(t, map[string]int{"garmin/fenix": 1, "garmin/x": 1}, sources,
		"garmin's afternoon of the 19th: only the sample pushed after the deletion (the redelivered extremes are a skipped copy); the lookalike provider's sample untouched")
	page, err := r.SleepSessions(ctx, metrics.SleepQuery{UserID: user, From: nov(17), To: nov(22)})
	require.NoError(t, err)
	nights := page.Sessions
	for _, n := range nights {
		assert.Equal(t, "garmin/fenix", n.Source, "oura's nights are all deleted, garmin's stay: %+v", n)
	}
	assert.Len(t, nights, 3, "garmin's three nights")
	fresh := map[string]time.Time{}
	rows, err := pool.Query(ctx, `SELECT provider, last_sample_at FROM source_freshness_g1 WHERE user_id = $1`, user)
	require.NoError(t, err)
	for rows.Next() {
		var p string
		var last time.Time
		require.NoError(t, rows.Scan(&p, &last))
		fresh[p] = last.UTC()
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, time.Date(2026, 11, 20, 23, 50, 0, 0, berlin).UTC(), fresh["garmin"], "garmin's newest sample is the 20th's last heart rate again (not the one in 2099)")
	assert.Equal(t, time.Time{}, fresh["oura"], "oura has nothing left: the zero instant, as a push without any item")
}

// TestADeletionIsReadWithItsTokenAndAPushAfterItSurvives runs the deletion
// through Kafka and the projector runtime: once the metrics projector has
// passed the deletion's position, series, day totals, sleep and the cached
// dashboard no longer show the deleted data; a push after the deletion
// that re-adds a sample inside its range is kept, and so is an older push
// delivered again after it (later log position wins).
func TestADeletionIsReadWithItsTokenAndAPushAfterItSurvives(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	rc, err := redis.Open(testbackend.Redis(t))
	require.NoError(t, err)
	now := time.Date(2026, 11, 20, 18, 0, 0, 0, time.UTC)
	r := &metrics.Reader{Pool: s.Pool, Cache: redis.Cache{C: rc}, Partitions: s.Cfg.Partitions, Now: func() time.Time { return now }}
	m := &metrics.Projector{Cache: &metrics.DashboardCache{Reader: r}}
	user := uuid.New()
	s.Register(t, user, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	watch := ingest.Source{Provider: "garmin", Device: "fenix"}
	s.Push(t, user, ingest.Batch{Source: watch, Samples: []ingest.Sample{
		projectiontest.Sample("steps", at(20, 9, 0), at(20, 10, 0), 1000, "count"),
		projectiontest.Sample("steps", at(20, 11, 0), at(20, 12, 0), 2000, "count"),
	}, SleepSessions: []ingest.SleepSession{{Start: at(19, 23, 0), End: at(20, 7, 0), Stages: []ingest.Stage{{Stage: "deep", Start: at(19, 23, 0), End: at(20, 1, 0)}}}}})
	wrongClock, err := json.Marshal(ingest.Pushed{Channel: "webhook", DeliveryID: "msg-2099", ReceivedAt: now, Batch: ingest.Batch{Source: watch, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2099-03-01T10:00:00+01:00", "2099-03-01T11:00:00+01:00", 5000, "count"),
	}}})
	require.NoError(t, err)
	wrongID := eventstore.DeterministicID("push.webhook", user.String(), "msg-2099")
	before := s.Append(t, eventstore.Event{ID: wrongID, Type: ingest.EventPushed, UserID: user, Payload: wrongClock})
	project(t, s, m)
	require.NoError(t, (&engine.Consistency{Pool: s.Pool}).WaitFor(ctx, eventstore.Token{before}, metrics.Name))
	d, err := r.Dashboard(ctx, user, eventstore.Token{before})
	require.NoError(t, err)
	require.NotNil(t, d.Steps)
	assert.Equal(t, 3000.0, d.Steps.Value, "today's steps before the deletion")
	require.Len(t, d.Freshness, 1)
	assert.Equal(t, 2099, d.Freshness[0].LastSampleAt.Year(), "the wrong clock's sample is garmin's newest")

	appendDeletion := func(d ingest.Deletion) eventstore.Position {
		body, err := json.Marshal(d)
		require.NoError(t, err)
		return s.Append(t, eventstore.Event{Type: ingest.EventDeleted, UserID: user, Payload: body})
	}
	// Today's morning and the far-future year, every source and type.
	appendDeletion(ingest.Deletion{From: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)})
	deleted := appendDeletion(ingest.Deletion{From: time.Date(2026, 11, 19, 12, 0, 0, 0, berlin), To: time.Date(2026, 11, 20, 10, 30, 0, 0, berlin)})
	require.NoError(t, (&engine.Consistency{Pool: s.Pool}).WaitFor(ctx, eventstore.Token{deleted}, metrics.Name))
	d, err = r.Dashboard(ctx, user, eventstore.Token{deleted})
	require.NoError(t, err)
	require.NotNil(t, d.Steps, "the 11:00 steps are outside the deletion")
	assert.Equal(t, 2000.0, d.Steps.Value, "today's steps once the 09:00 sample is deleted")
	assert.Nil(t, d.LastNight, "last night's sleep started inside the deleted range")
	require.Len(t, d.Freshness, 1)
	assert.Equal(t, time.Date(2026, 11, 20, 12, 0, 0, 0, berlin).UTC(), d.Freshness[0].LastSampleAt.UTC(), "garmin's newest sample is today's again")
	far, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: "steps", From: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2099, 12, 1, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay})
	require.NoError(t, err)
	assert.Empty(t, far.Points, "the far-future steps are gone")

	// A push after the deletion, inside its range, and the old far-future
	// delivery once more: both later in the log than the deletion; the
	// second is a copy of an applied event.
	s.Push(t, user, ingest.Batch{Source: watch, Samples: []ingest.Sample{projectiontest.Sample("steps", at(20, 9, 0), at(20, 10, 0), 900, "count")}})
	redelivered := s.Append(t, eventstore.Event{ID: wrongID, Type: ingest.EventPushed, UserID: user, Payload: wrongClock})
	require.NoError(t, (&engine.Consistency{Pool: s.Pool}).WaitFor(ctx, eventstore.Token{redelivered}, metrics.Name))
	d, err = r.Dashboard(ctx, user, eventstore.Token{redelivered})
	require.NoError(t, err)
	require.NotNil(t, d.Steps)
	assert.Equal(t, 2900.0, d.Steps.Value, "the 09:00 sample pushed after the deletion counts")
	far, err = r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: "steps", From: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2099, 12, 1, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay})
	require.NoError(t, err)
	assert.Empty(t, far.Points, "a redelivered copy of an applied push is skipped: the deletion holds")
}
