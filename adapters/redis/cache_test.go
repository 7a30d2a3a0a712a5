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
	b, _ := bredis.Open(url)
	defer b.Close()
	one, two := bredis.Cache{C: a}, bredis.Cache{C: b}
	key, ttl := testbackend.UniqueName(t, "biosync:dashboard:v1:"), time.Minute
	got := func() string {
		t.Helper()
		v, err := one.Get(ctx, key)
		if err == metrics.ErrCacheMiss {
			return "miss"
		}
		require.NoError(t, err)
		return string(v)
	}
	ok, err := one.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 120}, []byte("at 120"), ttl)
	require.True(t, ok, "first put: %v %v", ok, err)
	require.NoError(t, err, "first put: %v", ok)
	ok, _ = two.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 100}, []byte("at 100"), ttl)
	require.False(t, ok, "an older summary replaced a newer one: stored=%v, now %q", ok, got())
	require.Equal(t, "at 120", got(), "an older summary replaced a newer one: stored=%v, now %q", ok, got())
	ok, _ = two.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 120}, []byte("also at 120"), ttl)
	require.True(t, ok, "an equally fresh summary must replace: %v %q", ok, got())
	require.Equal(t, "also at 120", got(), "an equally fresh summary must replace: %v %q", ok, got())
	require.NoError(t, one.Invalidate(ctx, metrics.CacheVersion{Generation: 1, Next: 130}, ttl, key))
	require.Equal(t, "miss", got(), "after invalidation the entry must miss, got %q", got())
	ok, _ = two.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 125}, []byte("at 125"), ttl)
	require.False(t, ok, "a summary computed before the invalidation was stored: %v %q", ok, got())
	require.Equal(t, "miss", got(), "a summary computed before the invalidation was stored: %v %q", ok, got())
	ok, _ = two.Put(ctx, key, metrics.CacheVersion{Generation: 2, Next: 3}, []byte("gen 2"), ttl)
	require.True(t, ok, "another generation always replaces: %v %q", ok, got())
	require.Equal(t, "gen 2", got(), "another generation always replaces: %v %q", ok, got())
}
