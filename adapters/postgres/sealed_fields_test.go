package postgres_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
	"github.com/biosync/biosync/projections/engine"
	settingsrm "github.com/biosync/biosync/projections/settings"
	"github.com/biosync/biosync/projections/users"
)

// TestMigration17ProjectsPlainProfilesAgainSealed: a database whose users
// and settings read models hold an address and a display name in plain
// text (projected before 00017), with an analyst's as-of copy beside them.
// After the migration no plaintext column is left, the two read models'
// checkpoints start again (the metrics one stays), and their projectors
// fill them again from the log, sealed, answering the same profile.
func TestMigration17ProjectsPlainProfilesAgainSealed(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	pool, err := postgres.Open(ctx, dsn, 8)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"))
	require.NoError(t, err)
	_, err = provider.UpTo(ctx, 15)
	require.NoError(t, err)

	mk, err := eventstore.ParseMasterKeys(testbackend.MasterKey)
	require.NoError(t, err)
	keys, err := eventstore.NewKeyring(postgres.NewKeyStore(pool), mk)
	require.NoError(t, err)
	codec := eventstore.NewCodec(keys)
	log := memstore.New(codec, 4)
	ada := uuid.New()
	const address, name = "ada.m17@example.com", "Ada Before Sealing"
	registeredAt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	appendEvent := func(typ string, payload any) eventstore.Position {
		body, err := json.Marshal(payload)
		require.NoError(t, err)
		pos, err := log.Append(ctx, eventstore.Event{ID: uuid.New(), Type: typ, SchemaVersion: 1, UserID: ada, OccurredAt: registeredAt, RecordedAt: registeredAt, Payload: body})
		require.NoError(t, err)
		return pos
	}
	appendEvent(identity.EventRegistered, identity.Registered{Email: address, Timezone: "Europe/London", RegisteredAt: registeredAt})
	last := appendEvent(settings.EventProfileChanged, settings.ProfileChanged{Profile: settings.Profile{DisplayName: name, Timezone: "Europe/London", Units: metric.Imperial}, Version: 1})

	// The read models as the projectors wrote them before 00017.
	_, err = pool.Exec(ctx, `INSERT INTO users_g1 (user_id, email, timezone, created_at, log_offset) VALUES ($1, $2, 'Europe/London', $3, $4)`, ada, address, registeredAt, last.Offset)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO settings_g1 (user_id, display_name, timezone, units, version, log_offset) VALUES ($1, $2, 'Europe/London', 'imperial', 1, $3)`, ada, name, last.Offset)
	require.NoError(t, err)
	for _, projector := range []string{"users", "settings", "metrics"} {
		_, err = pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, generation, partition, next_offset) VALUES ($1, 1, $2, $3)`, projector, last.Partition, last.Offset+1)
		require.NoError(t, err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO projection_dead_letters (name, generation, partition, log_offset, user_id, event_id, event_type, state, error)
		VALUES ('users', 1, $1, $2, $3, $4, $5, 'failed', 'an earlier fault')`, last.Partition, last.Offset, ada, uuid.New(), settings.EventProfileChanged)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `CREATE SCHEMA analysis_m17; CREATE TABLE analysis_m17.users_g1 (LIKE users_g1 INCLUDING ALL);
		INSERT INTO analysis_m17.users_g1 SELECT * FROM users_g1`)
	require.NoError(t, err)

	_, err = provider.Up(ctx)
	require.NoError(t, err)

	columns := func(schema, table string) []string {
		rows, err := pool.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, schema, table)
		require.NoError(t, err)
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return cols
	}
	assert.NotContains(t, columns("public", "users_g1"), "email", "users_g1 kept the plaintext column")
	assert.Contains(t, columns("public", "users_g1"), "email_sealed")
	assert.NotContains(t, columns("public", "settings_g1"), "display_name", "settings_g1 kept the plaintext column")
	assert.Contains(t, columns("public", "settings_g1"), "display_name_sealed")
	assert.NotContains(t, columns("analysis_m17", "users_g1"), "email", "the as-of copy kept the plaintext column")
	var asOfRows, checkpoints int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM analysis_m17.users_g1`).Scan(&asOfRows))
	assert.Equal(t, 1, asOfRows, "the as-of copy lost its rows")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM projection_checkpoints WHERE name IN ('users', 'settings')`).Scan(&checkpoints))
	assert.Zero(t, checkpoints, "the users and settings checkpoints were not reset")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM projection_checkpoints WHERE name = 'metrics'`).Scan(&checkpoints))
	assert.Equal(t, 1, checkpoints, "the metrics checkpoint was touched")
	var deadLetters int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM projection_dead_letters`).Scan(&deadLetters))
	assert.Zero(t, deadLetters, "the users dead letters outlived the reset")

	// serve starts: the projectors fill the tables again from the log.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, p := range []engine.Projector{users.Projector{}, settingsrm.Projector{}} {
		rt := &engine.Runtime{Pool: pool, Log: log, Codec: codec, Projector: p, Tuning: engine.Tuning{BatchWait: 5 * time.Millisecond, Retry: 20 * time.Millisecond}}
		go func() { _ = rt.Run(runCtx) }()
	}
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM projection_checkpoints WHERE name IN ('users', 'settings') AND partition = $1 AND next_offset > $2`, last.Partition, last.Offset).Scan(&n)
		return err == nil && n == 2
	}, 20*time.Second, 20*time.Millisecond, "the users and settings projectors did not project the log again")
	me, err := (&users.Reader{Pool: pool, Fields: keys}).Me(ctx, ada)
	require.NoError(t, err)
	assert.Equal(t, address, me.Email)
	doc, err := (&settingsrm.Reader{Pool: pool, Fields: keys}).Profile(ctx, ada)
	require.NoError(t, err)
	assert.Equal(t, name, doc.DisplayName)
	var plain int
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users_g1 WHERE position(convert_to($1, 'UTF8') IN email_sealed) > 0)
		+ (SELECT count(*) FROM settings_g1 WHERE position(convert_to($2, 'UTF8') IN display_name_sealed) > 0)`, address, name).Scan(&plain))
	assert.Zero(t, plain, "rows projected after the migration hold plain text")
}
