package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/projections/catalog"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// TestAsOfBuildsTheProjectionAsItWasIntoItsOwnSchema: events before the
// point in time are in the analysis schema, later ones are not, and the
// live read models are not touched.
func TestAsOfBuildsTheProjectionAsItWasIntoItsOwnSchema(t *testing.T) {
	brokers := testbackend.Kafka(t)
	s := projectiontest.New(t, brokers)
	ctx := context.Background()
	user := uuid.New()
	s.Register(t, user, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := 0; i < 3; i++ {
		s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{
			projectiontest.Sample("steps", time.Date(2026, 11, 20, i, 0, 0, 0, time.UTC).Format(time.RFC3339), time.Date(2026, 11, 20, i, 30, 0, 0, time.UTC).Format(time.RFC3339), 100, "count"),
		}})
	}
	time.Sleep(100 * time.Millisecond)
	mark := time.Now()
	time.Sleep(100 * time.Millisecond)
	s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{
		projectiontest.Sample("steps", "2026-11-20T05:00:00Z", "2026-11-20T05:30:00Z", 100, "count"),
	}})

	log, err := kafka.NewLog(s.Cfg)
	require.NoError(t, err)
	defer log.Close()
	dsn := s.Pool.Config().ConnString()
	build := engine.AsOf{DSN: dsn, Log: log, Codec: s.Codec, Catalog: catalog.Catalog{}}
	require.NoError(t, build.Build(ctx, metrics.Name, "asof_test", mark, nil))
	var inSchema, live int
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM asof_test.samples_g1`).Scan(&inSchema)
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM public.samples_g1`).Scan(&live)
	assert.Equal(t, 3, inSchema, "samples in the as-of schema: the 3 before the mark")
	assert.Equal(t, 0, live, "samples in the live tables: untouched")
	var total float64
	_ = s.Pool.QueryRow(ctx, `SELECT value FROM asof_test.daily_rollups_g1 WHERE user_id = $1`, user).Scan(&total)
	assert.Equal(t, 300.0, total, "as-of day total")
	assert.Error(t, build.Build(ctx, metrics.Name, "asof_test", mark, nil), "building into an existing schema must be refused")
	assert.Error(t, build.Build(ctx, metrics.Name, "public", mark, nil), "building into public must be refused")
}
