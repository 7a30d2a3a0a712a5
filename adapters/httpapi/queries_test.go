package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

var tokyo = time.FixedZone("", 9*3600)

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestEveryV1RouteHasAPolicy walks the routes generated from the spec: each
// /v1 operation is either on the short public list, or requires a bearer
// token (and, for /v1/admin, the admin role). Without a token it gets 401,
// and with a token lacking the role 403, before any port is called.
func TestEveryV1RouteHasAPolicy(t *testing.T) {
	public := map[string]string{opRegister: "anonymous", opLogin: "anonymous", "refreshSession": "refresh token", opPushWebhook: "webhook signature",
		"verifyEmail": "mailed token", "requestPasswordReset": "anonymous", "confirmPasswordReset": "mailed token",
		"connectionCallback": "single-use state", "providerWebhookHandshake": "provider verification token", opProviderWebhook: "provider signature"}
	h := newHarness(t) // every port fake fails if called
	for _, r := range h.routes {
		if !strings.HasPrefix(r.path, "/v1/") {
			continue
		}
		if policy, ok := public[r.opID]; ok {
			assert.Falsef(t, r.bearer || r.role != "", "%s is listed as %s but requires a bearer token", r.opID, policy)
			continue
		}
		if !r.bearer {
			assert.Fail(t, fmt.Sprintf("%s %s has no access policy", r.method, r.path))
			continue
		}
		assert.Falsef(t, strings.HasPrefix(r.path, "/v1/admin/") != (r.role == RoleAdmin), "%s %s: role %q; every /v1/admin operation, and only those, require %q", r.method, r.path, r.role, RoleAdmin)
		path := samplePath(r.path)
		assert.Falsef(t, strings.Contains(path, "{"), "samplePath does not fill %s", path)
		var body any
		if r.body {
			body = appBody
		}
		for _, auth := range [][]string{nil, bearer("forged"), {"Authorization", "Bearer"}} {
			rec := h.do(req(r.method, path, body, auth...))
			problemOf(t, rec, 401, "unauthorized")
		}
		if r.role != "" {
			for _, tok := range []string{aliceToken, bobToken} {
				rec := h.do(req(r.method, path, body, bearer(tok)...))
				problemOf(t, rec, 403, "forbidden")
			}
		}
	}
	if n := h.admin.count() + h.ingestor.count() + h.deleter.count(); n != 0 {
		require.FailNow(t, fmt.Sprintf("refused requests reached a port %d times", n))
	}
}

// samplePath fills the path parameters of a spec path with valid values.
func samplePath(p string) string {
	return strings.NewReplacer(
		"{type}", "steps",
		"{provider}", "oura",
		"{name}", "metrics",
		"{generation}", "2",
		"{event_id}", "3f0e7a1c-2b4d-4c6e-8f9a-0b1c2d3e4f5a",
		"{id}", "6a1f0c3e-9b2d-4e5f-8a7b-1c2d3e4f5a6b",
	).Replace(p)
}

func TestMeIsScopedToTheToken(t *testing.T) {
	h := newHarness(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h.queries.me = func(_ context.Context, id uuid.UUID) (users.UserView, error) {
		if id == bob {
			return users.UserView{}, domain.ErrNotFound
		}
		return users.UserView{ID: id, Email: "ada@example.org", Timezone: "Asia/Tokyo", CreatedAt: created}, nil
	}
	rec := h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), alice.String()) || !strings.Contains(rec.Body.String(), `"created_at":"2026-01-02T03:04:05Z"`), "%d %s", rec.Code, rec.Body)
	// Bob's token is valid but his account is gone (erased meanwhile).
	h.accounts.registration = func(context.Context, uuid.UUID) (eventstore.Token, error) { return nil, domain.ErrNotFound }
	problemOf(t, h.do(req(http.MethodGet, "/v1/me", nil, bearer(bobToken)...)), 404, "not-found")
}

