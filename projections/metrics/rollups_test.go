package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// busyDayLog is one user's log for a day with many samples: heart rate
// every minute from a watch, steps from a phone and a watch, energy in kJ
// (non-integer kcal), then corrections of single samples (including the
// day's highest and lowest heart rate), redeliveries, a sample whose
// corrected offset moves it to the next day, a day whose only sample moves
// away, and a phone correction after which the watch has the larger step
// total.
func busyDayLog(t *testing.T, user uuid.UUID) []eventstore.Stored {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var log []eventstore.Stored
	add := func(typ string, payload any) {
		body, err := json.Marshal(payload)
		require.NoError(t, err)
		log = append(log, eventstore.Stored{Event: eventstore.Event{ID: uuid.New(), Type: typ, UserID: user, Payload: body, SchemaVersion: 1},
			Position: eventstore.Position{Partition: 0, Offset: int64(len(log))}})
	}
	pushBatch := func(src ingest.Source, samples ...ingest.Sample) {
		b := ingest.Batch{Source: src, Samples: samples}
		require.NoError(t, b.Validate(false, time.Time{}), "test batch invalid")
		add(ingest.EventPushed, ingest.Pushed{Channel: "app", ReceivedAt: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Batch: b})
	}
	add(identity.EventRegistered, identity.Registered{Email: "busy@example.com", Timezone: "Europe/Berlin", RegisteredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})

	watch, phone := ingest.Source{Provider: "garmin", Device: "fenix"}, ingest.Source{Provider: "apple_health", Device: "iphone"}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.FixedZone("", 3600))
	at := func(min int) string { return day.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }
	hr := func(min int, v float64) ingest.Sample {
		return projectiontest.Sample("heart_rate", at(min), at(min), v, "bpm")
	}
	steps := func(min int, v float64) ingest.Sample {
		return projectiontest.Sample("steps", at(min), at(min+5), v, "count")
	}
	energy := func(min int, v float64) ingest.Sample {
		return projectiontest.Sample("active_energy", at(min), at(min+5), v, "kJ")
	}

	// The day fills up in small pushes; the phone counts more steps.
	for min := 0; min < 1400; {
		var w, p []ingest.Sample
		for i := 0; i < 1+rng.IntN(12) && min < 1400; i, min = i+1, min+1 {
			w = append(w, hr(min, float64(60+rng.IntN(60))))
			if min%5 == 0 {
				w = append(w, steps(min, float64(rng.IntN(100))), energy(min, float64(rng.IntN(50))+0.3))
				p = append(p, steps(min, float64(100+rng.IntN(100))))
			}
		}
		pushBatch(watch, w...)
		if len(p) > 0 {
			pushBatch(phone, p...)
		}
	}
	// The day's extremes are corrected away, other samples corrected,
	// some pushes delivered again.
	pushBatch(watch, hr(10, 200), hr(11, 30))
	pushBatch(watch, hr(10, 90), hr(11, 91), hr(12, 92))
	pushBatch(watch, steps(100, 12), energy(100, 7.7))
	pushBatch(watch, hr(500, 75), steps(500, 99))
	pushBatch(watch, hr(500, 75), steps(500, 99))
	// A corrected offset moves the last phone sample and a heart rate
	// sample to the next local day (same instants).
	next := time.FixedZone("", 2*3600)
	lastPhone := day.Add(1395 * time.Minute)
	pushBatch(phone, projectiontest.Sample("steps", lastPhone.In(next).Format(time.RFC3339), lastPhone.Add(5*time.Minute).In(next).Format(time.RFC3339), 150, "count"))
	pushBatch(watch, projectiontest.Sample("heart_rate", day.Add(1399*time.Minute).In(next).Format(time.RFC3339), day.Add(1399*time.Minute).In(next).Format(time.RFC3339), 70, "bpm"))
	// A day whose only sample moves away entirely.
	lone := time.Date(2026, 11, 18, 23, 30, 0, 0, time.FixedZone("", 3600))
	pushBatch(watch, projectiontest.Sample("spo2", lone.Format(time.RFC3339), lone.Format(time.RFC3339), 97, "%"))
	pushBatch(watch, projectiontest.Sample("spo2", lone.In(next).Format(time.RFC3339), lone.In(next).Format(time.RFC3339), 97, "%"))
	// The phone's steps are corrected to a fraction: the watch wins now.
	var corrected []ingest.Sample
	for min := 0; min < 1395; min += 5 {
		corrected = append(corrected, steps(min, 1))
	}
	pushBatch(phone, corrected...)
	return log
}

// applyBatches applies log to generation gen in batches of the given sizes
// (cycled), each in its own transaction as the runtime does.
func applyBatches(t *testing.T, pool *pgxpool.Pool, m *metrics.Projector, log []eventstore.Stored, sizes ...int) {
	t.Helper()
	ctx := context.Background()
	for i, k := 0, 0; i < len(log); k++ {
		j := min(i+sizes[k%len(sizes)], len(log))
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return m.Apply(ctx, tx, log[i:j]) })
		require.NoError(t, err, "apply events %d..%d", i, j-1)
		i = j
	}
}

// tableDigest is the md5 of a table's rows as text in a fixed order.
func tableDigest(t *testing.T, pool *pgxpool.Pool, table string) string {
	t.Helper()
	var sum string
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')), count(*) FROM `+table+` x`).Scan(&sum, &n))
	return fmt.Sprintf("%s (%d rows)", sum, n)
}

