package main

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAFarFutureSampleAcceptedTodayCanBeDeletedAndItsRangeReadsAfterwards:
// a deployment that trusts its senders' clocks (BIOSYNC_MAX_FUTURE_SKEW of
// a century) accepts a sample from a watch whose clock says 2099. It sits
// in the read models and pins the source's freshness to 2099; another
// user's deletion of that range leaves it; its owner deletes that day of
// that source over HTTP (202, consistency token, a retry with the same
// Idempotency-Key replayed), and reads of the range with the token answer
// 200 without it while today's sample stays.
func TestAFarFutureSampleAcceptedTodayCanBeDeletedAndItsRangeReadsAfterwards(t *testing.T) {
	env := backendEnv(t)
	env["BIOSYNC_MAX_FUTURE_SKEW"] = "876000h"
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	registerAndLogIn(t, c)

	now := time.Now().UTC().Truncate(time.Second)
	todayEnd := now.Add(-time.Minute)
	body := []byte(`{"source":{"provider":"garmin","device":"fenix"},"samples":[` +
		`{"type":"steps","start":"` + now.Add(-2*time.Minute).Format(time.RFC3339) + `","end":"` + todayEnd.Format(time.RFC3339) + `","value":120,"unit":"count"},` +
		`{"type":"steps","start":"2099-03-01T10:00:00+01:00","end":"2099-03-01T11:00:00+01:00","value":5000,"unit":"count"},` +
		`{"type":"heart_rate","start":"2099-03-01T10:00:00+01:00","end":"2099-03-01T10:00:00+01:00","value":61,"unit":"bpm"}]}`)
	code, ph, p := c.do("POST", "/v1/me/samples", body, nil)
	require.Equal(t, 202, code, "a sample from 2099 is accepted by this deployment: %v", p)
	pushed := map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")}

	farDay := url.Values{"from": {"2099-03-01T00:00:00Z"}, "to": {"2099-03-02T00:00:00Z"}}
	series := func(typ, bucket string, tok map[string]string) []any {
		t.Helper()
		q := url.Values{"from": farDay["from"], "to": farDay["to"], "bucket": {bucket}}
		code, h, out := c.do("GET", "/v1/metrics/"+typ+"?"+q.Encode(), nil, tok)
		require.Equal(t, 200, code, "GET %s %s of the far-future day: %v", typ, bucket, out)
		assert.Equal(t, "reached", h.Get("Consistency"))
		points, _ := out["points"].([]any)
		return points
	}
	require.Len(t, series("steps", "raw", pushed), 1, "the far-future steps are stored")
	freshness := func(tok map[string]string) time.Time {
		t.Helper()
		code, _, d := c.do("GET", "/v1/dashboard/summary", nil, tok)
		require.Equal(t, 200, code, "dashboard: %v", d)
		fresh, _ := d["freshness"].([]any)
		require.Len(t, fresh, 1, "freshness: %v", d["freshness"])
		at, err := time.Parse(time.RFC3339, fresh[0].(map[string]any)["last_sample_at"].(string))
		require.NoError(t, err)
		return at
	}
	assert.Equal(t, 2099, freshness(pushed).Year(), "the wrong clock pins garmin's newest sample to 2099")

	target := "/v1/me/samples?" + url.Values{"from": farDay["from"], "to": farDay["to"], "source": {"garmin"}}.Encode()
	// Another user deleting the same range deletes their own data only.
	other := &client{t: t, base: s.url}
	registerAndLogIn(t, other)
	code, oh, p := other.do("DELETE", target, nil, nil)
	require.Equal(t, 202, code, "another user's deletion: %v", p)
	require.Len(t, series("steps", "raw", map[string]string{"X-Consistency-Token": oh.Get("X-Consistency-Token")}), 1,
		"another user's deletion of the same range leaves this user's sample")

	key := map[string]string{"Idempotency-Key": "delete-2099"}
	code, dh, del := c.do("DELETE", target, nil, key)
	require.Equal(t, 202, code, "delete the far-future day: %v", del)
	require.NotEmpty(t, dh.Get("X-Consistency-Token"))
	assert.NotEmpty(t, del["event_id"])
	assert.Equal(t, "garmin", del["source"])
	code, rh, again := c.do("DELETE", target, nil, key)
	require.Equal(t, 202, code, "a retry with the same key: %v", again)
	assert.Equal(t, "true", rh.Get("Idempotent-Replayed"), "the retry is the original answer, not a second deletion")
	assert.Equal(t, del["event_id"], again["event_id"])

	deleted := map[string]string{"X-Consistency-Token": dh.Get("X-Consistency-Token")}
	for _, typ := range []string{"steps", "heart_rate"} {
		for _, bucket := range []string{"raw", "hour", "day"} {
			assert.Empty(t, series(typ, bucket, deleted), "%s %s of the far-future day after the deletion", typ, bucket)
		}
	}
	code, _, sleep := c.do("GET", "/v1/sleep/sessions?"+farDay.Encode(), nil, deleted)
	assert.Equal(t, 200, code, "sleep sessions of the far-future day: %v", sleep)
	assert.Equal(t, todayEnd, freshness(deleted), "garmin's newest sample is today's again")
	q := url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}, "bucket": {"raw"}}
	code, _, today := c.do("GET", "/v1/metrics/steps?"+q.Encode(), nil, deleted)
	require.Equal(t, 200, code, "%v", today)
	assert.Len(t, today["points"], 1, "today's steps are outside the deleted range and stay")
}