func TestMetricSeries(t *testing.T) {
	h := newHarness(t)
	var got metrics.MetricQuery
	h.queries.metrics = func(_ context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error) {
		got = q
		day := time.Date(2026, 11, 20, 0, 0, 0, 0, tokyo)
		return metrics.MetricSeries{Type: q.Type, Unit: "count", Bucket: q.Bucket, Points: []metrics.MetricPoint{
			// End comes back from the database in UTC; the response writes it in Start's offset.
			{Start: day, End: day.AddDate(0, 0, 1).UTC(), Value: 8000, Min: 10, Max: 900, Count: 24, Source: "apple_health"},
			{Start: day.AddDate(0, 0, 1), End: day.AddDate(0, 0, 2), Value: 5000, Min: 10, Max: 700, Count: 20},
		}}, nil
	}
	rec := h.do(req(http.MethodGet, "/v1/metrics/steps", nil, bearer(aliceToken)...))
	require.Falsef(t, rec.Code != 200, "%d %s", rec.Code, rec.Body)
	require.Falsef(t, got.UserID != alice || got.Type != metric.Steps || got.Bucket != "day" || !got.To.Equal(testNow) || !got.From.Equal(testNow.AddDate(0, 0, -7)), "query %+v", got)
	var out struct {
		Type, Unit, Bucket string
		Points             []map[string]any
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.Falsef(t, out.Type != "steps" || out.Unit != "count" || out.Bucket != "day" || len(out.Points) != 2, "%s", rec.Body)
	require.Falsef(t, out.Points[0]["start"] != "2026-11-20T00:00:00+09:00" || out.Points[0]["end"] != "2026-11-21T00:00:00+09:00" || out.Points[0]["source"] != "apple_health", "offsets not kept: %v", out.Points[0])
	if _, ok := out.Points[1]["source"]; ok {
		require.FailNow(t, fmt.Sprintf("empty source must be omitted: %v", out.Points[1]))
	}

	q := url.Values{"from": {"2026-11-01T00:00:00+09:00"}, "to": {"2026-11-02T00:00:00+09:00"}, "bucket": {"hour"}}
	rec = h.do(req(http.MethodGet, "/v1/metrics/heart_rate?"+q.Encode(), nil, bearer(bobToken)...))
	require.Falsef(t, rec.Code != 200 || got.UserID != bob || got.Type != metric.HeartRate || got.Bucket != "hour" ||
		!got.From.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, tokyo)) || !got.To.Equal(time.Date(2026, 11, 2, 0, 0, 0, 0, tokyo)), "%d %+v", rec.Code, got)
}

func TestMetricSeriesRejects(t *testing.T) {
	cases := []struct {
		name, target string
		status       int
		slug, field  string
	}{
		{"unknown type", "/v1/metrics/mood", 422, "validation", "/type"},
		{"unknown bucket", "/v1/metrics/steps?bucket=week", 422, "validation", "/bucket"},
		{"from after to", "/v1/metrics/steps?from=2026-11-10T00:00:00Z&to=2026-11-01T00:00:00Z", 422, "validation", "/from"},
		{"range over 400 days", "/v1/metrics/steps?from=2025-01-01T00:00:00Z&to=2026-11-01T00:00:00Z", 422, "validation", "/from"},
		{"raw over 31 days", "/v1/metrics/heart_rate?bucket=raw&from=2026-09-01T00:00:00Z&to=2026-11-01T00:00:00Z", 422, "validation", "/from"},
		{"from not RFC 3339", "/v1/metrics/steps?from=yesterday", 422, "validation", "/from"},
		{"unencoded plus", "/v1/metrics/steps?from=2026-11-01T00:00:00+09:00", 422, "validation", "/from"},
		{"bad consistency token", "/v1/metrics/steps", 400, "malformed-request", edge.HeaderConsistencyToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			r := req(http.MethodGet, tc.target, nil, bearer(aliceToken)...)
			if tc.field == edge.HeaderConsistencyToken {
				r.Header.Set(edge.HeaderConsistencyToken, "v2.nope")
			}
			hasField(t, problemOf(t, h.do(r), tc.status, tc.slug), tc.field)
		})
	}
}

