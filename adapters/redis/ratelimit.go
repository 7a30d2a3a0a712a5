package redis

import (
	"context"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
)

// Limiter counts requests against GCRA limits shared by every instance
// (go-redis/redis_rate), under its own key prefix so tests and tenants
// sharing one Redis do not count each other's requests.
type Limiter struct {
	l      *redis_rate.Limiter
	prefix string
}

// NewLimiter returns a Limiter over c; prefix defaults to "biosync:".
func NewLimiter(c *goredis.Client, prefix string) Limiter {
	if prefix == "" {
		prefix = "biosync:"
	}
	return Limiter{l: redis_rate.NewLimiter(c), prefix: prefix + "rl:v1:"}
}

// Allow counts one request under key and tells whether it is within limit
// (and, when not, how long until it would be).
func (l Limiter) Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error) {
	return l.l.Allow(ctx, l.prefix+key, limit)
}
