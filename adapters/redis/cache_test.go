package redis_test

import (
	"context"
	"testing"
	"time"

	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/projections/metrics"
)

// TestAnOlderSummaryNeverReplacesANewerOne: two instances refresh the same
// user's summary; the one that computed from an older checkpoint finishes
// last and must not overwrite the newer entry, and an invalidation mark at
// a position keeps out everything computed before it.
func TestAnOlderSummaryNeverReplacesANewerOne(t *testing.T) {
	ctx := context.Background()
	url := testbackend.Redis(t)
	a, err := bredis.Open(url)
	if err != nil {
		t.Fatal(err)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if ok, err := one.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 120}, []byte("at 120"), ttl); !ok || err != nil {
		t.Fatalf("first put: %v %v", ok, err)
	}
	if ok, _ := two.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 100}, []byte("at 100"), ttl); ok || got() != "at 120" {
		t.Fatalf("an older summary replaced a newer one: stored=%v, now %q", ok, got())
	}
	if ok, _ := two.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 120}, []byte("also at 120"), ttl); !ok || got() != "also at 120" {
		t.Fatalf("an equally fresh summary must replace: %v %q", ok, got())
	}
	if err := one.Invalidate(ctx, metrics.CacheVersion{Generation: 1, Next: 130}, ttl, key); err != nil {
		t.Fatal(err)
	}
	if got() != "miss" {
		t.Fatalf("after invalidation the entry must miss, got %q", got())
	}
	if ok, _ := two.Put(ctx, key, metrics.CacheVersion{Generation: 1, Next: 125}, []byte("at 125"), ttl); ok || got() != "miss" {
		t.Fatalf("a summary computed before the invalidation was stored: %v %q", ok, got())
	}
	if ok, _ := two.Put(ctx, key, metrics.CacheVersion{Generation: 2, Next: 3}, []byte("gen 2"), ttl); !ok || got() != "gen 2" {
		t.Fatalf("another generation always replaces: %v %q", ok, got())
	}
}
