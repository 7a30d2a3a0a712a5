package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/preferences"
	"github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/metrics"
	settingsrm "github.com/biosync/biosync/projections/settings"
)

// fakeSettings is both settings ports: an in-memory document per user
// with a version, compare-and-set under a mutex (the real one is a row
// lock; see commands and adapters/postgres for it on real backends).
type fakeSettings struct {
	mu       sync.Mutex
	profiles map[uuid.UUID]settingsrm.ProfileView
	notes    map[uuid.UUID]settingsrm.NotificationsView
	units    map[uuid.UUID]metric.System
	fresh    []bool // the fresh argument of every Units call
	fail     error  // returned by the commands when set
	offset   int64
}

func newFakeSettings() *fakeSettings {
	return &fakeSettings{profiles: map[uuid.UUID]settingsrm.ProfileView{}, notes: map[uuid.UUID]settingsrm.NotificationsView{}, units: map[uuid.UUID]metric.System{}}
}

func withSettings(f *fakeSettings) option {
	return func(_ *Config, d *Deps) {
		d.Settings = preferences.Deps{Commands: f, Queries: f}
		d.Queries.Units = f
	}
}

func (f *fakeSettings) ChangeProfile(_ context.Context, cmd commands.ChangeProfile) (commands.ProfileSaved, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return commands.ProfileSaved{}, f.fail
	}
	p := cmd.Profile.Normalize()
	v := &domain.ValidationError{}
	p.Validate(v)
	if err := v.Err(); err != nil {
		return commands.ProfileSaved{}, err
	}
	cur := f.profiles[cmd.UserID].Version
	if cur != cmd.IfMatch {
		return commands.ProfileSaved{}, &commands.StaleVersion{Document: settings.DocProfile, Current: cur}
	}
	f.profiles[cmd.UserID] = settingsrm.ProfileView{Profile: p, Version: cur + 1}
	f.units[cmd.UserID] = p.Units
	f.offset++
	return commands.ProfileSaved{ProfileChanged: settings.ProfileChanged{Profile: p, Version: cur + 1}, Token: eventstore.Token{{Partition: 1, Offset: f.offset}}}, nil
}

func (f *fakeSettings) ChangeNotifications(_ context.Context, cmd commands.ChangeNotifications) (commands.NotificationsSaved, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return commands.NotificationsSaved{}, f.fail
	}
	v := &domain.ValidationError{}
	cmd.Notifications.Validate(v)
	if err := v.Err(); err != nil {
		return commands.NotificationsSaved{}, err
	}
	cur := f.notes[cmd.UserID].Version
	if cur != cmd.IfMatch {
		return commands.NotificationsSaved{}, &commands.StaleVersion{Document: settings.DocNotifications, Current: cur}
	}
	f.notes[cmd.UserID] = settingsrm.NotificationsView{Notifications: cmd.Notifications, Version: cur + 1}
	f.offset++
	return commands.NotificationsSaved{NotificationsChanged: settings.NotificationsChanged{Notifications: cmd.Notifications, Version: cur + 1}, Token: eventstore.Token{{Partition: 1, Offset: f.offset}}}, nil
}

func (f *fakeSettings) Profile(_ context.Context, id uuid.UUID) (settingsrm.ProfileView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.profiles[id]
	if !ok {
		return settingsrm.ProfileView{Profile: settings.DefaultProfile("Asia/Tokyo")}, nil
	}
	return p, nil
}

func (f *fakeSettings) Notifications(_ context.Context, id uuid.UUID) (settingsrm.NotificationsView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.notes[id]
	if !ok {
		return settingsrm.NotificationsView{Notifications: settings.DefaultNotifications()}, nil
	}
	return n, nil
}

func (f *fakeSettings) Units(_ context.Context, id uuid.UUID, fresh bool) (metric.System, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fresh = append(f.fresh, fresh)
	if u, ok := f.units[id]; ok {
		return u, nil
	}
	return metric.Metric, nil
}

func ifMatchHeader(v string) []string { return []string{"If-Match", v} }

func headers(tok string, more ...string) []string { return append(bearer(tok), more...) }

const adaSettings = `{"display_name":"  Ada Lovelace ","timezone":"Europe/London","units":"imperial"}`

