package schemas_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	raw, err := schemas.Events.ReadFile("events/" + name)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	require.NoError(t, c.AddResource(name, doc))
	s, err := c.Compile(name)
	require.NoError(t, err)
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "%v (run go test ./schemas -update to create it)", err)
	require.Equal(t, bytes.TrimSpace(got), bytes.TrimSpace(want), "wire format of %s changed: a payload change needs a new schema version and an upcaster\n got: %s\nwant: %s", name, got, want)
}

func validate(t *testing.T, s *jsonschema.Schema, raw []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	require.NoError(t, s.Validate(v), "payload does not match its schema:\n%s", raw)
}

var at = time.Date(2026, 11, 20, 7, 30, 0, 0, time.UTC)

func TestUserRegisteredV1WireFormat(t *testing.T) {
	raw, _ := json.MarshalIndent(identity.Registered{Email: "ada@example.com", Timezone: "Asia/Tokyo", RegisteredAt: at}, "", "  ")
	validate(t, compile(t, "user.registered.v1.schema.json"), raw)
	golden(t, "user.registered.v1.json", raw)
}

func TestUserEmailVerifiedV1WireFormat(t *testing.T) {
	raw, _ := json.MarshalIndent(identity.EmailVerified{VerifiedAt: at}, "", "  ")
	validate(t, compile(t, "user.email_verified.v1.schema.json"), raw)
	golden(t, "user.email_verified.v1.json", raw)
}

func TestSamplesPushedV1WireFormat(t *testing.T) {
	p := ingest.Pushed{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Channel: "webhook", ReceivedAt: at, Batch: ingest.Batch{
		UserID: "0b7c2c9e-2f8e-4a39-9f62-8f3c4c3f7a10",
		Source: ingest.Source{Provider: "apple_health", Device: "watch"},
		Samples: []ingest.Sample{
			{Type: "heart_rate", Start: "2026-11-20T07:00:00+09:00", End: "2026-11-20T07:00:00+09:00", Value: 58, Unit: "bpm"},
			{Type: "steps", Start: "2026-11-20T07:00:00+09:00", End: "2026-11-20T07:15:00+09:00", Value: 812, Unit: "count"},
		},
		SleepSessions: []ingest.SleepSession{{Start: "2026-11-19T23:10:00+09:00", End: "2026-11-20T06:40:00+09:00", Stages: []ingest.Stage{
			{Stage: "light", Start: "2026-11-19T23:10:00+09:00", End: "2026-11-20T00:00:00+09:00"},
			{Stage: "deep", Start: "2026-11-20T00:00:00+09:00", End: "2026-11-20T01:10:00+09:00"},
		}}},
	}}
	raw, _ := json.MarshalIndent(p, "", "  ")
	validate(t, compile(t, "samples.pushed.v1.schema.json"), raw)
	golden(t, "samples.pushed.v1.json", raw)

	// The golden file still decodes into today's struct (old versions stay
	// readable forever).
	stored, _ := os.ReadFile(filepath.Join("testdata", "samples.pushed.v1.json"))
	var back ingest.Pushed
	dec := json.NewDecoder(bytes.NewReader(stored))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&back))
	require.Len(t, back.Batch.Samples, 2, "decoded golden differs: %+v", back)
	require.Equal(t, "deep", back.Batch.SleepSessions[0].Stages[1].Stage, "decoded golden differs: %+v", back)
}

