package main

import (
	"fmt"
	"sync"
	"testing"
	"time"
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
	if code != 201 {
		t.Fatalf("register = %d %v", code, body)
	}
	userID := body["id"].(string)
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)

	code, gh, doc := c.do("GET", "/v1/me/settings", nil, map[string]string{"X-Consistency-Token": h.Get("X-Consistency-Token")})
	if code != 200 || gh.Get("ETag") != `"0"` || doc["timezone"] != "America/New_York" || doc["units"] != "metric" || doc["display_name"] != "" {
		t.Fatalf("defaults = %d %v %v", code, gh, doc)
	}
	edit := map[string]any{"display_name": "Grace", "timezone": "America/New_York", "units": "imperial"}
	if code, _, p := c.do("PUT", "/v1/me/settings", edit, nil); code != 428 {
		t.Fatalf("PUT without If-Match = %d %v", code, p)
	}

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
				if h.Get("ETag") != `"1"` || out["version"] != 1.0 {
					t.Errorf("winner's answer %v %v", h, out)
				}
			}
		})
	}
	wg.Wait()
	if codes[200] != 1 || codes[409] != 5 {
		t.Fatalf("concurrent PUTs on one ETag: %v, want one 200 and five 409", codes)
	}
	code, gh, doc = c.do("GET", "/v1/me/settings", nil, map[string]string{"X-Consistency-Token": winnerToken})
	if code != 200 || gh.Get("ETag") != `"1"` || doc["display_name"] != winner["display_name"] || doc["timezone"] != winner["timezone"] || doc["units"] != "imperial" {
		t.Fatalf("read model = %d %v, want the winner %v", code, doc, winner)
	}

	if code, _, me := c.do("GET", "/v1/me", nil, map[string]string{"X-Consistency-Token": winnerToken}); code != 200 || me["timezone"] != winner["timezone"] {
		t.Fatalf("GET /v1/me after the change = %d %v, want the timezone %v", code, me, winner["timezone"])
	}

	push := []byte(`{"user_id":"` + userID + `","source":{"provider":"bridge","device":"watch"},"samples":[
		{"type":"distance","start":"2026-11-20T08:00:00-05:00","end":"2026-11-20T08:30:00-05:00","value":1.609344,"unit":"km"}]}`)
	code, ph, _ := signedPush(t, c, "msg_settings_e2e", push)
	if code != 202 {
		t.Fatalf("push = %d", code)
	}
	code, _, series := c.do("GET", "/v1/metrics/distance?from=2026-11-19T00:00:00Z&to=2026-11-22T00:00:00Z&bucket=day", nil, map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")})
	points, _ := series["points"].([]any)
	if code != 200 || series["unit"] != "mi" || len(points) != 1 || points[0].(map[string]any)["value"] != 1.0 {
		t.Fatalf("distance for an imperial user = %d %v, want 1 mi", code, series)
	}

	prefs := map[string]any{"daily_summary": map[string]any{"enabled": true, "time": "07:00"}, "quiet_hours": nil, "channels": map[string]any{"email": false, "push": true}}
	code, nh, np := c.do("PUT", "/v1/me/notification-preferences", prefs, map[string]string{"If-Match": `"0"`})
	if code != 200 || nh.Get("ETag") != `"1"` {
		t.Fatalf("PUT notification preferences = %d %v", code, np)
	}
	code, _, np = c.do("GET", "/v1/me/notification-preferences", nil, map[string]string{"X-Consistency-Token": nh.Get("X-Consistency-Token")})
	if code != 200 || np["quiet_hours"] != nil || np["daily_summary"].(map[string]any)["enabled"] != true || np["version"] != 1.0 {
		t.Fatalf("notification preferences = %d %v", code, np)
	}
}
