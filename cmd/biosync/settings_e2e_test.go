package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSettingsEndToEnd runs the settings documents through `serve`:
// defaults from registration, 428 without If-Match, concurrent edits on
// one ETag (one 200, the rest 409, the read model is the winner's), and an
// imperial user reading distance in miles with read-your-writes.
func TestSettingsEndToEnd(t *testing.T) {
	s := startServer(t, backendEnv(t))
	defer s.stop()
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("grace-%d@example.com", time.Now().UnixNano())
	code, h, body := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "America/New_York"}, nil)
	require.Equal(t, 201, code, "register: %v", body)
	userID := body["id"].(string)
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)

	code, gh, doc := c.do("GET", "/v1/me/settings", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "defaults: %v %v", gh, doc)
	require.Equal(t, `"0"`, gh.Get("ETag"), "defaults: %v", doc)
	require.Equal(t, "America/New_York", doc["timezone"], "defaults: %v", doc)
	require.Equal(t, "metric", doc["units"], "defaults: %v", doc)
	require.Equal(t, "", doc["display_name"], "defaults: %v", doc)
	edit := map[string]any{"display_name": "Grace", "timezone": "America/New_York", "units": "imperial"}
	code, _, p := c.do("PUT", "/v1/me/settings", edit, nil)
	require.Equal(t, 428, code, "PUT without If-Match: %v", p)

	var mu sync.Mutex
	codes := map[int]int{}
	var winner map[string]any
	var winnerToken string
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			doc := map[string]any{"display_name": fmt.Sprintf("Grace %d", i), "timezone": []string{"America/New_York", "Europe/Berlin"}[i%2], "units": "imperial"}
			code, h, out := c.do("PUT", "/v1/me/settings", doc, map[string]string{"If-Match": gh.Get("ETag")})
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if code == 200 {
				winner, winnerToken = doc, h.Get("X-Consistency-Token")
				// assert, not require: this runs on another goroutine.
				assert.Equal(t, `"1"`, h.Get("ETag"), "winner's answer %v", out)
				assert.Equal(t, 1.0, out["version"], "winner's answer %v", out)
			}
		})
	}
	wg.Wait()
	require.Equal(t, map[int]int{200: 1, 409: 5}, codes, "concurrent PUTs on one ETag: want one 200 and five 409")
	code, gh, doc = c.do("GET", "/v1/me/settings", nil, map[string]string{"X-Consistency-Token": winnerToken})
	require.Equal(t, 200, code, "read model: %v", doc)
	require.Equal(t, `"1"`, gh.Get("ETag"), "read model: %v", doc)
	require.Equal(t, winner["display_name"], doc["display_name"], "read model %v, want the winner %v", doc, winner)
	require.Equal(t, winner["timezone"], doc["timezone"], "read model %v, want the winner %v", doc, winner)
	require.Equal(t, "imperial", doc["units"], "read model: %v", doc)

	code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": winnerToken})
	require.Equal(t, 200, code, "GET /v1/me after the change: %v", me)
	require.Equal(t, winner["timezone"], me["timezone"], "GET /v1/me after the change")

	push := []byte(`{"user_id":"` + userID + `","source":{"provider":"bridge","device":"watch"},"samples":[
		{"type":"distance","start":"2026-11-20T08:00:00-05:00","end":"2026-11-20T08:30:00-05:00","value":1.609344,"unit":"km"}]}`)
	code, ph, _ := signedPush(t, c, "msg_settings_e2e", push)
	require.Equal(t, 202, code, "push")
	code, _, series := c.do("GET", "/v1/metrics/distance?from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z&bucket=day", nil, map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")})
	points, _ := series["points"].([]any)
	require.Equal(t, 200, code, "distance for an imperial user: %v", series)
	require.Equal(t, "mi", series["unit"], "distance for an imperial user: %v", series)
	require.Len(t, points, 1, "distance for an imperial user: %v", series)
	require.Equal(t, 1.0, points[0].(map[string]any)["value"], "distance for an imperial user: want 1 mi")

	prefs := map[string]any{"daily_summary": map[string]any{"enabled": true, "time": "07:00"}, "quiet_hours": nil, "channels": map[string]any{"email": false, "push": true}}
	code, nh, np := c.do("PUT", "/v1/me/notification-preferences", prefs, map[string]string{"If-Match": `"0"`})
	require.Equal(t, 200, code, "PUT notification preferences: %v", np)
	require.Equal(t, `"1"`, nh.Get("ETag"), "PUT notification preferences: %v", np)
	code, _, np = c.do("GET", "/v1/me/notification-preferences", nil, map[string]string{"X-Consistency-Token": nh.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "notification preferences: %v", np)
	require.Nil(t, np["quiet_hours"], "notification preferences: %v", np)
	require.Equal(t, true, np["daily_summary"].(map[string]any)["enabled"], "notification preferences: %v", np)
	require.Equal(t, 1.0, np["version"], "notification preferences: %v", np)
}