// TestABusyDayUpdatedInSmallBatchesHasTheRollupsOfOneCleanRebuild: rollups
// kept by difference (corrections, redeliveries, replays of batches already
// applied, a sample moving to another day, a source that stops being the
// winner) are byte-identical to a clean rebuild that sees the whole log in
// one batch, and every source aggregate equals one computed from scratch.
func TestABusyDayUpdatedInSmallBatchesHasTheRollupsOfOneCleanRebuild(t *testing.T) {
	pool, _ := testbackend.Store(t, 8)
	ctx := context.Background()
	user := uuid.New()
	log := busyDayLog(t, user)

	live := &metrics.Projector{}
	// The corrections (the last ten events) one per batch, so each meets
	// the state the one before left.
	applyBatches(t, pool, live, log[:len(log)-10], 1, 3, 2, 7, 1, 5)
	applyBatches(t, pool, live, log[len(log)-10:], 1)
	// A rewind: an earlier stretch of the log applied again, as after a
	// crash or a consumer rewind, in other batch sizes.
	applyBatches(t, pool, live, log[len(log)/3:], 4, 1, 9)
	applyBatches(t, pool, live, log[len(log)-5:], 1)

	gen, err := (&engine.Versions{Pool: pool}).Create(ctx, live)
	require.NoError(t, err)
	clean := &metrics.Projector{Gen: gen}
	applyBatches(t, pool, clean, log, len(log))

	for _, base := range live.Tables() {
		a, b := tableDigest(t, pool, base+"_g1"), tableDigest(t, pool, fmt.Sprintf("%s_g%d", base, gen))
		assert.Equal(t, b, a, "%s: small batches (actual) against a clean rebuild (expected)", base)
	}

	// The source aggregates are what the samples say.
	var wrong int
	require.NoError(t, pool.QueryRow(ctx, `WITH fresh AS (
			SELECT user_id, type, local_date, source, sum(round(value * 1e9::float8)::bigint) AS total_nano, count(*)::int AS count,
				min(value) + 0::float8 AS min, max(value) + 0::float8 AS max, min(day_start) AS day_start, min(day_end) AS day_end, min(day_offset) AS day_offset, min(unit) AS unit
			FROM samples_g1 GROUP BY 1, 2, 3, 4)
		SELECT count(*) FROM ((SELECT * FROM fresh EXCEPT SELECT * FROM daily_source_rollups_g1) UNION ALL (SELECT * FROM daily_source_rollups_g1 EXCEPT SELECT * FROM fresh)) x`).Scan(&wrong))
	assert.Zero(t, wrong, "source aggregates that differ from the samples")

	r := &metrics.Reader{Pool: pool, Partitions: 1}
	series, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: "steps", From: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay})
	require.NoError(t, err)
	if assert.Len(t, series.Points, 2, "steps days = %+v", series.Points) {
		assert.Equal(t, "garmin/fenix", series.Points[0].Source, "2026-11-20 counts the watch (the phone was corrected down)")
		assert.Equal(t, "apple_health/iphone", series.Points[1].Source, "2026-11-21 has the moved phone sample alone")
		assert.Equal(t, 150.0, series.Points[1].Value, "2026-11-21 has the moved phone sample alone")
	}
	hr, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: "heart_rate", From: time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay})
	require.NoError(t, err)
	if assert.Len(t, hr.Points, 2, "heart rate days = %+v", hr.Points) {
		assert.Equal(t, 1399, hr.Points[0].Count, "heart rate samples on 2026-11-20")
		assert.NotEqual(t, 200.0, hr.Points[0].Max, "the corrected highest heart rate still counts on 2026-11-20")
		assert.NotEqual(t, 30.0, hr.Points[0].Min, "the corrected lowest heart rate still counts on 2026-11-20")
		assert.Equal(t, 1, hr.Points[1].Count, "heart rate samples on 2026-11-21 (the moved one)")
	}
	spo2, err := r.Metrics(ctx, metrics.MetricQuery{UserID: user, Type: "spo2", From: time.Date(2026, 11, 17, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay})
	require.NoError(t, err)
	if assert.Len(t, spo2.Points, 1, "SpO2 days = %+v; want only 2026-11-19 (the sample left 2026-11-18)", spo2.Points) {
		assert.Equal(t, "2026-11-19", spo2.Points[0].Start.Format("2006-01-02"), "SpO2 day (the sample left 2026-11-18)")
	}
}

// TestGoAndPostgreSQLTurnValuesIntoTheSameNanoUnits: the projector adds and
// subtracts sums computed in Go; a recompute (and migration 00006) computes
// them in SQL. Both must agree on every value, including halfway cases and
// converted units.
func TestGoAndPostgreSQLTurnValuesIntoTheSameNanoUnits(t *testing.T) {
	pool, _ := testbackend.Store(t, 2)
	rng := rand.New(rand.NewPCG(3, 4))
	values := []float64{0, 0.5e-9, 1.5e-9, 2.5e-9, -2.5e-9, 100.0 / 4.184, 418.4 / 4.184, 150 * 0.45359237, 1609.344 * 3.3, 499999.999999999, 0.1 + 0.2}
	for range 2000 {
		values = append(values, float64(rng.IntN(1_000_000_000_000))/1e9*float64(1+rng.IntN(500)), float64(rng.IntN(200_000))/4.184)
	}
	var got []int64
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT array_agg(round(v * 1e9::float8)::bigint ORDER BY i) FROM unnest($1::float8[]) WITH ORDINALITY AS x(v, i)`, values).Scan(&got))
	require.Len(t, got, len(values))
	for i, v := range values {
		want, ok := metrics.NanoUnits(v)
		if assert.True(t, ok, "%v: Go has no nano units for it", v) {
			assert.Equal(t, want, got[i], "%v: PostgreSQL (actual) against Go (expected)", v)
		}
	}
}