func TestSleepSessions(t *testing.T) {
	h := newHarness(t)
	h.queries.sleep = func(_ context.Context, q metrics.SleepQuery) (metrics.SleepPage, error) {
		assert.Falsef(t, q.UserID != alice || !q.To.Equal(testNow) || !q.From.Equal(testNow.AddDate(0, 0, -7)) || q.Limit != queries.DefaultSleepPage || q.After != nil, "query %+v", q)
		return metrics.SleepPage{Sessions: []metrics.SleepSession{{
			Start: time.Date(2026, 11, 19, 23, 0, 0, 0, tokyo), End: time.Date(2026, 11, 20, 6, 30, 0, 0, tokyo),
			Date: "2026-11-20", Source: "oura", AsleepMinutes: 400, InBedMinutes: 450, AwakeMinutes: 50,
			LightMinutes: 200, DeepMinutes: 100, REMMinutes: 100, AlgorithmVersion: 1,
		}}}, nil
	}
	rec := h.do(req(http.MethodGet, "/v1/sleep/sessions", nil, bearer(aliceToken)...))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), `"date":"2026-11-20"`) || !strings.Contains(rec.Body.String(), `"start":"2026-11-19T23:00:00+09:00"`), "%d %s", rec.Code, rec.Body)
	h.queries.sleep = func(context.Context, metrics.SleepQuery) (metrics.SleepPage, error) {
		return metrics.SleepPage{}, nil
	}
	rec = h.do(req(http.MethodGet, "/v1/sleep/sessions", nil, bearer(aliceToken)...))
	require.Falsef(t, !strings.Contains(rec.Body.String(), `"sessions":[]`), "no sessions must be an empty list: %s", rec.Body)
}

func TestDashboardMatchesTheSpec(t *testing.T) {
	h := newHarness(t)
	avg := 48.5
	h.queries.dashboard = func(_ context.Context, id uuid.UUID, tok eventstore.Token) (metrics.Dashboard, error) {
		assert.Falsef(t, id != alice || tok != nil, "dashboard(%v, %v)", id, tok)
		return metrics.Dashboard{
			UserID: id, Date: "2026-11-20", Timezone: "Asia/Tokyo",
			Steps:       &metrics.DayValue{Date: "2026-11-20", Value: 8000, Source: "apple_health"},
			LastNight:   &metrics.SleepSummary{Date: "2026-11-20", Start: testNow.Add(-9 * time.Hour), End: testNow, AsleepMinutes: 420, Source: "oura"},
			HRV:         metrics.Baseline{Latest: &metrics.DayValue{Date: "2026-11-20", Value: 50}, Avg7: &avg, Unit: "ms"},
			RestingHR:   metrics.Baseline{Unit: "bpm"},
			Freshness:   []metrics.Freshness{{Provider: "oura", LastSampleAt: testNow, LastReceivedAt: testNow}},
			GeneratedAt: testNow,
		}, nil
	}
	rec := h.do(req(http.MethodGet, "/v1/dashboard/summary", nil, bearer(aliceToken)...)) // the harness validates the body against the spec
	require.Falsef(t, rec.Code != 200 || strings.Contains(rec.Body.String(), alice.String()), "%d %s", rec.Code, rec.Body)
	h.queries.dashboard = func(context.Context, uuid.UUID, eventstore.Token) (metrics.Dashboard, error) {
		return metrics.Dashboard{Date: "2026-11-20", Timezone: "UTC", GeneratedAt: testNow}, nil
	}
	if rec := h.do(req(http.MethodGet, "/v1/dashboard/summary", nil, bearer(aliceToken)...)); rec.Code != 200 {
		require.FailNow(t, fmt.Sprintf("empty dashboard: %d %s", rec.Code, rec.Body))
	}
}

