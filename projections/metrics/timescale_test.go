package metrics_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// tableForm is what TimescaleDB makes of a table: its time dimension and
// chunk interval, its compression settings and its policies ("" when it
// is a plain table or the server has no TimescaleDB).
func tableForm(t *testing.T, pool *pgxpool.Pool, table string) string {
	t.Helper()
	ctx := context.Background()
	var present bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('timescaledb_information.dimensions') IS NOT NULL`).Scan(&present))
	if !present {
		return ""
	}
	var form string
	require.NoError(t, pool.QueryRow(ctx, `SELECT concat_ws(' | ',
		(SELECT string_agg(column_name || ' every ' || time_interval::text, ', ') FROM timescaledb_information.dimensions
			WHERE hypertable_schema = current_schema() AND hypertable_name = $1),
		(SELECT string_agg(attname || ' seg ' || coalesce(segmentby_column_index::text, '-') || ' ord ' || coalesce(orderby_column_index::text, '-'), ', ' ORDER BY attname)
			FROM timescaledb_information.compression_settings WHERE hypertable_schema = current_schema() AND hypertable_name = $1),
		(SELECT string_agg(proc_name || ' ' || (config - 'hypertable_id')::text, ', ' ORDER BY proc_name)
			FROM timescaledb_information.jobs WHERE hypertable_schema = current_schema() AND hypertable_name = $1))`, table).Scan(&form))
	return form
}

// A blue/green rebuild's new generation is the same kind of table as the
// live one: a hypertable with the same chunking, compression and policies
// under TimescaleDB (CREATE TABLE ... LIKE alone made samples_g2 a plain
// table), a plain table on PostgreSQL without it. In CI, which builds
// TimescaleDB (BIOSYNC_EXPECT_TIMESCALEDB=1), the live samples table must
// be a hypertable in the first place.
func TestARebuildsGenerationKeepsTheLiveTablesTimescaleForm(t *testing.T) {
	pool, _ := testbackend.Store(t, 4)
	ctx := context.Background()
	live := &metrics.Projector{}
	if testbackend.ExpectTimescaleDB() {
		require.NotEmpty(t, tableForm(t, pool, "samples_g1"), "TimescaleDB was built for this run, but samples_g1 is not a hypertable")
	}
	gen, err := (&engine.Versions{Pool: pool}).Create(ctx, live)
	require.NoError(t, err)
	for _, base := range live.Tables() {
		assert.Equal(t, tableForm(t, pool, base+"_g1"), tableForm(t, pool, fmt.Sprintf("%s_g%d", base, gen)), "%s: the new generation's form", base)
	}
	t.Logf("samples_g1: %q", tableForm(t, pool, "samples_g1"))
}
