package redis_test

import (
	"context"
	"testing"
	"time"

	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/stretchr/testify/require"
)

// TestAnOlderSummaryNeverReplacesANewerOne: two instances refresh the same
// user's summary; the one that computed from an older checkpoint finishes
// last and must not overwrite the newer entry, and an invalidation mark at
// a position keeps out everything computed before it.
func TestAnOlderSummaryNeverReplacesANewerOne(t *testing.T) {
	ctx := context.Background()
	url := testbackend.Redis(t)
	a, err := bredis.Open(url)
	require.NoError(t, err)
	defer a.Close()
	b, err := bredis.Open(url)
	require.NoError(t, err)
	defer b.Close()
	one, two := bredis.Cache{C: a}, bredis.Cache{C: b}
	key, ttl := testbackend.UniqueName(t, "biosync:dashboard:v1:"), time.Minute
	entry := func() string {
		t.Helper()
		v, err := one.Get(ctx, key)
		if err == metrics.ErrCacheMiss {
			return "miss"
		}
		require.NoError(t, err)
		return string(v)
	}
	// Each step either puts a summary computed at a version or, with
	// invalidate, marks an invalidation at that version; then the entry
	// must read as then ("miss": none).
	for _, step := range []struct {
		what       string
		by         bredis.Cache
		invalidate bool
		at         metrics.CacheVersion
		body       string
		stored     bool
		then       string
	}{
		{what: "first put", by: one, at: metrics.CacheVersion{Generation: 1, Next: 120}, body: "at 120", stored: true, then: "at 120"},
		{what: "an older summary never replaces a newer one", by: two, at: metrics.CacheVersion{Generation: 1, Next: 100}, body: "at 100", stored: false, then: "at 120"},
		{what: "an equally fresh summary replaces", by: two, at: metrics.CacheVersion{Generation: 1, Next: 120}, body: "also at 120", stored: true, then: "also at 120"},
		{what: "after invalidation the entry misses", by: one, invalidate: true, at: metrics.CacheVersion{Generation: 1, Next: 130}, then: "miss"},
		{what: "a summary computed before the invalidation stays out", by: two, at: metrics.CacheVersion{Generation: 1, Next: 125}, body: "at 125", stored: false, then: "miss"},
		{what: "another generation always replaces", by: two, at: metrics.CacheVersion{Generation: 2, Next: 3}, body: "gen 2", stored: true, then: "gen 2"},
	} {
		if step.invalidate {
			require.NoError(t, step.by.Invalidate(ctx, step.at, ttl, key), step.what)
		} else {
			stored, err := step.by.Put(ctx, key, step.at, []byte(step.body), ttl)
			require.NoError(t, err, step.what)
			require.Equal(t, step.stored, stored, "%s: stored", step.what)
		}
		require.Equal(t, step.then, entry(), step.what)
	}
}