func TestConsistencyTokenWait(t *testing.T) {
	tok := eventstore.Token{{Partition: 1, Offset: 10}, {Partition: 4, Offset: 7}}

	t.Run("reached", func(t *testing.T) {
		h := newHarness(t)
		var order []string
		h.queries.waitFor = func(_ context.Context, got eventstore.Token, models ...string) error {
			assert.Falsef(t, !slices.Equal(got, tok) || !slices.Equal(models, []string{"metrics"}), "WaitFor(%v, %v)", got, models)
			order = append(order, "wait")
			return nil
		}
		h.queries.dashboard = func(_ context.Context, _ uuid.UUID, got eventstore.Token) (metrics.Dashboard, error) {
			order = append(order, "read")
			assert.Falsef(t, !slices.Equal(got, tok), "dashboard got token %v", got)
			return metrics.Dashboard{Date: "2026-11-20", Timezone: "UTC", GeneratedAt: testNow}, nil
		}
		rec := h.do(req(http.MethodGet, "/v1/dashboard/summary", nil, append(bearer(aliceToken), edge.HeaderConsistencyToken, tok.String())...))
		require.Falsef(t, rec.Code != 200 || rec.Header().Get(edge.HeaderConsistency) != "reached" || !slices.Equal(order, []string{"wait", "read"}), "%d %v %v", rec.Code, rec.Header(), order)
	})

	t.Run("users read model for /v1/me", func(t *testing.T) {
		h := newHarness(t)
		h.queries.waitFor = func(_ context.Context, _ eventstore.Token, models ...string) error {
			assert.Falsef(t, !slices.Equal(models, []string{"users"}), "models %v", models)
			return nil
		}
		h.queries.me = func(_ context.Context, id uuid.UUID) (users.UserView, error) {
			return users.UserView{ID: id, Email: "a@b.org", Timezone: "UTC", CreatedAt: testNow}, nil
		}
		rec := h.do(req(http.MethodGet, "/v1/me", nil, append(bearer(aliceToken), edge.HeaderConsistencyToken, tok.String())...))
		require.Falsef(t, rec.Code != 200 || rec.Header().Get(edge.HeaderConsistency) != "reached", "%d %s", rec.Code, rec.Body)
	})

	t.Run("timeout serves the data with Consistency: timeout", func(t *testing.T) {
		h := newHarness(t, func(c *Config, _ *Deps) { c.ConsistencyWait = 50 * time.Millisecond })
		h.queries.waitFor = func(ctx context.Context, _ eventstore.Token, _ ...string) error {
			<-ctx.Done()
			return domain.ErrTimeout
		}
		h.queries.sleep = func(context.Context, metrics.SleepQuery) (metrics.SleepPage, error) {
			return metrics.SleepPage{}, nil
		}
		start := time.Now()
		rec := h.do(req(http.MethodGet, "/v1/sleep/sessions", nil, append(bearer(aliceToken), edge.HeaderConsistencyToken, tok.String())...))
		require.Falsef(t, rec.Code != 200 || rec.Header().Get(edge.HeaderConsistency) != "timeout", "%d %v", rec.Code, rec.Header())
		if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
			require.FailNow(t, fmt.Sprintf("waited %v", d))
		}
	})

	t.Run("malformed token is 400", func(t *testing.T) {
		h := newHarness(t)
		// Passes the spec's pattern, fails to decode.
		rec := h.do(req(http.MethodGet, "/v1/me", nil, append(bearer(aliceToken), edge.HeaderConsistencyToken, "v1.bm9wZQ")...))
		hasField(t, problemOf(t, rec, 400, "malformed-request"), edge.HeaderConsistencyToken)
	})

	t.Run("an oversized token is 400 too, as the spec says", func(t *testing.T) {
		h := newHarness(t)
		rec := h.do(req(http.MethodGet, "/v1/me", nil, append(bearer(aliceToken), edge.HeaderConsistencyToken, "v1."+strings.Repeat("A", 5000))...))
		hasField(t, problemOf(t, rec, 400, "malformed-request"), edge.HeaderConsistencyToken)
	})

	t.Run("read model down is 503", func(t *testing.T) {
		h := newHarness(t)
		h.queries.waitFor = func(context.Context, eventstore.Token, ...string) error { return domain.ErrUnavailable }
		rec := h.do(req(http.MethodGet, "/v1/metrics/steps", nil, append(bearer(aliceToken), edge.HeaderConsistencyToken, tok.String())...))
		problemOf(t, rec, 503, "unavailable")
	})

	t.Run("no token, no wait", func(t *testing.T) {
		h := newHarness(t) // WaitFor fails if called
		h.queries.me = func(_ context.Context, id uuid.UUID) (users.UserView, error) {
			return users.UserView{ID: id, Email: "a@b.org", Timezone: "UTC", CreatedAt: testNow}, nil
		}
		rec := h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...))
		require.Falsef(t, rec.Code != 200 || rec.Header().Get(edge.HeaderConsistency) != "", "%d %v", rec.Code, rec.Header())
	})
}