func TestSamplesDeletedV1WireFormat(t *testing.T) {
	for _, tc := range []struct {
		golden string
		d      ingest.Deletion
	}{
		{"samples.deleted.v1.json", ingest.Deletion{From: time.Date(2099, 3, 1, 0, 0, 0, 0, time.FixedZone("", 9*3600)), To: time.Date(2099, 3, 2, 0, 0, 0, 0, time.FixedZone("", 9*3600)), Provider: "apple_health", Type: "steps"}},
		{"samples.deleted.v1.everything.json", ingest.Deletion{From: at, To: at.Add(24 * time.Hour)}},
	} {
		require.NoError(t, tc.d.Validate(), "test deletion invalid")
		raw, _ := json.MarshalIndent(tc.d, "", "  ")
		validate(t, compile(t, "samples.deleted.v1.schema.json"), raw)
		golden(t, tc.golden, raw)
		var back ingest.Deletion
		decodesStrictly(t, tc.golden, &back)
		assert.True(t, back.From.Equal(tc.d.From) && back.To.Equal(tc.d.To), "decoded golden range differs: %+v", back)
		_, off := back.From.Zone()
		_, want := tc.d.From.Zone()
		assert.Equal(t, want, off, "the offset of from as sent is kept")
		assert.Equal(t, tc.d.Provider, back.Provider, "decoded golden differs: %+v", back)
		assert.Equal(t, tc.d.Type, back.Type, "decoded golden differs: %+v", back)
	}
}

// decodesStrictly checks that a stored golden file still decodes into
// today's struct (old versions stay readable forever).
func decodesStrictly(t *testing.T, name string, v any) {
	t.Helper()
	stored, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(stored))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v))
}

func TestUserSettingsChangedV1WireFormat(t *testing.T) {
	c := settings.ProfileChanged{Profile: settings.Profile{DisplayName: "Ada Lovelace", Timezone: "Europe/London", Units: metric.Imperial}, Version: 3}
	raw, _ := json.MarshalIndent(c, "", "  ")
	validate(t, compile(t, "user.settings_changed.v1.schema.json"), raw)
	golden(t, "user.settings_changed.v1.json", raw)
	var back settings.ProfileChanged
	decodesStrictly(t, "user.settings_changed.v1.json", &back)
	require.Equal(t, c, back, "decoded golden differs: %+v", back)
}

func TestUserNotificationPreferencesChangedV1WireFormat(t *testing.T) {
	for _, tc := range []struct {
		golden string
		quiet  *settings.QuietHours
	}{
		{"user.notification_preferences_changed.v1.json", &settings.QuietHours{Start: "22:30", End: "06:45"}},
		{"user.notification_preferences_changed.v1.no_quiet_hours.json", nil},
	} {
		c := settings.NotificationsChanged{Notifications: settings.Notifications{
			DailySummary: settings.DailySummary{Enabled: true, Time: "07:30"},
			QuietHours:   tc.quiet,
			Channels:     settings.Channels{Email: false, Push: true},
		}, Version: 2}
		raw, _ := json.MarshalIndent(c, "", "  ")
		validate(t, compile(t, "user.notification_preferences_changed.v1.schema.json"), raw)
		golden(t, tc.golden, raw)
		var back settings.NotificationsChanged
		decodesStrictly(t, tc.golden, &back)
		require.EqualValues(t, 2, back.Version, "decoded golden differs: %+v", back)
		require.Equal(t, c.DailySummary, back.DailySummary, "decoded golden differs: %+v", back)
		require.Equal(t, (tc.quiet == nil), (back.QuietHours == nil), "decoded golden differs: %+v", back)
	}
}

func TestEverySchemaIsValidJSONSchema(t *testing.T) {
	entries, err := schemas.Events.ReadDir("events")
	require.NoError(t, err)
	for _, e := range entries {
		if !assert.True(t, strings.HasSuffix(e.Name(), ".schema.json"), "%s: event schemas are named <type>.v<N>.schema.json", e.Name()) {
			continue
		}
		compile(t, e.Name())
	}
}

func TestConnectionEstablishedV1WireFormat(t *testing.T) {
	c := provider.ConnectionEstablished{Provider: provider.Oura, ProviderUserID: "8f3c4c3f-oura", Scopes: []string{"personal", "daily"},
		ConnectedAt: at, BackfillFrom: at.AddDate(0, 0, -30), BackfillTo: at}
	raw, _ := json.MarshalIndent(c, "", "  ")
	validate(t, compile(t, "connection.established.v1.schema.json"), raw)
	golden(t, "connection.established.v1.json", raw)
	var back provider.ConnectionEstablished
	decodesStrictly(t, "connection.established.v1.json", &back)
	require.Equal(t, c, back)
}

