package metrics_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// TestRebuildWithANewDerivationVersionSwitchesReadsAtomically: bump the
// version of a derivation, rebuild into a new generation beside the live
// one, and the new values appear (with the new version) only at the switch;
// the old generation stays readable and rollback returns to it.
func TestRebuildWithANewDerivationVersionSwitchesReadsAtomically(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	versions := &engine.Versions{Pool: s.Pool, CacheFor: time.Nanosecond}
	reader := &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions, Versions: versions}
	user := uuid.New()
	s.Register(t, user, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-20T08:00:00Z", "2026-11-20T09:00:00Z", 1000, "count"),
	}})
	live := &metrics.Projector{Gen: 1}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = s.Runtime(live, 100).Run(runCtx) }()
	s.WaitCaughtUp(t, live)

	steps := func() (float64, int) {
		t.Helper()
		q := metrics.MetricQuery{UserID: user, Type: "steps", From: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketDay}
		series, err := reader.Metrics(ctx, q)
		require.NoError(t, err)
		require.Len(t, series.Points, 1, "steps = %+v", series)
		gen, _ := versions.Live(ctx, metrics.Name)
		var v int
		require.NoError(t, s.Pool.QueryRow(ctx, "SELECT norm_version FROM samples_g"+itoa(gen)+" WHERE user_id = $1", user).Scan(&v))
		return series.Points[0].Value, v
	}
	readsSteps := func(when string, want float64, wantVersion int) {
		t.Helper()
		v, ver := steps()
		assert.Equal(t, want, v, "%s: steps", when)
		assert.Equal(t, wantVersion, ver, "%s: derivation version", when)
	}
	readsSteps("before the rebuild", 1000, 1)

	gen, err := versions.Create(ctx, live)
	require.NoError(t, err, "create generation")
	require.Equal(t, 2, gen, "created generation")
	v2 := metrics.Derivation{Version: 2, Normalize: func(b ingest.Batch) ([]ingest.Point, []ingest.Night, int) {
		points, nights, skipped := ingest.Normalize(b)
		for i := range points {
			points[i].Value *= 2 // the "fixed" derivation of this test
		}
		return points, nights, skipped
	}}
	next := &metrics.Projector{Gen: 2, Derivation: v2}
	go func() { _ = s.Runtime(next, 100).Run(runCtx) }()
	s.WaitCaughtUp(t, next)
	readsSteps("while the new generation is building, reads stay on the old one", 1000, 1)
	require.NoError(t, versions.Promote(ctx, metrics.Name, 2))
	readsSteps("after the switch", 2000, 2)
	back, err := versions.Rollback(ctx, metrics.Name)
	require.NoError(t, err, "rollback")
	assert.Equal(t, 1, back, "rollback returns to generation")
	readsSteps("after rollback", 1000, 1)
	assert.Error(t, versions.Drop(ctx, live), "dropping the live generation must be refused")
	require.NoError(t, versions.Drop(ctx, next), "drop the standby generation")
	var n int
	_ = s.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%_g2'").Scan(&n)
	assert.Zero(t, n, "tables of the dropped generation remain")
}

func itoa(i int) string { return strconv.Itoa(i) }
