package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/adapters/providers/oura/ouratest"
	"github.com/biosync/biosync/projections/catalog"
)

// TestErasureLeavesNoCanaryAnywhere is the erasure proof of issue 4: a user
// whose every free-text field carries a unique canary string asks for
// erasure; after the grace period the workflow destroys the key and purges;
// then every projection is rebuilt from the whole log. No canary may be
// left in PostgreSQL (any table, any schema), Redis (keys and values), the
// Kafka log (keys, headers, values) or an export, and another user's read
// models must be unchanged.
func TestErasureLeavesNoCanaryAnywhere(t *testing.T) {
	env := backendEnv(t)
	env["BIOSYNC_ERASURE_GRACE_PERIOD"] = "1500ms"
	env["BIOSYNC_ERASURE_REPURGE_AFTER"] = "1s"
	newInbox(t, env)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	canary := "cnry" + hex.EncodeToString(rnd[:])
	// An Oura account whose id and records carry the canary: the provider
	// user id (command side), the tokens (sealed) and the fetched records
	// (provider.record_fetched) must all go with the erasure.
	fake := ouratest.Start(ouraClientID, ouraClientSecret)
	defer fake.Close()
	ouraUser := "oura-" + canary
	fake.AddUser(ouraUser)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	fake.AddDocument(ouraUser, "daily_activity", []byte(`{"id":"act-`+canary+`","day":"`+yesterday+`","timestamp":"`+yesterday+`T04:00:00+00:00","steps":4321,"active_calories":210}`))
	for k, v := range map[string]string{"BIOSYNC_OURA_CLIENT_ID": ouraClientID, "BIOSYNC_OURA_CLIENT_SECRET": ouraClientSecret,
		"BIOSYNC_OURA_AUTH_URL": fake.AuthURL(), "BIOSYNC_OURA_TOKEN_URL": fake.TokenURL(), "BIOSYNC_OURA_API_URL": fake.APIURL()} {
		env[k] = v
	}
	s := startServer(t, env)
	defer s.stop()
	ctx := context.Background()
	getenv := func(k string) string { return env[k] }
	const password = "correct horse battery"

	// The canary user: the canary in the address, the source, the device,
	// the delivery ids, the Idempotency-Keys (a stored registration holds
	// the address, a stored deletion the source), the request id, and a
	// journal entry's tag name and note.
	victim := &client{t: t, base: s.url}
	email := canary + "@example.com"
	code, _, reg := victim.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": password, "timezone": "Europe/Lisbon"},
		map[string]string{"X-Request-Id": "req-" + canary, "Idempotency-Key": "reg-" + canary})
	require.Equal(t, 201, code, "register: %v", reg)
	victimID := reg["id"].(string)
	_, _, login := victim.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	victim.token = login["access_token"].(string)
	batch := func(user, provider, device string) []byte {
		prefix := ""
		if user != "" {
			prefix = `"user_id":"` + user + `",`
		}
		return []byte(`{` + prefix + `"source":{"provider":"` + provider + `","device":"` + device + `"},"samples":[` +
			`{"type":"heart_rate","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:00:00Z","value":61,"unit":"bpm"},` +
			`{"type":"steps","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:15:00Z","value":900,"unit":"count"}],` +
			`"sleep_sessions":[{"start":"2026-11-19T23:00:00Z","end":"2026-11-20T06:30:00Z","stages":[{"stage":"deep","start":"2026-11-19T23:00:00Z","end":"2026-11-20T00:30:00Z"}]}]}`)
	}
	code, _, p := signedPush(t, victim, "msg-"+canary, batch(victimID, "prov-"+canary, "dev-"+canary))
	require.Equal(t, 202, code, "webhook push: %v", p)
	code, ph, p := victim.do("POST", "/v1/me/samples", batch("", "app-"+canary, "phone-"+canary),
		map[string]string{"Idempotency-Key": "idem-" + canary, "X-Request-Id": "req2-" + canary})
	require.Equal(t, 202, code, "app push: %v", p)
	// The display name, in the settings document (version 0 before any change).
	code, _, p = victim.do("PUT", "/v1/me/settings", map[string]string{"display_name": "Name " + canary, "timezone": "Europe/Lisbon", "units": "imperial"},
		map[string]string{"If-Match": `"0"`})
	require.Equal(t, 200, code, "settings: %v", p)
	// A journal entry: the canary in a tag name (plain in the read model,
	// where SQL counts tags), in the note (sealed there) and in the stored
	// answer of its Idempotency-Key.
	code, jh, p := victim.do("POST", "/v1/journal/entries", map[string]any{"date": "2026-11-19", "note": "Note " + canary,
		"tags": []map[string]any{{"name": "tag_" + canary, "amount": 2}, {"name": "alcohol_drinks"}}},
		map[string]string{"Idempotency-Key": "jrn-" + canary})
	require.Equal(t, 201, code, "journal entry: %v", p)
	code, _, p = victim.do("GET", "/v1/journal/tags", nil, map[string]string{"X-Consistency-Token": jh.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "journal tags: %v", p)
	require.Contains(t, fmt.Sprint(p["tags"]), "tag_"+canary, "the journal read model holds the tag before the erasure")
	tok := map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")}
	code, _, d := victim.do("GET", "/v1/dashboard/summary", nil, tok) // also fills the Redis cache
	require.Equal(t, 200, code, "dashboard: %v", d)
	// A deletion of the app's samples: the source in its (sealed) event
	// and in the stored answer of its Idempotency-Key.
	code, _, p = victim.do("DELETE", "/v1/me/samples?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z&source=app-"+canary, nil,
		map[string]string{"Idempotency-Key": "del-" + canary, "X-Request-Id": "req3-" + canary})
	require.Equal(t, 202, code, "deletion: %v", p)

	// The victim connects the Oura account; its history is fetched.
	code, _, auth := victim.do("POST", "/v1/connections/oura", nil, nil)
	require.Equal(t, 201, code, "connect Oura: %v", auth)
	callback, err := ouratest.Consent(auth["authorize_url"].(string))
	require.NoError(t, err)
	res, err := noRedirect.Get(callback)
	require.NoError(t, err)
	res.Body.Close()
	require.Contains(t, res.Header.Get("Location"), "status=connected")
	require.Eventually(t, func() bool {
		_, _, list := victim.do("GET", "/v1/connections", nil, nil)
		raw, _ := json.Marshal(list)
		return strings.Contains(string(raw), `"status":"connected"`) && strings.Contains(string(raw), `"last_data_at"`)
	}, 30*time.Second, 100*time.Millisecond, "the Oura backfill never finished")

	// Another user, whose read models must not change.
	other := &client{t: t, base: s.url}
	otherEmail := fmt.Sprintf("bystander-%d@example.com", time.Now().UnixNano())
	_, _, oreg := other.do("POST", "/v1/auth/register", map[string]string{"email": otherEmail, "password": password, "timezone": "Asia/Tokyo"}, nil)
	otherID := oreg["id"].(string)
	_, oh, _ := signedPush(t, other, "msg-bystander-"+otherID, batch(otherID, "oura", "ring"))
	_, _, ologin := other.do("POST", "/v1/auth/login", map[string]string{"email": otherEmail, "password": password}, nil)
	other.token = ologin["access_token"].(string)
	code, _, _ = other.do("GET", "/v1/dashboard/summary", nil, map[string]string{"X-Consistency-Token": oh.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "bystander's dashboard")
	// The settings projector holds rows of the bystander too: the snapshot
	// below must not be taken before it has caught up with them.
	for _, path := range []string{"/v1/me/settings", "/v1/me/notification-preferences"} {
		code, h, _ := other.do("GET", path, nil, map[string]string{"X-Consistency-Token": oh.Get("X-Consistency-Token")})
		require.Equal(t, 200, code, "bystander's %s", path)
		require.Equal(t, "reached", h.Get("Consistency"), "bystander's %s", path)
	}

	pool, err := postgres.Open(ctx, env["BIOSYNC_DATABASE_URL"], 4)
	require.NoError(t, err)
	defer pool.Close()
	before := userChecksums(t, pool, otherID)
	assert.Contains(t, fmt.Sprint(canariesInPostgres(t, pool, canary)), "provider_connections", "the Oura account id is there before the erasure")
	require.GreaterOrEqual(t, len(before), 4, "the bystander has rows in too few read models: %v", before)

	// Re-authentication is required; then the request waits out the grace period.
	code, _, p = victim.do("POST", "/v1/me/deletion-requests", map[string]string{"password": "not my password"}, nil)
	require.Equal(t, 422, code, "erasure with a wrong password: %v", p)
	require.Contains(t, fmt.Sprint(p["errors"]), "/password", "erasure with a wrong password must be refused naming /password")
	code, _, req := victim.do("POST", "/v1/me/deletion-requests", map[string]string{"password": password}, nil)
	require.Equal(t, 202, code, "erasure request: %v", req)
	require.Equal(t, "scheduled", req["status"], "erasure request: %v", req)
	code, _, _ = victim.do("POST", "/v1/me/deletion-requests", map[string]string{"password": password}, nil)
	assert.Equal(t, 409, code, "a second open request")
	code, _, _ = other.do("GET", "/v1/me/deletion-requests/"+req["id"].(string), nil, nil)
	assert.Equal(t, 404, code, "another user reading the request")
	code, _, st := victim.do("GET", "/v1/me/deletion-requests/"+req["id"].(string), nil, nil)
	assert.Equal(t, 200, code, "during the grace period the request reads %v", st)
	assert.Equal(t, "scheduled", st["status"], "during the grace period the request reads %v", st)
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
	// Every session ended with the erasure: the old access token is refused.
	code, _, _ = victim.do("GET", "/v1/me/deletion-requests/"+req["id"].(string), nil, nil)
	assert.Equal(t, 401, code, "the erased user's access token still works")
	code, _, _ = victim.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
	assert.Equal(t, 401, code, "login after erasure")
	code, _, _ = signedPush(t, victim, "msg-late-"+canary, batch(victimID, "late", "late"))
	assert.Equal(t, 422, code, "a push for the erased user (no such user)")

	// Replay the whole log into fresh projections.
	for _, name := range catalog.Names {
		var out bytes.Buffer
		err := run(ctx, []string{"projections", "rebuild", name}, getenv, &out, &bytes.Buffer{})
		require.NoError(t, err, "rebuild %s:\n%s", name, out.String())
	}

	assert.Empty(t, canariesInPostgres(t, pool, canary), "canary found in PostgreSQL")
	assert.Empty(t, canariesInRedis(t, env["BIOSYNC_REDIS_URL"], canary), "canary found in Redis")
	assert.Zero(t, canariesInKafka(t, env, canary), "Kafka records with the canary")
	var export bytes.Buffer
	require.NoError(t, run(ctx, []string{"events", "export", "--user", victimID}, getenv, &export, &bytes.Buffer{}), "events export")
	// The export of the erased user must hold tombstones only.
	assert.NotContains(t, export.String(), canary, "the export of the erased user")
	assert.Contains(t, export.String(), `"erased":true`, "the export of the erased user")
	after := userChecksums(t, pool, otherID)
	assert.Equal(t, before, after, "the bystander's read models changed")
}

var generationSuffix = regexp.MustCompile(`_g[0-9]+$`)

// userChecksums fingerprints a user's rows in every live projection table
// (by base name, so a rebuilt generation compares with the old one).
func userChecksums(t *testing.T, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}, user string) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT v.name || '_g' || v.generation FROM projection_versions v WHERE v.state = 'live'`)
	require.NoError(t, err)
	live, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]string{}
	for _, gen := range live {
		name, g, _ := strings.Cut(gen, "_g")
		p, err := catalog.Catalog{}.New(name, 1)
		require.NoError(t, err, "projection %s", name)
		for _, base := range p.Tables() {
			table := base + "_g" + g
			var sum *string
			err := pool.QueryRow(ctx, `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM `+pgx.Identifier{table}.Sanitize()+` t WHERE user_id = $1`, user).Scan(&sum)
			require.NoError(t, err, table)
			if sum != nil {
				out[generationSuffix.ReplaceAllString(table, "")] = *sum
			}
		}
	}
	return out
}

// canariesInPostgres lists every table (any schema) with a row containing canary.
func canariesInPostgres(t *testing.T, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}, canary string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	require.NoError(t, err)
	type tbl struct{ schema, name string }
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tbl, error) {
		var x tbl
		return x, r.Scan(&x.schema, &x.name)
	})
	require.NoError(t, err)
	var found []string
	for _, x := range tables {
		var n int
		id := pgx.Identifier{x.schema, x.name}.Sanitize()
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+id+` t WHERE t::text ILIKE '%' || $1 || '%'`, canary).Scan(&n), id)
		if n > 0 {
			found = append(found, fmt.Sprintf("%s (%d rows)", id, n))
		}
	}
	return found
}

// canariesInRedis lists every key whose name or value contains canary.
func canariesInRedis(t *testing.T, url, canary string) []string {
	t.Helper()
	ctx := context.Background()
	opt, err := goredis.ParseURL(url)
	require.NoError(t, err)
	c := goredis.NewClient(opt)
	defer c.Close()
	var found []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var val string
		switch c.Type(ctx, key).Val() {
		case "string":
			val = c.Get(ctx, key).Val()
		case "hash":
			val = fmt.Sprint(c.HGetAll(ctx, key).Val())
		case "list":
			val = fmt.Sprint(c.LRange(ctx, key, 0, -1).Val())
		case "set":
			val = fmt.Sprint(c.SMembers(ctx, key).Val())
		case "zset":
			val = fmt.Sprint(c.ZRange(ctx, key, 0, -1).Val())
		}
		if strings.Contains(strings.ToLower(key+val), canary) {
			found = append(found, key)
		}
	}
	require.NoError(t, iter.Err(), "scanning Redis")
	return found
}

// canariesInKafka counts raw records (key, headers, value) containing canary.
func canariesInKafka(t *testing.T, env map[string]string, canary string) int {
	t.Helper()
	ctx := context.Background()
	kcfg := kafka.Config{Brokers: strings.Split(env["BIOSYNC_KAFKA_BROKERS"], ","), Topic: env["BIOSYNC_KAFKA_TOPIC"], Partitions: 4}
	log, err := kafka.NewLog(kcfg)
	require.NoError(t, err)
	defer log.Close()
	found, seen := 0, 0
	for p := int32(0); p < 4; p++ {
		hw, err := log.HighWater(ctx, p)
		require.NoError(t, err, "high water of partition %d", p)
		offsets := make([]int64, hw)
		for i := range offsets {
			offsets[i] = int64(i)
		}
		if len(offsets) == 0 {
			continue
		}
		recs, err := log.Fetch(ctx, p, offsets)
		require.NoError(t, err, "fetching partition %d", p)
		for _, r := range recs {
			seen++
			raw := append(append([]byte{}, r.Key...), r.Value...)
			for _, h := range r.Headers {
				raw = append(append(raw, h.Key...), h.Value...)
			}
			if bytes.Contains(bytes.ToLower(raw), []byte(canary)) {
				found++
			}
		}
	}
	require.GreaterOrEqual(t, seen, 5, "records read from the log; the scan did not see the events")
	return found
}