func TestConnectionRevokedV1WireFormat(t *testing.T) {
	c := provider.ConnectionRevoked{Provider: provider.Oura, Reason: provider.RevokedByProvider, RevokedAt: at}
	raw, _ := json.MarshalIndent(c, "", "  ")
	validate(t, compile(t, "connection.revoked.v1.schema.json"), raw)
	golden(t, "connection.revoked.v1.json", raw)
	var back provider.ConnectionRevoked
	decodesStrictly(t, "connection.revoked.v1.json", &back)
	require.Equal(t, c, back)
}

func TestProviderNotifiedV1WireFormat(t *testing.T) {
	n := provider.Notified{Provider: provider.Oura, DeliveryID: "sleep/a1c4bd52/create/2024-10-10T07:05:00+02:00", ProviderUserID: "8f3c4c3f-oura",
		ReceivedAt: at, Operation: "create", DataType: "sleep", ObjectID: "a1c4bd52", EventTime: "2024-10-10T07:05:00+02:00"}
	raw, _ := json.MarshalIndent(n, "", "  ")
	validate(t, compile(t, "provider.notified.v1.schema.json"), raw)
	golden(t, "provider.notified.v1.json", raw)
	var back provider.Notified
	decodesStrictly(t, "provider.notified.v1.json", &back)
	require.Equal(t, n, back)
}

func TestProviderRecordFetchedV1WireFormat(t *testing.T) {
	r := provider.RecordFetched{Provider: provider.Oura, DataType: "daily_spo2", RecordID: "5b6f3a2e", FetchedAt: at,
		Record: json.RawMessage(`{"day":"2024-11-11","id":"5b6f3a2e","spo2_percentage":{"average":96.5}}`)}
	raw, _ := json.MarshalIndent(r, "", "  ")
	validate(t, compile(t, "provider.record_fetched.v1.schema.json"), raw)
	golden(t, "provider.record_fetched.v1.json", raw)
	var back provider.RecordFetched
	decodesStrictly(t, "provider.record_fetched.v1.json", &back)
	require.JSONEq(t, string(r.Record), string(back.Record))
}

func TestJournalEntryWrittenV1WireFormat(t *testing.T) {
	mood, stress := 6, 3
	cases := []struct {
		file string
		body journal.EntryWritten
	}{
		{"journal.entry_written.v1.json", journal.EntryWritten{ID: "5f0c7a52-3d43-4d8e-9a53-0b1f4e6f2c11", Version: 2, Entry: journal.Entry{
			Date: "2026-11-19", Tags: []journal.Tag{{Name: "alcohol_drinks", Amount: 2}, {Name: "meditation", Amount: 15.5}},
			Mood: &mood, Stress: &stress, Note: "Two glasses of wine at dinner.\nBed late.",
		}}},
		{"journal.entry_written.v1.minimal.json", journal.EntryWritten{ID: "5f0c7a52-3d43-4d8e-9a53-0b1f4e6f2c11", Version: 1,
			Entry: journal.Entry{Date: "2026-11-19", Tags: []journal.Tag{}}}},
	}
	s := compile(t, "journal.entry_written.v1.schema.json")
	for _, tc := range cases {
		raw, _ := json.MarshalIndent(tc.body, "", "  ")
		validate(t, s, raw)
		golden(t, tc.file, raw)
	}
}

func TestJournalEntryDeletedV1WireFormat(t *testing.T) {
	raw, _ := json.MarshalIndent(journal.EntryDeleted{ID: "5f0c7a52-3d43-4d8e-9a53-0b1f4e6f2c11", Date: "2026-11-19", Version: 3}, "", "  ")
	validate(t, compile(t, "journal.entry_deleted.v1.schema.json"), raw)
	golden(t, "journal.entry_deleted.v1.json", raw)
}
