package embedded

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-process Redis server (miniredis). It backs the cache and the
// rate limiter (miniredis runs the Lua scripts go-redis/redis_rate uses) in
// the single binary and in tests. It keeps everything in memory: the cache is
// rebuildable, so nothing is persisted. Create it with [StartRedis].
type Redis struct {
	srv *miniredis.Miniredis
}

// StartRedis starts an in-process Redis server on a random 127.0.0.1 port.
func StartRedis() (*Redis, error) {
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	return &Redis{srv: srv}, nil
}

// URL returns the server's address as a go-redis URL,
// "redis://127.0.0.1:<port>/0".
func (r *Redis) URL() string {
	return fmt.Sprintf("redis://%s/0", r.srv.Addr())
}

// Server exposes the miniredis instance, so tests can fast-forward TTLs or
// inspect keys directly.
func (r *Redis) Server() *miniredis.Miniredis { return r.srv }

// Close stops the server. It is safe to call twice.
func (r *Redis) Close() error {
	r.srv.Close()
	return nil
}
