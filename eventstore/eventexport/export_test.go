package eventexport_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/eventexport"
	"github.com/biosync/biosync/projections/engine"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

const master = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// stack is a fresh event log (its own topic) with the production codec over
// a PostgreSQL key store, as the server writes it.
type stack struct {
	keys     *countingKeys
	codec    *eventstore.Codec
	appender *kafka.Appender
	log      *kafka.Log
	sent     []eventstore.Event // in append order
}

// countingKeys records whose data keys were loaded, to prove that filtered
// exports never touch other users' keys.
type countingKeys struct {
	eventstore.KeyStore
	mu     sync.Mutex
	loaded map[uuid.UUID]int
}

func (c *countingKeys) LoadKey(ctx context.Context, user uuid.UUID) (eventstore.WrappedKey, error) {
	c.mu.Lock()
	c.loaded[user]++
	c.mu.Unlock()
	return c.KeyStore.LoadKey(ctx, user)
}

func (c *countingKeys) reset() map[uuid.UUID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.loaded
	c.loaded = map[uuid.UUID]int{}
	return out
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	require.NoError(t, postgres.Migrate(ctx, dsn))
	pool, err := postgres.Open(ctx, dsn, 8)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	mk, _ := eventstore.ParseMasterKeys(master)
	writerKeys, err := eventstore.NewKeyring(postgres.NewKeyStore(pool), mk)
	require.NoError(t, err)
	s := &stack{keys: &countingKeys{KeyStore: postgres.NewKeyStore(pool), loaded: map[uuid.UUID]int{}}}
	cfg := kafka.Config{Brokers: testbackend.Kafka(t), Topic: testbackend.UniqueName(t, "events"), Partitions: 4}
	require.NoError(t, kafka.EnsureTopic(cfg))
	s.appender = kafka.NewAppender(cfg, eventstore.NewCodec(writerKeys))
	t.Cleanup(func() { s.appender.Close() })
	s.log, err = kafka.NewLog(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.log.Close() })
	// The exporter's own key ring (no shared cache with the writer), so
	// every key it needs is loaded, and counted, here.
	s.codec = s.freshCodec(t)
	return s
}

// freshCodec is a reader codec with an empty key cache.
func (s *stack) freshCodec(t *testing.T) *eventstore.Codec {
	t.Helper()
	mk, _ := eventstore.ParseMasterKeys(master)
	kr, err := eventstore.NewKeyring(s.keys, mk)
	require.NoError(t, err)
	return eventstore.NewCodec(kr)
}

// add appends one event recorded at `at` (the record timestamp too).
func (s *stack) add(t *testing.T, user uuid.UUID, typ string, at time.Time, payload string) eventstore.Event {
	t.Helper()
	e := eventstore.Event{ID: uuid.New(), Type: typ, SchemaVersion: 1, UserID: user, OccurredAt: at.Add(-time.Second), RecordedAt: at, Payload: []byte(payload)}
	_, err := s.appender.Append(context.Background(), e)
	require.NoError(t, err)
	s.sent = append(s.sent, e)
	return e
}

func registered(email string) string {
	return fmt.Sprintf(`{"email":%q,"timezone":"Europe/Berlin","registered_at":"2026-03-01T08:00:00Z"}`, email)
}

func pushed(user uuid.UUID, steps int) string {
	return fmt.Sprintf(`{"channel":"webhook","delivery_id":"msg_%d","received_at":"2026-03-01T09:00:00Z","batch":{"user_id":%q,`+
		`"source":{"provider":"garmin","device":"fenix 7"},"samples":[{"type":"steps","start":"2026-03-01T08:00:00+01:00",`+
		`"end":"2026-03-01T08:15:00+01:00","value":%d,"unit":"count"}],"sleep_sessions":null}}`, steps, user, steps)
}