func TestSettingsStartAsDefaultsWithAnETag(t *testing.T) {
	h := newHarness(t, withSettings(newFakeSettings()))
	rec := h.do(req(http.MethodGet, "/v1/me/settings", nil, bearer(aliceToken)...))
	require.Falsef(t, rec.Code != 200 || rec.Header().Get("ETag") != `"0"`, "%d %v %s", rec.Code, rec.Header(), rec.Body)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"display_name":"","timezone":"Asia/Tokyo","units":"metric","version":0}` {
		require.FailNow(t, fmt.Sprintf("defaults = %s", got))
	}
	rec = h.do(req(http.MethodGet, "/v1/me/notification-preferences", nil, bearer(aliceToken)...))
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 || rec.Header().Get("ETag") != `"0"` ||
		got != `{"channels":{"email":false,"push":false},"daily_summary":{"enabled":false,"time":"08:00"},"quiet_hours":{"end":"07:00","start":"22:00"},"version":0}` {
		require.FailNow(t, fmt.Sprintf("%d %s", rec.Code, got))
	}
}

func TestPutSettingsWithTheCurrentETagReplacesTheDocument(t *testing.T) {
	f := newFakeSettings()
	h := newHarness(t, withSettings(f))
	rec := h.do(req(http.MethodPut, "/v1/me/settings", adaSettings, headers(aliceToken, ifMatchHeader(`"0"`)...)...))
	require.Falsef(t, rec.Code != 200 || rec.Header().Get("ETag") != `"1"` || rec.Header().Get(edge.HeaderConsistencyToken) == "", "%d %v %s", rec.Code, rec.Header(), rec.Body)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"display_name":"Ada Lovelace","timezone":"Europe/London","units":"imperial","version":1}` {
		require.FailNow(t, fmt.Sprintf("stored document = %s (display name trimmed)", got))
	}
	// The version in the body may be sent back as read.
	rec = h.do(req(http.MethodPut, "/v1/me/settings", `{"display_name":"Ada","timezone":"UTC","units":"metric","version":1}`, headers(aliceToken, ifMatchHeader(`"1"`)...)...))
	require.Falsef(t, rec.Code != 200 || rec.Header().Get("ETag") != `"2"`, "%d %s", rec.Code, rec.Body)
	// Bob's documents are his own.
	if p, _ := f.Profile(context.Background(), bob); p.Version != 0 {
		require.FailNow(t, fmt.Sprintf("bob's settings changed: %+v", p))
	}
	rec = h.do(req(http.MethodPut, "/v1/me/notification-preferences", `{"daily_summary":{"enabled":true,"time":"07:30"},"quiet_hours":null,"channels":{"email":false,"push":true}}`, headers(bobToken, ifMatchHeader(`"0"`)...)...))
	require.Falsef(t, rec.Code != 200 || rec.Header().Get("ETag") != `"1"` || !strings.Contains(rec.Body.String(), `"quiet_hours":null`), "%d %s", rec.Code, rec.Body)
}

func TestAChangeWithoutIfMatchIsPreconditionRequired(t *testing.T) {
	for _, path := range []string{"/v1/me/settings", "/v1/me/notification-preferences"} {
		for _, hdr := range [][]string{nil, ifMatchHeader("*")} {
			h := newHarness(t, withSettings(newFakeSettings()))
			body := adaSettings
			if strings.Contains(path, "notification") {
				body = `{"daily_summary":{"enabled":true,"time":"07:30"},"quiet_hours":null,"channels":{"email":false,"push":true}}`
			}
			hasField(t, problemOf(t, h.do(req(http.MethodPut, path, body, headers(aliceToken, hdr...)...)), 428, "precondition-required"), "If-Match")
		}
	}
}

func TestAStaleIfMatchGets409NamingIfMatch(t *testing.T) {
	h := newHarness(t, withSettings(newFakeSettings()))
	if rec := h.do(req(http.MethodPut, "/v1/me/settings", adaSettings, headers(aliceToken, ifMatchHeader(`"0"`)...)...)); rec.Code != 200 {
		require.FailNow(t, fmt.Sprintf("%d %s", rec.Code, rec.Body))
	}
	p := problemOf(t, h.do(req(http.MethodPut, "/v1/me/settings", adaSettings, headers(aliceToken, ifMatchHeader(`"0"`)...)...)), 409, "conflict")
	hasField(t, p, "If-Match")
	require.Falsef(t, !strings.Contains(p.Detail, "current version 1"), "the 409 must say which version is current: %q", p.Detail)
}

