package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/eventstore"
)

// An analyst exports the log of a production-style deployment (real backend
// variables, no embedded servers) with `biosync events export`.
func TestEventsExportReadsTheLogThroughTheCLI(t *testing.T) {
	pseudonymKey := []byte("the analysts' pseudonym key: 32b")
	env := map[string]string{
		"BIOSYNC_KAFKA_BROKERS":    strings.Join(testbackend.Kafka(t), ","),
		"BIOSYNC_DATABASE_URL":     testbackend.Postgres(t),
		"BIOSYNC_REDIS_URL":        testbackend.Redis(t),
		"BIOSYNC_KAFKA_TOPIC":      testbackend.UniqueName(t, "events"),
		"BIOSYNC_KAFKA_PARTITIONS": "4",
		"BIOSYNC_MASTER_KEY":       "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"BIOSYNC_JWT_KEY":          base64.StdEncoding.EncodeToString([]byte("a jwt signing key of 32+ bytes!!")),
		"BIOSYNC_PUSH_SECRET":      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"BIOSYNC_PSEUDONYM_KEY":    base64.StdEncoding.EncodeToString(pseudonymKey),
		"BIOSYNC_LOG_LEVEL":        "warn",
	}
	getenv := func(k string) string { return env[k] }

	// Write a few events through the same stack the server uses.
	ctx := context.Background()
	require.NoError(t, postgres.Migrate(ctx, env["BIOSYNC_DATABASE_URL"]))
	pool, err := postgres.Open(ctx, env["BIOSYNC_DATABASE_URL"], 4)
	require.NoError(t, err)
	defer pool.Close()
	mk, _ := eventstore.ParseMasterKeys(env["BIOSYNC_MASTER_KEY"])
	keys, err := eventstore.NewKeyring(postgres.NewKeyStore(pool), mk)
	require.NoError(t, err)
	kcfg := kafka.Config{Brokers: strings.Split(env["BIOSYNC_KAFKA_BROKERS"], ","), Topic: env["BIOSYNC_KAFKA_TOPIC"], Partitions: 4}
	require.NoError(t, kafka.EnsureTopic(kcfg))
	app := kafka.NewAppender(kcfg, eventstore.NewCodec(keys))
	defer app.Close()
	mia, noa := uuid.New(), uuid.New()
	yesterday := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	var sent []eventstore.Event
	add := func(user uuid.UUID, typ string, at time.Time, payload string) {
		t.Helper()
		e := eventstore.Event{ID: uuid.New(), Type: typ, SchemaVersion: 1, UserID: user, OccurredAt: at, RecordedAt: at, Payload: []byte(payload)}
		_, err := app.Append(ctx, e)
		require.NoError(t, err, "appending %s", typ)
		sent = append(sent, e)
	}
	add(mia, "user.registered", yesterday, `{"email":"mia.canary@example.test","timezone":"Europe/Vienna","registered_at":"2026-03-01T07:00:00Z"}`)
	add(noa, "user.registered", yesterday.Add(time.Minute), `{"email":"noa.canary@example.test","timezone":"Asia/Tokyo","registered_at":"2026-03-01T07:01:00Z"}`)
	add(mia, "samples.pushed", yesterday.Add(2*time.Hour), fmt.Sprintf(`{"channel":"app","received_at":"2026-03-01T09:00:00Z","batch":{"user_id":%q,"source":{"provider":"apple_health"},"samples":[{"type":"steps","start":"2026-03-01T08:00:00Z","end":"2026-03-01T09:00:00Z","value":2500,"unit":"count"}],"sleep_sessions":null}}`, mia))
	add(noa, "samples.pushed", yesterday.Add(3*time.Hour), fmt.Sprintf(`{"channel":"webhook","received_at":"2026-03-01T10:00:00Z","batch":{"user_id":%q,"source":{"provider":"oura"},"samples":[],"sleep_sessions":null}}`, noa))

	events := func(t *testing.T, args ...string) (stdout, stderr string) {
		t.Helper()
		var out, errs bytes.Buffer
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		err := run(rctx, append([]string{"events"}, args...), getenv, &out, &errs)
		require.NoError(t, err, "biosync events %s:\n%s", strings.Join(args, " "), errs.String())
		return out.String(), errs.String()
	}

	t.Run("one user's events as JSON Lines on stdout", func(t *testing.T) {
		out, errs := events(t, "export", "--user", mia.String())
		var got []string
		for _, raw := range strings.Split(strings.TrimSpace(out), "\n") {
			var l struct {
				EventID string          `json:"event_id"`
				UserID  string          `json:"user_id"`
				Payload json.RawMessage `json:"payload"`
			}
			require.NoError(t, json.Unmarshal([]byte(raw), &l), "not a JSON line: %q", raw)
			assert.Equal(t, mia.String(), l.UserID, "line %s: user", l.EventID)
			assert.NotEmpty(t, l.Payload, "line %s: payload", l.EventID)
			got = append(got, l.EventID)
		}
		require.Equal(t, []string{sent[0].ID.String(), sent[2].ID.String()}, got, "exported events, want mia's")
		assert.Contains(t, out, "mia.canary@example.test", "a plain export must carry the decrypted payload, e-mail included")
		assert.Contains(t, errs, "exported 2 events to stdout (2 skipped by filters, 0 of erased users)", "no summary on stderr")
	})

	t.Run("registrations pseudonymized as CSV into a file, with progress lines", func(t *testing.T) {
		defer func(d time.Duration) { progressInterval = d }(progressInterval)
		progressInterval = 0 // stderr is no terminal: plain lines
		file := filepath.Join(t.TempDir(), "registrations.csv")
		_, errs := events(t, "export", "--type", "user.registered", "--pseudonymize", "--format", "csv", "--out", file)
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, secret := range []string{mia.String(), noa.String(), "canary@example.test"} {
			assert.NotContains(t, string(data), secret, "pseudonymized export")
		}
		rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 3, "want a header and two registrations, got:\n%s", data)
		require.Equal(t, "type", rows[0][1], "header:\n%s", data)
		require.Equal(t, "pseudonym", rows[0][3], "header:\n%s", data)
		for i, user := range []uuid.UUID{mia, noa} {
			m := hmac.New(sha256.New, pseudonymKey)
			m.Write([]byte(user.String()))
			want := hex.EncodeToString(m.Sum(nil))[:32]
			assert.Equal(t, want, rows[i+1][3], "row %d: pseudonym of %v", i+1, rows[i+1])
			assert.Equal(t, "user.registered", rows[i+1][1], "row %d: type of %v", i+1, rows[i+1])
			assert.Contains(t, rows[i+1][9], `"timezone"`, "row %d payload lost its timezone", i+1)
		}
		assert.Regexp(t, `exporting: \d+/4 events \([0-9.]+%\), \d+ events/s, ETA`, errs, "no plain progress line on stderr")
		leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*partial"))
		assert.Empty(t, leftovers, "temporary files left behind")
	})

	t.Run("a time range", func(t *testing.T) {
		out, _ := events(t, "export", "--from", yesterday.Add(time.Hour).Format(time.RFC3339), "--to", yesterday.Add(3*time.Hour).Format(time.RFC3339))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 1, "want only mia's push (recorded in [+1h, +3h)), got:\n%s", out)
		assert.Contains(t, lines[0], sent[2].ID.String(), "want only mia's push (recorded in [+1h, +3h))")
	})

	t.Run("unusable flags are refused", func(t *testing.T) {
		for _, args := range [][]string{
			{"export", "--format", "xml"},
			{"export", "--user", "not-a-uuid"},
			{"export", "--from", "yesterday"},
			{"tail", "--out", "x.jsonl"},
			{"replay"},
		} {
			err := run(ctx, append([]string{"events"}, args...), getenv, &bytes.Buffer{}, &bytes.Buffer{})
			assert.Error(t, err, "biosync events %s succeeded", strings.Join(args, " "))
		}
	})
}
