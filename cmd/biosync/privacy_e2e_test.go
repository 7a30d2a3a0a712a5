package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/eventstore"
	journalrm "github.com/biosync/biosync/projections/journal"
	settingsrm "github.com/biosync/biosync/projections/settings"
	"github.com/biosync/biosync/projections/users"
)

// TestNoTableHoldsAnAddressOrADisplayNameInPlainText is issue 9's proof of
// personal data at rest: a user registers with an address and sets a
// display name and writes a journal note, each carrying a unique marker,
// reads them back (GET /v1/me, GET /v1/me/settings, the journal entry) and has a verification mail re-sent to the address;
// the users, settings and journal read models are rebuilt from the log. Then no
// column of any table in any schema (text, JSON and bytea alike) holds
// either marker in plain text, nor does any Redis key or value (the
// registration's answer is stored for its Idempotency-Key). After the
// user's erasure the sealed values that were stored cannot be opened any
// more, with the server's own master key.
func TestNoTableHoldsAnAddressOrADisplayNameInPlainText(t *testing.T) {
	env := backendEnv(t)
	env["BIOSYNC_ERASURE_GRACE_PERIOD"] = "1500ms"
	env["BIOSYNC_ERASURE_REPURGE_AFTER"] = "1s"
	box := newInbox(t, env)
	s := startServer(t, env)
	defer s.stop()
	ctx := context.Background()
	getenv := func(k string) string { return env[k] }
	pool, err := postgres.Open(ctx, env["BIOSYNC_DATABASE_URL"], 4)
	require.NoError(t, err)
	defer pool.Close()
	theScanSeesTextAndBytea(t, pool)

	addressMarker, nameMarker, noteMarker := marker(), marker(), marker()
	email := "ada-" + addressMarker + "@example.com"
	name := "Ada " + nameMarker
	const password = "correct horse battery"
	c := &client{t: t, base: s.url}
	code, h, reg := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": password, "timezone": "Atlantic/Azores"},
		map[string]string{"Idempotency-Key": "registration-" + addressMarker[:8]}) // a stored answer holds the address

	require.Equal(t, 201, code, "register: %v", reg)
	assert.Equal(t, email, reg["email"], "the registration's answer")
	userID := uuid.MustParse(reg["id"].(string))
	box.waitFor(email, 1) // the verification mail
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	c.token = login["access_token"].(string)
	code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "GET /v1/me: %v", me)
	assert.Equal(t, map[string]any{"id": userID.String(), "email": email, "email_verified": false, "timezone": "Atlantic/Azores", "created_at": me["created_at"]}, me, "GET /v1/me")
	code, h, doc := c.do("PUT", "/v1/me/settings", map[string]string{"display_name": name, "timezone": "Atlantic/Azores", "units": "metric"}, map[string]string{"If-Match": `"0"`})
	require.Equal(t, 200, code, "PUT /v1/me/settings: %v", doc)
	code, _, doc = c.do("GET", "/v1/me/settings", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "GET /v1/me/settings: %v", doc)
	assert.Equal(t, name, doc["display_name"], "GET /v1/me/settings: %v", doc)
	// A journal note, with an Idempotency-Key (its stored answer holds the note).
	note := "Dinner with " + noteMarker
	code, h, entry := c.do("POST", "/v1/journal/entries", map[string]any{"date": "2026-11-19", "note": note},
		map[string]string{"Idempotency-Key": "journal-" + noteMarker[:8]})
	require.Equal(t, 201, code, "POST /v1/journal/entries: %v", entry)
	code, _, entry = c.do("GET", "/v1/journal/entries/"+entry["id"].(string), nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "GET the journal entry: %v", entry)
	assert.Equal(t, note, entry["note"], "the journal note read back")
	// The resend reads the address from the (sealed) profile.
	code, _, p := c.do("POST", "/v1/auth/verify-email/resend", nil, nil)
	require.Equal(t, 202, code, "resend the verification mail: %v", p)
	subject, _ := box.waitFor(email, 2)
	assert.Contains(t, subject, "Confirm your email", "the re-sent mail")

	for _, rm := range []string{users.Name, settingsrm.Name, journalrm.Name} {
		var out bytes.Buffer
		require.NoError(t, run(ctx, []string{"projections", "rebuild", rm}, getenv, &out, &bytes.Buffer{}), "rebuild %s:\n%s", rm, out.String())
	}
	code, _, me = c.do("GET", "/v1/me", nil, nil)
	require.Equal(t, 200, code, "GET /v1/me from the rebuilt generation: %v", me)
	assert.Equal(t, email, me["email"], "GET /v1/me from the rebuilt generation")

	assert.Empty(t, plaintextIn(t, pool, addressMarker), "columns holding the address in plain text")
	assert.Empty(t, plaintextIn(t, pool, nameMarker), "columns holding the display name in plain text")
	assert.NotEmpty(t, plaintextIn(t, pool, "Atlantic/Azores"), "the scan did not even find the user's timezone, which is kept in plain text")
	assert.Empty(t, canariesInRedis(t, env["BIOSYNC_REDIS_URL"], addressMarker), "Redis keys holding the address in plain text")
	assert.Empty(t, canariesInRedis(t, env["BIOSYNC_REDIS_URL"], nameMarker), "Redis keys holding the display name in plain text")
	assert.Empty(t, plaintextIn(t, pool, noteMarker), "columns holding the journal note in plain text")
	assert.Empty(t, canariesInRedis(t, env["BIOSYNC_REDIS_URL"], noteMarker), "Redis keys holding the journal note in plain text")

	// The sealed values as they are stored in both generations of each
	// table, then the erasure.
	type storedValue struct{ table, field string }
	sealed := map[storedValue][]byte{}
	for _, f := range []struct{ base, column, field string }{
		{"users", "email_sealed", users.EmailField},
		{"settings", "display_name_sealed", settingsrm.DisplayNameField},
		{"journal_entries", "note_sealed", journalrm.NoteField},
	} {
		rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ ('^' || $1 || '_g[0-9]+$')`, f.base)
		require.NoError(t, err)
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Len(t, tables, 2, "%s generations (the rebuilt one and the one before it)", f.base)
		for _, table := range tables {
			var v []byte
			require.NoError(t, pool.QueryRow(ctx, `SELECT `+f.column+` FROM `+table+` WHERE user_id = $1`, userID).Scan(&v), table)
			sealed[storedValue{table, f.field}] = v
		}
	}
	keys := keyring(t, pool)
	for at, v := range sealed {
		_, err := keys.OpenField(ctx, userID, at.field, v)
		require.NoError(t, err, "before the erasure the %s in %s opens", at.field, at.table)
	}

	code, _, req := c.do("POST", "/v1/me/deletion-requests", map[string]string{"password": password}, nil)
	require.Equal(t, 202, code, "erasure request: %v", req)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status string
		require.NoError(t, pool.QueryRow(ctx, `SELECT status FROM deletion_requests WHERE id = $1`, req["id"]).Scan(&status))
		if status == "completed" {
			break
		}
		require.False(t, time.Now().After(deadline), "erasure never completed: %s", status)
		time.Sleep(200 * time.Millisecond)
	}
	keys = keyring(t, pool) // a fresh instance: nothing cached
	for at, v := range sealed {
		opened, err := keys.OpenField(ctx, userID, at.field, v)
		assert.ErrorIs(t, err, eventstore.ErrErased, "after the erasure the %s stored in %s", at.field, at.table)
		assert.Nil(t, opened, "after the erasure the %s stored in %s", at.field, at.table)
	}
}

// marker is a unique lower-case string to look for.
func marker() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "pii" + hex.EncodeToString(b[:])
}

// keyring is a key ring over the database's data keys with the test
// server's master key, as another instance would build it.
func keyring(t *testing.T, pool *pgxpool.Pool) *eventstore.Keyring {
	t.Helper()
	mk, err := eventstore.ParseMasterKeys(testMaster)
	require.NoError(t, err)
	k, err := eventstore.NewKeyring(postgres.NewKeyStore(pool), mk)
	require.NoError(t, err)
	return k
}

// plaintextIn lists the columns (schema.table.column, any schema but the
// system's) in which some row holds s, ignoring case: text-like columns as
// text, bytea columns as their bytes (printable ones as they are).
func plaintextIn(t *testing.T, pool *pgxpool.Pool, s string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT c.table_schema, c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')`)
	require.NoError(t, err)
	type column struct{ schema, table, name, typ string }
	columns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.schema, &c.table, &c.name, &c.typ)
	})
	require.NoError(t, err)
	require.NotEmpty(t, columns, "no columns to scan")
	var found []string
	for _, c := range columns {
		col := pgx.Identifier{c.name}.Sanitize()
		expr := col + `::text`
		if c.typ == "bytea" {
			expr = `encode(` + col + `, 'escape')`
		}
		var n int
		q := `SELECT count(*) FROM ` + pgx.Identifier{c.schema, c.table}.Sanitize() + ` WHERE ` + expr + ` ILIKE '%' || $1 || '%'`
		require.NoError(t, pool.QueryRow(ctx, q, s).Scan(&n), q)
		if n > 0 {
			found = append(found, fmt.Sprintf("%s.%s.%s (%d rows)", c.schema, c.table, c.name, n))
		}
	}
	sort.Strings(found)
	return found
}

// theScanSeesTextAndBytea shows plaintextIn finds a value in a text and in
// a bytea column of a table in a schema of its own (dropped afterwards),
// so an empty answer means there is nothing to find.
func theScanSeesTextAndBytea(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	probe := marker()
	_, err := pool.Exec(ctx, `CREATE SCHEMA scan_probe; CREATE TABLE scan_probe.probe (words text, raw bytea)`)
	require.NoError(t, err)
	defer func() { _, _ = pool.Exec(ctx, `DROP SCHEMA scan_probe CASCADE`) }()
	_, err = pool.Exec(ctx, `INSERT INTO scan_probe.probe VALUES ('x-' || upper($1::text) || '-x', NULL), (NULL, '\x00'::bytea || convert_to($1::text, 'UTF8'))`, probe)
	require.NoError(t, err)
	assert.Equal(t, []string{"scan_probe.probe.raw (1 rows)", "scan_probe.probe.words (1 rows)"}, plaintextIn(t, pool, probe), "the scan's own check")
}