func TestConcurrentPutsWithOneETagExactlyOneSucceeds(t *testing.T) {
	f := newFakeSettings()
	h := newHarness(t, withSettings(f))
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			body := `{"display_name":"writer ` + string(rune('a'+i)) + `","timezone":"UTC","units":"metric"}`
			rec := h.do(req(http.MethodPut, "/v1/me/settings", body, headers(aliceToken, ifMatchHeader(`"0"`)...)...))
			mu.Lock()
			codes[rec.Code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Falsef(t, codes[200] != 1 || codes[409] != 7, "statuses %v, want one 200 and seven 409", codes)
}

func TestBadSettingsNameEveryField(t *testing.T) {
	cases := []struct {
		name, path, body, ifMatch string
		status                    int
		slug                      string
		fields                    []string
	}{
		{"every settings rule", "/v1/me/settings", `{"display_name":"a\u0007b","timezone":"Mars/Olympus","units":"cubits"}`, `"0"`, 422, "validation", []string{"/display_name", "/timezone", "/units"}},
		{"every notification rule", "/v1/me/notification-preferences", `{"daily_summary":{"enabled":true,"time":"25:00"},"quiet_hours":{"start":"9pm","end":"7:00"},"channels":{"email":true,"push":true}}`, `"0"`, 422, "validation", []string{"/daily_summary/time", "/quiet_hours/start", "/quiet_hours/end"}},
		{"unknown field (mass assignment)", "/v1/me/settings", `{"display_name":"","timezone":"UTC","units":"metric","role":"admin"}`, `"0"`, 422, "validation", []string{"/role"}},
		{"unknown nested field", "/v1/me/notification-preferences", `{"daily_summary":{"enabled":true,"time":"07:00","sound":"loud"},"quiet_hours":null,"channels":{"email":true,"push":true}}`, `"0"`, 422, "validation", []string{"/daily_summary/sound"}},
		{"a missing field (the document is whole)", "/v1/me/settings", `{"timezone":"UTC","units":"metric"}`, `"0"`, 422, "validation", []string{"/display_name"}},
		{"a body version other than If-Match", "/v1/me/settings", `{"display_name":"","timezone":"UTC","units":"metric","version":4}`, `"0"`, 422, "validation", []string{"/version"}},
		{"a weak ETag", "/v1/me/settings", adaSettings, `W/"0"`, 400, "malformed-request", []string{"If-Match"}},
		{"an unquoted ETag", "/v1/me/settings", adaSettings, `0`, 400, "malformed-request", []string{"If-Match"}},
		{"a negative version", "/v1/me/settings", adaSettings, `"-1"`, 400, "malformed-request", []string{"If-Match"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withSettings(newFakeSettings()))
			p := problemOf(t, h.do(req(http.MethodPut, tc.path, tc.body, headers(aliceToken, ifMatchHeader(tc.ifMatch)...)...)), tc.status, tc.slug)
			for _, f := range tc.fields {
				hasField(t, p, f)
			}
		})
	}
}

func TestSettingsCommandFailures(t *testing.T) {
	f := newFakeSettings()
	f.fail = errors.Join(errors.New("kafka append failed"), domain.ErrUnavailable)
	h := newHarness(t, withSettings(f))
	rec := h.do(req(http.MethodPut, "/v1/me/settings", adaSettings, headers(aliceToken, ifMatchHeader(`"0"`)...)...))
	problemOf(t, rec, 503, "unavailable")
	require.Falsef(t, rec.Header().Get("ETag") != "" || rec.Header().Get(edge.HeaderConsistencyToken) != "", "a failed change must not look written: %v", rec.Header())
	// Without a settings backend the routes answer 503 and metrics are metric.
	h = newHarness(t)
	problemOf(t, h.do(req(http.MethodGet, "/v1/me/settings", nil, bearer(aliceToken)...)), 503, "unavailable")
}

func TestGetSettingsHonoursTheConsistencyToken(t *testing.T) {
	f := newFakeSettings()
	var waited []string
	h := newHarness(t, withSettings(f))
	h.queries.waitFor = func(_ context.Context, _ eventstore.Token, models ...string) error {
		waited = append(waited, models...)
		return nil
	}
	rec := h.do(req(http.MethodPut, "/v1/me/settings", adaSettings, headers(aliceToken, ifMatchHeader(`"0"`)...)...))
	tok := rec.Header().Get(edge.HeaderConsistencyToken)
	rec = h.do(req(http.MethodGet, "/v1/me/settings", nil, headers(aliceToken, edge.HeaderConsistencyToken, tok)...))
	require.Falsef(t, rec.Code != 200 || rec.Header().Get(edge.HeaderConsistency) != "reached" || len(waited) != 1 || waited[0] != preferences.ReadModelSettings, "%d %v waited on %v", rec.Code, rec.Header(), waited)
}

