package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJournalEndToEnd runs the journal through `serve`: concurrent first
// entries for one day (one 201, the rest 409 naming it), read-your-writes
// with the consistency token, a replacement with If-Match (428 without,
// 409 stale), a timezone change that moves nothing, tag counts, and a
// deletion that frees the day.
func TestJournalEndToEnd(t *testing.T) {
	s := startServer(t, backendEnv(t))
	defer s.stop()
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("journal-%d@example.com", time.Now().UnixNano())
	code, _, body := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "Pacific/Auckland"}, nil)
	require.Equal(t, 201, code, "register: %v", body)
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token = login["access_token"].(string)

	entry := map[string]any{"date": "2026-11-19", "tags": []map[string]any{{"name": "alcohol_drinks", "amount": 2}, {"name": "late_meal"}},
		"mood": 6, "note": "Rioja at dinner"}
	var mu sync.Mutex
	codes := map[int]int{}
	var created map[string]any
	var createdToken string
	var conflicts []map[string]any
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			code, h, out := c.do("POST", "/v1/journal/entries", entry, nil)
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			switch code {
			case 201:
				created, createdToken = out, h.Get("X-Consistency-Token")
				assert.Equal(t, `"1"`, h.Get("ETag"))
			case 409:
				conflicts = append(conflicts, out)
			}
		})
	}
	wg.Wait()
	require.Equal(t, map[int]int{201: 1, 409: 4}, codes, "concurrent first entries for one day")
	id := created["id"].(string)
	for _, p := range conflicts {
		assert.Equal(t, id, p["existing_id"], "the conflict names the entry that holds the day: %v", p)
	}

	code, gh, got := c.do("GET", "/v1/journal/entries/"+id, nil, map[string]string{"X-Consistency-Token": createdToken})
	require.Equal(t, 200, code, "read your write: %v", got)
	assert.Equal(t, "reached", gh.Get("Consistency"))
	assert.Equal(t, "Rioja at dinner", got["note"])
	assert.Equal(t, "2026-11-19", got["date"])

	replacement := map[string]any{"date": "2026-11-19", "tags": []map[string]any{{"name": "alcohol_drinks", "amount": 3}}, "stress": 7}
	code, _, p := c.do("PUT", "/v1/journal/entries/"+id, replacement, nil)
	require.Equal(t, 428, code, "PUT without If-Match: %v", p)
	code, ph, p := c.do("PUT", "/v1/journal/entries/"+id, replacement, map[string]string{"If-Match": `"1"`})
	require.Equal(t, 200, code, "PUT: %v", p)
	assert.Equal(t, `"2"`, ph.Get("ETag"))
	code, _, p = c.do("PUT", "/v1/journal/entries/"+id, entry, map[string]string{"If-Match": `"1"`})
	require.Equal(t, 409, code, "stale PUT: %v", p)

	// The user moves to another zone: the entry keeps the day they named.
	code, sh, p := c.do("PUT", "/v1/me/settings", map[string]any{"display_name": "", "timezone": "America/Los_Angeles", "units": "metric"},
		map[string]string{"If-Match": `"0"`})
	require.Equal(t, 200, code, "settings: %v", p)
	code, _, list := c.do("GET", "/v1/journal/entries?from=2026-11-01&to=2026-11-30", nil, map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "list: %v", list)
	entries := list["entries"].([]any)
	require.Len(t, entries, 1)
	e := entries[0].(map[string]any)
	assert.Equal(t, "2026-11-19", e["date"], "after a timezone change (%s)", sh.Get("X-Consistency-Token"))
	assert.EqualValues(t, 2, e["version"])
	assert.Nil(t, e["note"], "the whole entry was replaced")

	code, _, tags := c.do("GET", "/v1/journal/tags", nil, nil)
	require.Equal(t, 200, code, "tags: %v", tags)
	assert.Equal(t, []any{map[string]any{"name": "alcohol_drinks", "count": 1.0, "last_used": "2026-11-19", "total_amount": 3.0}}, tags["tags"])

	code, _, p = c.do("DELETE", "/v1/journal/entries/"+id, nil, map[string]string{"If-Match": `"2"`})
	require.Equal(t, 204, code, "DELETE: %v", p)
	code, _, p = c.do("POST", "/v1/journal/entries", entry, nil)
	require.Equal(t, 201, code, "the day is free again: %v", p)
	assert.NotEqual(t, id, p["id"])
}
