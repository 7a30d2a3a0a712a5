package metrics_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
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
		if err != nil || len(series.Points) != 1 {
			t.Fatalf("steps = %+v, %v", series, err)
		}
		gen, _ := versions.Live(ctx, metrics.Name)
		var v int
		require.NoError(t, s.Pool.QueryRow(ctx, "SELECT norm_version FROM samples_g"+itoa(gen)+" WHERE user_id = $1", user).Scan(&v))
		return series.Points[0].Value, v
	}
	if v, ver := steps(); v != 1000 || ver != 1 {
		t.Fatalf("before the rebuild: %v steps at version %d", v, ver)
	}

	gen, err := versions.Create(ctx, live)
	if err != nil || gen != 2 {
		t.Fatalf("create generation = %d, %v", gen, err)
	}
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
	if v, ver := steps(); v != 1000 || ver != 1 {
		t.Fatalf("while the new generation is building, reads must stay on the old one: %v at version %d", v, ver)
	}
	require.NoError(t, versions.Promote(ctx, metrics.Name, 2))
	if v, ver := steps(); v != 2000 || ver != 2 {
		t.Fatalf("after the switch: %v steps at version %d, want 2000 at version 2", v, ver)
	}
	if back, err := versions.Rollback(ctx, metrics.Name); err != nil || back != 1 {
		t.Fatalf("rollback = %d, %v", back, err)
	}
	if v, ver := steps(); v != 1000 || ver != 1 {
		t.Fatalf("after rollback: %v at version %d", v, ver)
	}
	if err := versions.Drop(ctx, live); err == nil {
		t.Fatal("dropping the live generation must be refused")
	}
	if err := versions.Drop(ctx, next); err != nil {
		t.Fatalf("drop the standby generation: %v", err)
	}
	var n int
	_ = s.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%_g2'").Scan(&n)
	if n != 0 {
		t.Fatalf("%d tables of the dropped generation remain", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
