package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// TestMigration6FillsSourceRollupsOfEveryGenerationAsTheProjectorWould:
// a database whose metrics generations were projected before migration
// 00006 gets, for each generation, the per-source aggregates and daily
// rollups the projector keeps from then on, byte for byte.
func TestMigration6FillsSourceRollupsOfEveryGenerationAsTheProjectorWould(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	require.NoError(t, postgres.Migrate(ctx, dsn))
	pool, err := postgres.Open(ctx, dsn, 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	user := uuid.New()
	var log []eventstore.Stored
	add := func(typ string, payload any) {
		body, _ := json.Marshal(payload)
		log = append(log, eventstore.Stored{Event: eventstore.Event{ID: uuid.New(), Type: typ, UserID: user, Payload: body, SchemaVersion: 1},
			Position: eventstore.Position{Offset: int64(len(log))}})
	}
	add(identity.EventRegistered, identity.Registered{Email: "m6@example.com", Timezone: "America/New_York", RegisteredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	for i := range 60 {
		at := time.Date(2026, 11, 20, 20, 0, 0, 0, time.UTC).Add(time.Duration(i) * 7 * time.Minute) // crosses local midnight
		s := func(typ, unit string, v float64) ingest.Sample {
			return ingest.Sample{Type: typ, Start: at.Format(time.RFC3339), End: at.Add(5 * time.Minute).Format(time.RFC3339), Value: v, Unit: unit}
		}
		src := ingest.Source{Provider: []string{"garmin", "oura"}[i%2]}
		add(ingest.EventPushed, ingest.Pushed{Channel: "app", ReceivedAt: at, Batch: ingest.Batch{Source: src, Samples: []ingest.Sample{
			s("steps", "count", float64(i*37%101)), s("active_energy", "kJ", float64(i%9)+0.7), s("heart_rate", "bpm", float64(50+i%40)), s("skin_temperature_deviation", "degF", float64(i%5)/3-0.5),
		}}})
	}
	versions := &engine.Versions{Pool: pool}
	gen2, err := versions.Create(ctx, &metrics.Projector{})
	require.NoError(t, err)
	for _, m := range []*metrics.Projector{{}, {Gen: gen2}} {
		for i := 0; i < len(log); i += 7 {
			require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return m.Apply(ctx, tx, log[i:min(i+7, len(log))]) }))
		}
	}
	digest := func(table string) string {
		var sum string
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')), count(*) FROM `+table+` x`).Scan(&sum, &n))
		return fmt.Sprintf("%s (%d rows)", sum, n)
	}
	want := map[string]string{}
	tables := []string{"daily_rollups_g1", "daily_source_rollups_g1", fmt.Sprintf("daily_rollups_g%d", gen2), fmt.Sprintf("daily_source_rollups_g%d", gen2)}
	for _, tb := range tables {
		want[tb] = digest(tb)
	}

	// Back to the schema before 00006, with rollups as the old
	// floating-point derivation may have left them, then up again.
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	require.NoError(t, err)
	_, err = provider.DownTo(ctx, 5)
	require.NoError(t, err)
	require.False(t, exists(t, pool, "daily_source_rollups_g1"), "down did not drop daily_source_rollups_g1")
	_, err = pool.Exec(ctx, `UPDATE daily_rollups_g1 SET value = value * (1 + 1e-15)`)
	require.NoError(t, err)
	_, err = provider.Up(ctx)
	require.NoError(t, err)
	for _, tb := range tables {
		got := digest(tb)
		assert.Equal(t, want[tb], got, "%s after migration 00006: %s, the projector made %s", tb, got, want[tb])
	}
}

func exists(t *testing.T, pool *pgxpool.Pool, table string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok))
	return ok
}
