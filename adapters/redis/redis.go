package redis

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/metrics"
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

// Cache implements metrics.Cache. Values are stored as
// "<generation>:<next>:<payload>"; a mark (Invalidate) has an empty
// payload. Put and Invalidate compare versions in a Lua script, so the
// check and the write are one atomic step for every instance.
type Cache struct{ C *goredis.Client }

// putScript stores ARGV[3] under KEYS[1] versioned (ARGV[1] generation,
// ARGV[2] next) for ARGV[4] ms, unless the stored entry has the same
// generation and a larger next. Another generation always replaces it (a
// switch or a rollback makes the other generation's entries useless).
var putScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local g, n = string.match(cur, '^(%d+):(%-?%d+):')
  if g and tonumber(g) == tonumber(ARGV[1]) and tonumber(n) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[3], 'PX', ARGV[4])
return 1`)

// Get returns the payload, or metrics.ErrCacheMiss for an absent key,
// a mark or an entry in another format.
func (c Cache) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := c.C.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, metrics.ErrCacheMiss
	}
	if err != nil {
		return nil, err
	}
	_, rest, ok := bytes.Cut(b, []byte(":"))
	if !ok {
		return nil, metrics.ErrCacheMiss
	}
	if _, payload, ok := bytes.Cut(rest, []byte(":")); ok && len(payload) > 0 {
		return payload, nil
	}
	return nil, metrics.ErrCacheMiss
}

// Put stores value unless a newer entry of the same generation is there.
func (c Cache) Put(ctx context.Context, key string, v metrics.CacheVersion, value []byte, ttl time.Duration) (bool, error) {
	n, err := putScript.Run(ctx, c.C, []string{key}, v.Generation, v.Next, value, ttl.Milliseconds()).Int()
	return n == 1, err
}

// Invalidate writes version marks (empty payloads) in one pipeline.
func (c Cache) Invalidate(ctx context.Context, v metrics.CacheVersion, ttl time.Duration, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := c.C.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			putScript.Eval(ctx, p, []string{k}, v.Generation, v.Next, "", ttl.Milliseconds()) // EVALSHA cannot fall back inside a pipeline
		}
		return nil
	})
	return err
}

// Dedup implements ingestion.Dedup with keys that expire after a TTL
// longer than any provider's redelivery window. Concurrent deliveries share
// round trips (batcher), so a busy ingest pays a fraction of a round trip
// per question instead of one each.
type Dedup struct {
	ttl time.Duration
	b   batcher
}

// NewDedup remembers deliveries in c for ttl (0: 7 days).
func NewDedup(c *goredis.Client, ttl time.Duration) *Dedup {
	if ttl == 0 {
		ttl = 7 * 24 * time.Hour
	}
	return &Dedup{ttl: ttl, b: batcher{c: c}}
}

// dedupKey names a delivery's record. v2 values are "<hex digest>
// <token>"; v1 keys (token only) are left to expire, and their deliveries
// are answered by the durable record meanwhile.
func dedupKey(id uuid.UUID) string { return "biosync:delivery:v2:" + id.String() }

// dedupWait bounds each dedup question: dedup is best effort, so a slow
// Redis costs a delivery at most this long (then it is treated as new, or
// not remembered) and queued questions never pile up behind it.
const dedupWait = 500 * time.Millisecond

// Lookup returns what is remembered of an accepted delivery.
func (d *Dedup) Lookup(ctx context.Context, id uuid.UUID) (ingestion.Delivery, bool) {
	ctx, cancel := context.WithTimeout(ctx, dedupWait)
	defer cancel()
	cmd := goredis.NewStringCmd(ctx, "get", dedupKey(id))
	if d.b.do(ctx, cmd) != nil {
		return ingestion.Delivery{}, false
	}
	sum, tok, ok := strings.Cut(cmd.Val(), " ")
	var out ingestion.Delivery
	if !ok || hex.DecodedLen(len(sum)) != len(out.Digest) {
		return ingestion.Delivery{}, false
	}
	if _, err := hex.Decode(out.Digest[:], []byte(sum)); err != nil {
		return ingestion.Delivery{}, false
	}
	t, err := eventstore.ParseToken(tok)
	if err != nil || len(t) == 0 {
		return ingestion.Delivery{}, false
	}
	out.Token = t
	return out, true
}

// Remember stores an accepted delivery (best effort: one Redis forgot is
// answered by the durable record). It returns once Redis answered, so a
// redelivery after the 2xx is recognised.
func (d *Dedup) Remember(ctx context.Context, id uuid.UUID, del ingestion.Delivery) {
	ctx, cancel := context.WithTimeout(ctx, dedupWait)
	defer cancel()
	_ = d.b.do(ctx, goredis.NewStatusCmd(ctx, "set", dedupKey(id), hex.EncodeToString(del.Digest[:])+" "+del.Token.String(), "px", max(d.ttl.Milliseconds(), 1)))
}
