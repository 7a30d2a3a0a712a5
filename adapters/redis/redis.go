package redis

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections"
)

// Open connects to the Redis at url (redis://host:port/db) with short
// timeouts: a slow cache must not slow requests down.
func Open(url string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DialTimeout = 500 * time.Millisecond
	opt.ReadTimeout = 300 * time.Millisecond
	opt.WriteTimeout = 300 * time.Millisecond
	opt.MaxRetries = 1
	return goredis.NewClient(opt), nil
}

// Cache implements projections.Cache.
type Cache struct{ C *goredis.Client }

// Get returns projections.ErrCacheMiss for absent keys.
func (c Cache) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := c.C.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, projections.ErrCacheMiss
	}
	return b, err
}

// Set stores value with a TTL.
func (c Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return c.C.Set(ctx, key, value, ttl).Err()
}

// Del removes keys.
func (c Cache) Del(ctx context.Context, keys ...string) error { return c.C.Del(ctx, keys...).Err() }

// Dedup implements commands.Dedup with keys that expire after TTL (default
// 7 days, longer than any provider's redelivery window).
type Dedup struct {
	C   *goredis.Client
	TTL time.Duration
}

func dedupKey(id uuid.UUID) string { return "biosync:delivery:v1:" + id.String() }

// Lookup returns the token of an accepted delivery.
func (d Dedup) Lookup(ctx context.Context, id uuid.UUID) (eventstore.Token, bool) {
	s, err := d.C.Get(ctx, dedupKey(id)).Result()
	if err != nil {
		return nil, false
	}
	t, err := eventstore.ParseToken(s)
	if err != nil || len(t) == 0 {
		return nil, false
	}
	return t, true
}

// Remember stores the token of an accepted delivery (best effort).
func (d Dedup) Remember(ctx context.Context, id uuid.UUID, t eventstore.Token) {
	ttl := d.TTL
	if ttl == 0 {
		ttl = 7 * 24 * time.Hour
	}
	_ = d.C.Set(ctx, dedupKey(id), t.String(), ttl).Err()
}
