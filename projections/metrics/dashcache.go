package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Cache is the summary cache port (Redis in production). Losing it loses
// nothing: every entry can be recomputed from PostgreSQL.
//
// Entries are versioned by the read model position they reflect, so that
// several instances refreshing the same entry cannot replace a newer one
// with an older one: the cache is shared, the computations are not ordered.
type Cache interface {
	// Get returns ErrCacheMiss when the key is absent or only marks a
	// version (see Invalidate).
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value unless the entry holds a newer version of the same
	// generation (a larger Next); it reports whether it stored.
	Put(ctx context.Context, key string, v CacheVersion, value []byte, ttl time.Duration) (bool, error)
	// Invalidate replaces the entries of keys by version marks unless they
	// are newer: readers miss, and a computation older than v that
	// finishes later cannot store its result.
	Invalidate(ctx context.Context, v CacheVersion, ttl time.Duration, keys ...string) error
}

// CacheVersion is the read model position a cached entry reflects: the
// projector generation and that generation's checkpoint (next offset) of
// the user's partition.
type CacheVersion struct {
	Generation int
	Next       int64
}

// ErrCacheMiss is returned by Cache.Get for an absent key.
var ErrCacheMiss = errors.New("cache miss")

// DashboardCache refreshes cached dashboards after the metrics projector
// commits (see Projector.AfterCommit). Refreshing is off the projector's hot
// path: at most two refreshes run in the background; when both are busy (or
// the projector is catching up) the entries are only deleted, in one call,
// and the next read recomputes them.
type DashboardCache struct {
	Reader *Reader

	once     sync.Once
	sem      chan struct{}
	mu       sync.Mutex
	last     map[uuid.UUID]time.Time // last recompute per user
	newest   map[refreshKey]int64    // newest committed position seen per user
	trailing map[uuid.UUID]bool      // a trailing recompute is scheduled
}

type refreshKey struct {
	user      uuid.UUID
	gen       int
	partition int32
}

// Refresh recomputes and stores the dashboards of users from generation gen,
// reflecting at least checkpoint next of partition (they are computed after
// the commit, so they may reflect more).
func (c *DashboardCache) Refresh(ctx context.Context, users []uuid.UUID, gen int, partition int32, next int64, catchingUp bool) {
	if c == nil || c.Reader == nil || c.Reader.Cache == nil || len(users) == 0 {
		return
	}
	c.once.Do(func() { c.sem = make(chan struct{}, 2) })
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = dashboardKey(u)
	}
	for _, u := range users {
		c.Reader.l1.Delete(u)
	}
	mark := CacheVersion{Generation: gen, Next: next}
	if catchingUp {
		_ = c.Reader.Cache.Invalidate(ctx, mark, c.Reader.cacheTTL(), keys...)
		return
	}
	select {
	case c.sem <- struct{}{}:
	default:
		_ = c.Reader.Cache.Invalidate(ctx, mark, c.Reader.cacheTTL(), keys...)
		return
	}
	// Recompute a user at most once per second; within that window the
	// entry is only invalidated and the next read recomputes it. A busy
	// user would otherwise cost a summary query set per batch.
	now := time.Now()
	var due []uuid.UUID
	var stale []string
	c.mu.Lock()
	if c.last == nil || len(c.last) > 100_000 {
		c.last, c.newest, c.trailing = map[uuid.UUID]time.Time{}, map[refreshKey]int64{}, map[uuid.UUID]bool{}
	}
	for _, u := range users {
		if k := (refreshKey{u, gen, partition}); next > c.newest[k] {
			c.newest[k] = next
		}
		if now.Sub(c.last[u]) >= time.Second {
			c.last[u] = now
			due = append(due, u)
			continue
		}
		stale = append(stale, dashboardKey(u))
		if !c.trailing[u] { // recompute once more when the window ends
			c.trailing[u] = true
			u := u
			time.AfterFunc(time.Second, func() {
				c.mu.Lock()
				delete(c.trailing, u)
				n := c.newest[refreshKey{u, gen, partition}]
				c.mu.Unlock()
				c.Refresh(context.WithoutCancel(ctx), []uuid.UUID{u}, gen, partition, n, false)
			})
		}
	}
	c.mu.Unlock()
	if len(stale) > 0 {
		_ = c.Reader.Cache.Invalidate(ctx, mark, c.Reader.cacheTTL(), stale...)
	}
	if len(due) == 0 {
		<-c.sem
		return
	}
	users = due
	go func() {
		defer func() { <-c.sem }()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, u := range users {
			d, err := c.Reader.computeDashboard(rctx, u, gen)
			if err != nil {
				_ = c.Reader.Cache.Invalidate(rctx, mark, c.Reader.cacheTTL(), dashboardKey(u))
				continue
			}
			c.mu.Lock()
			newer := c.newest[refreshKey{u, gen, partition}] > next
			c.mu.Unlock()
			if newer { // a later commit happened meanwhile: its refresh will store
				continue
			}
			c.Reader.store(rctx, cachedDashboard{Generation: gen, Partition: partition, Next: next, Dashboard: d})
		}
	}()
}
