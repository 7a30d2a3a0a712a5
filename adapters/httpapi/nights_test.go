package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/projections/metrics"
)

// TestNightsComeInPagesWithNullsForMissingInputs: GET /v1/nights asks the
// read model for the caller's wake dates, answers the contract's fields
// with null where an input is missing (never 0), and pages by wake date
// with next and Link until the last page.
func TestNightsComeInPagesWithNullsForMissingInputs(t *testing.T) {
	h := newHarness(t)
	f := func(v float64) *float64 { return &v }
	stored := []metrics.Night{
		{Date: "2026-11-02", Source: "oura", SleepMinutes: 435, InBedMinutes: 480, DeepSleepMinutes: 120, REMSleepMinutes: 150,
			SleepLatencyMinutes: f(15), SleepEfficiency: f(0.90625), HRVRMSSD: f(50), RestingHeartRate: f(48), RespiratoryRate: f(15.5),
			SkinTemperatureDeviation: f(0.3), Naps: 1, AlgorithmVersion: 1},
		{Date: "2026-11-03", Source: "garmin/fenix", SleepMinutes: 400, InBedMinutes: 420, AlgorithmVersion: 1},
		{Date: "2026-11-05", Source: "oura", SleepMinutes: 300, InBedMinutes: 360, AlgorithmVersion: 1},
	}
	var queries []metrics.NightsQuery
	h.queries.nights = func(_ context.Context, q metrics.NightsQuery) (metrics.NightsPage, error) {
		queries = append(queries, q)
		assert.Equal(t, alice, q.UserID)
		out := metrics.NightsPage{Nights: []metrics.Night{}}
		for _, n := range stored {
			if n.Date < q.From || n.Date > q.To || n.Date <= q.After {
				continue
			}
			if len(out.Nights) == q.Limit {
				out.Next = out.Nights[len(out.Nights)-1].Date
				break
			}
			out.Nights = append(out.Nights, n)
		}
		return out, nil
	}
	type page struct {
		Nights []map[string]any `json:"nights"`
		Next   *string          `json:"next"`
	}
	rec := h.do(req(http.MethodGet, "/v1/nights?from=2026-11-01&to=2026-11-30&limit=2", nil, bearer(aliceToken)...))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var p page
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Len(t, p.Nights, 2)
	assert.Equal(t, map[string]any{"date": "2026-11-02", "source": "oura", "sleep_minutes": 435.0, "in_bed_minutes": 480.0,
		"deep_sleep_minutes": 120.0, "rem_sleep_minutes": 150.0, "sleep_latency_minutes": 15.0, "sleep_efficiency": 0.90625,
		"hrv_rmssd": 50.0, "resting_heart_rate": 48.0, "respiratory_rate": 15.5, "skin_temperature_deviation": 0.3, "naps": 1.0}, p.Nights[0])
	for _, k := range []string{"sleep_latency_minutes", "sleep_efficiency", "hrv_rmssd", "resting_heart_rate", "respiratory_rate", "skin_temperature_deviation"} {
		v, ok := p.Nights[1][k]
		assert.True(t, ok, "%s is in the answer", k)
		assert.Nil(t, v, "%s of a night without it is null", k)
	}
	require.NotNil(t, p.Next)
	assert.Equal(t, "<"+*p.Next+`>; rel="next"`, rec.Header().Get("Link"))

	rec = h.do(req(http.MethodGet, *p.Next, nil, bearer(aliceToken)...))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	p = page{}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Len(t, p.Nights, 1)
	assert.Equal(t, "2026-11-05", p.Nights[0]["date"])
	assert.Nil(t, p.Next)
	assert.Empty(t, rec.Header().Get("Link"))
	require.Len(t, queries, 2)
	assert.Equal(t, metrics.NightsQuery{UserID: alice, From: "2026-11-01", To: "2026-11-30", Limit: 2, After: "2026-11-03"}, queries[1])

	// An RFC 3339 bound names its own day; a range the wrong way round,
	// a bad date and a range over 400 days are refused.
	rec = h.do(req(http.MethodGet, "/v1/nights?from=2026-11-03T23:30:00%2B09:00&to=2026-11-04", nil, bearer(aliceToken)...))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, "2026-11-03", queries[2].From)
	hasField(t, problemOf(t, h.do(req(http.MethodGet, "/v1/nights?from=2026-11-05&to=2026-11-01", nil, bearer(aliceToken)...)), 422, "validation"), "/from")
	hasField(t, problemOf(t, h.do(req(http.MethodGet, "/v1/nights?from=yesterday", nil, bearer(aliceToken)...)), 422, "validation"), "/from")
	hasField(t, problemOf(t, h.do(req(http.MethodGet, "/v1/nights?from=2025-01-01&to=2026-11-30", nil, bearer(aliceToken)...)), 422, "validation"), "/to")
}