func TestImperialUsersSeeMilesAndPounds(t *testing.T) {
	f := newFakeSettings()
	f.units[alice] = metric.Imperial
	h := newHarness(t, withSettings(f))
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, tokyo)
	h.queries.metrics = func(_ context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error) {
		def, _ := metric.Lookup(q.Type)
		v := map[metric.Type]float64{metric.Distance: 1609.344, metric.Weight: 45.359237, metric.Steps: 1000}[q.Type]
		return metrics.MetricSeries{Type: q.Type, Unit: def.Unit, Bucket: q.Bucket, Points: []metrics.MetricPoint{
			{Start: day, End: day.AddDate(0, 0, 1), Value: v, Min: v / 2, Max: v, Count: 2},
		}}, nil
	}
	for _, tc := range []struct {
		user          string
		typ, unit     string
		value, minVal float64
	}{
		{aliceToken, "distance", "mi", 1, 0.5},
		{aliceToken, "weight", "lb", 100, 50},
		{aliceToken, "steps", "count", 1000, 500},
		{bobToken, "distance", "m", 1609.344, 804.672},
		{bobToken, "weight", "kg", 45.359237, 22.6796185},
	} {
		rec := h.do(req(http.MethodGet, "/v1/metrics/"+tc.typ, nil, bearer(tc.user)...))
		var out struct {
			Unit   string
			Points []struct{ Value, Min, Max float64 }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
			require.FailNow(t, fmt.Sprintf("%d %s", rec.Code, rec.Body))
		}
		require.Falsef(t, out.Unit != tc.unit || out.Points[0].Value != tc.value || out.Points[0].Min != tc.minVal || out.Points[0].Max != tc.value, "%s for %s = %s, want %v %s", tc.typ, tc.user, rec.Body, tc.value, tc.unit)
	}

	avg := 61.5
	cached := metrics.Dashboard{Date: "2026-11-20", Timezone: "Asia/Tokyo", Steps: &metrics.DayValue{Date: "2026-11-20", Value: 8000},
		RestingHR: metrics.Baseline{Latest: &metrics.DayValue{Date: "2026-11-20", Value: 60}, Avg7: &avg, Unit: "bpm"}, HRV: metrics.Baseline{Unit: "ms"}}
	h.queries.dashboard = func(context.Context, uuid.UUID, eventstore.Token) (metrics.Dashboard, error) { return cached, nil }
	rec := h.do(req(http.MethodGet, "/v1/dashboard/summary", nil, bearer(aliceToken)...))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), `"steps":{"date":"2026-11-20","value":8000,"unit":"count"}`) ||
		!strings.Contains(rec.Body.String(), `"latest":{"date":"2026-11-20","value":60,"unit":"bpm"}`), "%d %s", rec.Code, rec.Body)
	require.False(t, cached.Steps.Unit != "" || cached.RestingHR.Latest.Unit != "", "the dashboard served from the cache must not be modified")
}

func TestAMetricReadWithATokenReadsTheUnitsFresh(t *testing.T) {
	f := newFakeSettings()
	h := newHarness(t, withSettings(f))
	var waited []string
	h.queries.waitFor = func(_ context.Context, _ eventstore.Token, models ...string) error {
		waited = models
		return nil
	}
	h.queries.metrics = func(_ context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error) {
		return metrics.MetricSeries{Type: q.Type, Unit: "m", Bucket: q.Bucket, Points: []metrics.MetricPoint{}}, nil
	}
	rec := h.do(req(http.MethodPut, "/v1/me/settings", adaSettings, headers(aliceToken, ifMatchHeader(`"0"`)...)...))
	rec = h.do(req(http.MethodGet, "/v1/metrics/distance", nil, headers(aliceToken, edge.HeaderConsistencyToken, rec.Header().Get(edge.HeaderConsistencyToken))...))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), `"unit":"mi"`), "%d %s", rec.Code, rec.Body)
	require.Falsef(t, len(waited) != 1 || waited[0] != queries.ReadModelMetrics || !f.fresh[len(f.fresh)-1], "a read with a token must wait for metrics (%v) and read the units fresh, not cached (%v)", waited, f.fresh)
}

// A client that already holds the current version asks with
// If-None-Match and gets 304 without a body; any other tag (or a changed
// document) gets the document. Before, If-None-Match was ignored.
func TestAConditionalReadOfAnUnchangedDocumentIsNotModified(t *testing.T) {
	h := newHarness(t, withSettings(newFakeSettings()))
	for _, path := range []string{"/v1/me/settings", "/v1/me/notification-preferences"} {
		for tags, want := range map[string]int{`"0"`: 304, `W/"0"`: 304, `"7", "0"`: 304, `*`: 304, `"1"`: 200} {
			rec := h.do(req(http.MethodGet, path, nil, headers(aliceToken, "If-None-Match", tags)...))
			require.Equal(t, want, rec.Code, "%s with If-None-Match %s: %s", path, tags, rec.Body)
			assert.Equal(t, `"0"`, rec.Header().Get("ETag"), "%s with If-None-Match %s", path, tags)
			if want == 304 {
				assert.Empty(t, rec.Body.String(), "a 304 has no body")
			}
		}
	}
	rec := h.do(req(http.MethodPut, "/v1/me/settings", adaSettings, headers(aliceToken, ifMatchHeader(`"0"`)...)...))
	require.Equal(t, 200, rec.Code, "%s", rec.Body)
	rec = h.do(req(http.MethodGet, "/v1/me/settings", nil, headers(aliceToken, "If-None-Match", `"0"`)...))
	assert.Equal(t, 200, rec.Code, "after a change the old tag no longer matches")
	assert.Equal(t, `"1"`, rec.Header().Get("ETag"))
}