// line is one exported event as an analyst reads it back.
type line struct {
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	UserID        string          `json:"user_id"`
	Pseudonym     string          `json:"pseudonym"`
	OccurredAt    time.Time       `json:"occurred_at"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Partition     int32           `json:"partition"`
	Offset        int64           `json:"offset"`
	Erased        bool            `json:"erased"`
	Payload       json.RawMessage `json:"payload"`
	hasPayload    bool
}

func export(t *testing.T, s *stack, f eventexport.Filter, o eventexport.Options) (string, eventexport.Stats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	st, err := eventexport.Export(ctx, s.log, s.codec, f, o, &out)
	require.NoError(t, err, "export")
	return out.String(), st
}

func parseJSONL(t *testing.T, out string) []line {
	t.Helper()
	var lines []line
	for i, raw := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if raw == "" {
			continue
		}
		var l line
		require.NoError(t, json.Unmarshal([]byte(raw), &l), "line %d is not JSON:\n%s", i+1, raw)
		var members map[string]json.RawMessage
		_ = json.Unmarshal([]byte(raw), &members)
		_, l.hasPayload = members["payload"]
		lines = append(lines, l)
	}
	return lines
}

func parseCSV(t *testing.T, out string, userColumn string) []line {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err, "output is not CSV: %v\n%s", err, out)
	want := append([]string(nil), eventexport.Columns...)
	want[3] = userColumn
	require.NotEmpty(t, rows, "CSV output has no header")
	require.Equal(t, want, rows[0], "CSV header")
	var lines []line
	for _, r := range rows[1:] {
		var l line
		l.EventID, l.Type, l.UserID = r[0], r[1], r[3]
		fmt.Sscan(r[2], &l.SchemaVersion)
		fmt.Sscan(r[6], &l.Partition)
		fmt.Sscan(r[7], &l.Offset)
		l.OccurredAt, _ = time.Parse(time.RFC3339Nano, r[4])
		l.RecordedAt, _ = time.Parse(time.RFC3339Nano, r[5])
		l.Erased = r[8] == "true"
		if r[9] != "" {
			l.Payload, l.hasPayload = json.RawMessage(r[9]), true
		}
		lines = append(lines, l)
	}
	return lines
}

func ids(lines []line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.EventID
	}
	return out
}

func idsOf(events []eventstore.Event, keep func(eventstore.Event) bool) []string {
	out := []string{}
	for _, e := range events {
		if keep(e) {
			out = append(out, e.ID.String())
		}
	}
	return out
}

// A morning of three users: registrations and pushes a minute apart, half
// before the mark and half after it, spread over the four partitions.
func TestExportFiltersByUserTypeAndTimeRange(t *testing.T) {
	s := newStack(t)
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	mark := at(30)
	s.add(t, alice, "user.registered", at(0), registered("alice@example.test"))
	s.add(t, bob, "user.registered", at(1), registered("bob@example.test"))
	s.add(t, carol, "user.registered", at(2), registered("carol@example.test"))
	s.add(t, alice, "samples.pushed", at(3), pushed(alice, 100))
	s.add(t, bob, "samples.pushed", at(4), pushed(bob, 200))
	s.add(t, alice, "samples.pushed", at(31), pushed(alice, 300))
	s.add(t, carol, "samples.pushed", at(32), pushed(carol, 400))
	s.add(t, bob, "samples.pushed", at(33), pushed(bob, 500))
	s.add(t, alice, "samples.pushed", at(34), pushed(alice, 600))

	cases := []struct {
		name   string
		filter eventexport.Filter
		keep   func(eventstore.Event) bool
	}{
		{"everything, merged across partitions in recorded order", eventexport.Filter{}, func(eventstore.Event) bool { return true }},
		{"one user", eventexport.Filter{Users: []uuid.UUID{alice}}, func(e eventstore.Event) bool { return e.UserID == alice }},
		{"two users", eventexport.Filter{Users: []uuid.UUID{bob, carol}}, func(e eventstore.Event) bool { return e.UserID != alice }},
		{"one type", eventexport.Filter{Types: []string{"user.registered"}}, func(e eventstore.Event) bool { return e.Type == "user.registered" }},
		{"from the mark", eventexport.Filter{From: mark}, func(e eventstore.Event) bool { return !e.RecordedAt.Before(mark) }},
		{"until the mark", eventexport.Filter{To: mark}, func(e eventstore.Event) bool { return e.RecordedAt.Before(mark) }},
		{"a window, To exclusive", eventexport.Filter{From: at(2), To: at(33)}, func(e eventstore.Event) bool {
			return !e.RecordedAt.Before(at(2)) && e.RecordedAt.Before(at(33))
		}},
		{"user, type and window together", eventexport.Filter{Users: []uuid.UUID{alice, bob}, Types: []string{"samples.pushed"}, From: at(4), To: at(34)}, func(e eventstore.Event) bool {
			return e.UserID != carol && e.Type == "samples.pushed" && !e.RecordedAt.Before(at(4)) && e.RecordedAt.Before(at(34))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, st := export(t, s, c.filter, eventexport.Options{})
			got := parseJSONL(t, out)
			want := idsOf(s.sent, c.keep)
			require.Equal(t, want, ids(got), "exported events")
			assert.Equal(t, int64(len(want)), st.Events, "Stats.Events = %d, want %d", st.Events, len(want))
			for i := 1; i < len(got); i++ {
				assert.False(t, got[i].RecordedAt.Before(got[i-1].RecordedAt), "line %d recorded at %v comes after %v", i+1, got[i].RecordedAt, got[i-1].RecordedAt)
			}
		})
	}

	t.Run("the user filter never loads another user's key", func(t *testing.T) {
		s.codec = s.freshCodec(t)
		s.keys.reset()
		_, st := export(t, s, eventexport.Filter{Users: []uuid.UUID{carol}}, eventexport.Options{})
		loaded := s.keys.reset()
		require.EqualValues(t, 0, loaded[alice], "exporting carol loaded alice's key %d times and bob's %d times", loaded[alice], loaded[bob])
		require.EqualValues(t, 0, loaded[bob], "exporting carol loaded alice's key %d times and bob's %d times", loaded[alice], loaded[bob])
		require.NotEqualValues(t, 0, loaded[carol], "carol's key was never loaded, yet her events were exported")
		require.EqualValues(t, 2, st.Events, "stats %+v, want 2 events and 7 skipped", st)
		require.EqualValues(t, 7, st.Skipped, "stats %+v, want 2 events and 7 skipped", st)
	})
}

// Both formats carry the same events and payloads, including text that
// needs quoting in CSV.
func TestJSONLAndCSVRoundTrip(t *testing.T) {
	s := newStack(t)
	dana, eli := uuid.New(), uuid.New()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	s.add(t, dana, "user.registered", base, registered("dana@example.test"))
	s.add(t, eli, "journal.noted", base.Add(time.Second), `{"note":"slept badly, woke \"early\"\nagain","mood":-1.25,"tags":["travel","jetlag"]}`)
	s.add(t, dana, "samples.pushed", base.Add(2*time.Second), pushed(dana, 1234))

	jsonl, _ := export(t, s, eventexport.Filter{}, eventexport.Options{Format: eventexport.FormatJSONL})
	csvOut, _ := export(t, s, eventexport.Filter{}, eventexport.Options{Format: eventexport.FormatCSV})
	for name, lines := range map[string][]line{"jsonl": parseJSONL(t, jsonl), "csv": parseCSV(t, csvOut, "user_id")} {
		t.Run(name, func(t *testing.T) {
			require.Len(t, lines, len(s.sent), "%d lines, want %d:\n%s", len(lines), len(s.sent), jsonl)
			for i, e := range s.sent {
				l := lines[i]
				assert.Equal(t, e.ID.String(), l.EventID, "line %d: event id", i+1)
				assert.Equal(t, e.Type, l.Type, "line %d: type", i+1)
				assert.Equal(t, 1, l.SchemaVersion, "line %d: schema version", i+1)
				assert.Equal(t, e.UserID.String(), l.UserID, "line %d: user", i+1)
				assert.True(t, l.RecordedAt.Equal(e.RecordedAt), "line %d recorded %v, want %v", i+1, l.RecordedAt, e.RecordedAt)
				assert.True(t, l.OccurredAt.Equal(e.OccurredAt), "line %d occurred %v, want %v", i+1, l.OccurredAt, e.OccurredAt)
				assert.False(t, l.Erased, "line %d is marked erased", i+1)
				assert.JSONEq(t, string(e.Payload), string(l.Payload), "line %d payload", i+1)
			}
			// Positions point back into the log: a 4-partition topic.
			for _, l := range lines {
				assert.GreaterOrEqual(t, l.Partition, int32(0), "partition of event %s", l.EventID)
				assert.Less(t, l.Partition, int32(4), "partition of event %s", l.EventID)
				assert.GreaterOrEqual(t, l.Offset, int64(0), "offset of event %s", l.EventID)
			}
		})
	}
}

func pseudonym(key []byte, user uuid.UUID) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(user.String()))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// A pseudonymized export holds no e-mail address and no user id, not even
// one nested in a payload, and the same key gives the same pseudonyms.
func TestPseudonymizedExportLeaksNoEmailOrUserID(t *testing.T) {
	s := newStack(t)
	fay, gus := uuid.New(), uuid.New()
	canaryFay, canaryGus, canaryCarer := "canary-fay-7f3a9@example.test", "canary-gus-0b2c4@example.test", "canary-carer-91d7e@example.test"
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	s.add(t, fay, "user.registered", base, registered(canaryFay))
	s.add(t, gus, "user.registered", base.Add(time.Second), registered(canaryGus))
	s.add(t, fay, "samples.pushed", base.Add(2*time.Second), pushed(fay, 4321))
	// A future event type: the scrubbing rules hold at any depth.
	s.add(t, fay, "sharing.granted", base.Add(3*time.Second), fmt.Sprintf(
		`{"owner":%q,"grants":[{"user_id":%q,"email":%q,"scope":["sleep"]}],"contact":{"Email":%q}}`,
		strings.ToUpper(fay.String()), gus, canaryCarer, canaryFay))
	key := []byte("an analyst pseudonym key, 32 b!!")

	for _, format := range []string{eventexport.FormatJSONL, eventexport.FormatCSV} {
		t.Run(format, func(t *testing.T) {
			o := eventexport.Options{Format: format, Pseudonymize: true, PseudonymKey: key}
			out, st := export(t, s, eventexport.Filter{}, o)
			require.EqualValues(t, 4, st.Events, "exported %d events, want 4", st.Events)
			lower := strings.ToLower(out)
			for _, secret := range []string{canaryFay, canaryGus, canaryCarer, "@example.test",
				fay.String(), gus.String(), strings.ReplaceAll(fay.String(), "-", ""), strings.ReplaceAll(gus.String(), "-", "")} {
				assert.NotContains(t, lower, strings.ToLower(secret), "pseudonymized %s output contains %q:\n%s", format, secret, out)
			}
			again, _ := export(t, s, eventexport.Filter{}, o)
			assert.Equal(t, out, again, "two pseudonymized exports of the same log differ:\n%s\n---\n%s", out, again)

			var lines []line
			if format == eventexport.FormatCSV {
				lines = parseCSV(t, out, "pseudonym")
				for i := range lines {
					lines[i].Pseudonym, lines[i].UserID = lines[i].UserID, ""
				}
			} else {
				lines = parseJSONL(t, out)
			}
			require.Len(t, lines, len(s.sent))
			for i, e := range s.sent {
				assert.Empty(t, lines[i].UserID, "line %d: want only the pseudonym, no user_id", i+1)
				assert.Equal(t, pseudonym(key, e.UserID), lines[i].Pseudonym, "line %d: pseudonym", i+1)
			}
			var reg struct {
				Email    *string `json:"email"`
				Timezone string  `json:"timezone"`
			}
			_ = json.Unmarshal(lines[0].Payload, &reg)
			assert.Nil(t, reg.Email, "registration payload %s: want the email dropped", lines[0].Payload)
			assert.Equal(t, "Europe/Berlin", reg.Timezone, "registration payload %s: want the timezone kept", lines[0].Payload)
			var push struct {
				Batch struct {
					UserID  string `json:"user_id"`
					Samples []struct {
						Value float64 `json:"value"`
					} `json:"samples"`
				} `json:"batch"`
			}
			_ = json.Unmarshal(lines[2].Payload, &push)
			assert.Equal(t, pseudonym(key, fay), push.Batch.UserID, "push payload %s: batch.user_id must be the pseudonym", lines[2].Payload)
			if assert.Len(t, push.Batch.Samples, 1, "push payload %s: the samples intact", lines[2].Payload) {
				assert.Equal(t, 4321.0, push.Batch.Samples[0].Value, "push payload %s: the samples intact", lines[2].Payload)
			}
			var grant struct {
				Owner  string `json:"owner"`
				Grants []map[string]any
			}
			_ = json.Unmarshal(lines[3].Payload, &grant)
			// Owner and grantee pseudonymized consistently with the user column.
			assert.Equal(t, pseudonym(key, fay), grant.Owner, "grant payload %s: owner", lines[3].Payload)
			if assert.Len(t, grant.Grants, 1, "grant payload %s", lines[3].Payload) {
				assert.Equal(t, pseudonym(key, gus), grant.Grants[0]["user_id"], "grant payload %s: grantee", lines[3].Payload)
			}
		})
	}

	t.Run("another key gives other pseudonyms", func(t *testing.T) {
		other := []byte("another analyst key, also 32 b!!")
		out, _ := export(t, s, eventexport.Filter{}, eventexport.Options{Pseudonymize: true, PseudonymKey: other})
		require.NotContains(t, out, pseudonym(key, fay), "the pseudonym does not depend on the key:\n%s", out)
		require.Contains(t, out, pseudonym(other, fay), "the pseudonym does not depend on the key:\n%s", out)
	})
}

// After erasure (crypto-shredding) the user's events stay in the export as
// envelopes marked erased, with no payload; others are untouched.
func TestErasedUserIsExportedAsErasedWithoutPayload(t *testing.T) {
	s := newStack(t)
	hana, ivo := uuid.New(), uuid.New()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	s.add(t, hana, "user.registered", base, registered("hana@example.test"))
	s.add(t, ivo, "user.registered", base.Add(time.Second), registered("ivo@example.test"))
	s.add(t, hana, "samples.pushed", base.Add(2*time.Second), pushed(hana, 42))
	require.NoError(t, s.codec.Keys().Destroy(context.Background(), hana))

	out, st := export(t, s, eventexport.Filter{}, eventexport.Options{})
	require.EqualValues(t, 3, st.Events, "stats %+v, want 3 events of which 2 erased", st)
	require.EqualValues(t, 2, st.Erased, "stats %+v, want 3 events of which 2 erased", st)
	require.NotContains(t, out, "hana@example.test", "an erased user's e-mail is in the export:\n%s", out)
	for _, l := range parseJSONL(t, out) {
		erased := l.UserID == hana.String()
		assert.Equal(t, erased, l.Erased, "event %s of %s: erased", l.EventID, l.UserID)
		assert.Equal(t, !erased, l.hasPayload, "event %s of %s: payload present", l.EventID, l.UserID)
	}
	csvOut, _ := export(t, s, eventexport.Filter{}, eventexport.Options{Format: eventexport.FormatCSV})
	for _, l := range parseCSV(t, csvOut, "user_id") {
		erased := l.UserID == hana.String()
		assert.Equal(t, erased, l.Erased, "CSV event %s of %s: erased", l.EventID, l.UserID)
		assert.Equal(t, !erased, l.hasPayload, "CSV event %s of %s: payload present", l.EventID, l.UserID)
	}
}

// lineWriter hands each completed output line to a channel (Follow writes
// from the exporting goroutine while the test watches).
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func nextLine(t *testing.T, w *lineWriter, what string) line {
	t.Helper()
	select {
	case raw := <-w.lines:
		return parseJSONL(t, raw)[0]
	case <-time.After(20 * time.Second):
		require.FailNow(t, "no line within 20s", "waiting for %s", what)
	}
	return line{}
}

// Follow (tail) writes the backlog, then each event as it is appended, and
// ends quietly when its context is cancelled.
func TestFollowDeliversNewEventsUntilCancelled(t *testing.T) {
	s := newStack(t)
	// kai shares jon's partition, so kai's record is read (and skipped)
	// before jon's next one: the skip count cannot depend on how records
	// of different partitions interleave.
	jon, kai := uuid.New(), uuid.New()
	for engine.PartitionOf(kai, 4) != engine.PartitionOf(jon, 4) {
		kai = uuid.New()
	}
	first := s.add(t, jon, "user.registered", time.Now().UTC(), registered("jon@example.test"))

	w := &lineWriter{lines: make(chan string, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  eventexport.Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := eventexport.Export(ctx, s.log, s.codec, eventexport.Filter{Users: []uuid.UUID{jon}}, eventexport.Options{Follow: true}, w)
		done <- result{st, err}
	}()
	l := nextLine(t, w, "the backlog")
	require.Equal(t, first.ID.String(), l.EventID, "first line is event %s, want the backlog event %s", l.EventID, first.ID)
	s.add(t, kai, "user.registered", time.Now().UTC(), registered("kai@example.test")) // filtered out
	live := s.add(t, jon, "samples.pushed", time.Now().UTC(), pushed(jon, 77))
	l = nextLine(t, w, "the event appended after the start")
	require.Equal(t, live.ID.String(), l.EventID, "live line is event %s %s, want %s", l.EventID, l.Payload, live.ID)
	assert.JSONEq(t, string(live.Payload), string(l.Payload), "payload of the live line")
	cancel()
	select {
	case r := <-done:
		require.NoError(t, r.err, "a cancelled tail returned %v, want nil", r.err)
		require.EqualValues(t, 2, r.st.Events, "stats %+v, want 2 events and kai's skipped", r.st)
		require.EqualValues(t, 1, r.st.Skipped, "stats %+v, want 2 events and kai's skipped", r.st)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Export kept running 10s after its context was cancelled")
	}
	select {
	case extra := <-w.lines:
		assert.Fail(t, "unexpected line after the tail", "%s", extra)
	default:
	}
}

// A tail that starts "now" (From = now, as `biosync events tail` does)
// skips the backlog and delivers only what comes next.
func TestFollowFromNowStartsAtTheHead(t *testing.T) {
	s := newStack(t)
	lea := uuid.New()
	s.add(t, lea, "user.registered", time.Now().UTC().Add(-time.Minute), registered("lea@example.test"))
	w := &lineWriter{lines: make(chan string, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := eventexport.Export(ctx, s.log, s.codec, eventexport.Filter{From: time.Now()}, eventexport.Options{Follow: true}, w)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // let the tail resolve its start offsets
	live := s.add(t, lea, "samples.pushed", time.Now().UTC(), pushed(lea, 5))
	l := nextLine(t, w, "the new event")
	require.Equal(t, live.ID.String(), l.EventID, "first line is %s, want the new event %s (the backlog must be skipped)", l.EventID, live.ID)
	cancel()
	require.NoError(t, <-done)
}

func TestExportRefusesUnusableOptions(t *testing.T) {
	s := newStack(t)
	now := time.Now()
	cases := []struct {
		name string
		f    eventexport.Filter
		o    eventexport.Options
	}{
		{"unknown format", eventexport.Filter{}, eventexport.Options{Format: "xml"}},
		{"pseudonymize without a key", eventexport.Filter{}, eventexport.Options{Pseudonymize: true}},
		{"pseudonymize with a short key", eventexport.Filter{}, eventexport.Options{Pseudonymize: true, PseudonymKey: []byte("short")}},
		{"To before From", eventexport.Filter{From: now, To: now.Add(-time.Hour)}, eventexport.Options{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := eventexport.Export(context.Background(), s.log, s.codec, c.f, c.o, &out)
			require.Error(t, err, "Export accepted %s and wrote %q", c.name, out.String())
		})
	}
}
