package embedded

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func client(t *testing.T, r *Redis) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(r.URL())
	require.NoError(t, err)
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// The embedded default's Redis keeps what it holds across a restart, with
// the time each key has left, as a Redis with snapshots would: a stored
// Idempotency-Key answer or a remembered delivery is still there after the
// binary restarts.
func TestTheEmbeddedRedisKeepsItsDataAcrossARestart(t *testing.T) {
	ctx := context.Background()
	snap := filepath.Join(t.TempDir(), "redis", "snapshot.json")
	r, err := StartRedis(snap)
	require.NoError(t, err)
	c := client(t, r)
	require.NoError(t, c.Set(ctx, "biosync:idem:v1:k", "D fp response", time.Hour).Err())
	require.NoError(t, c.Set(ctx, "forever", "v", 0).Err())
	require.NoError(t, c.HSet(ctx, "h", "a", "1", "b", "2").Err())
	require.NoError(t, c.SAdd(ctx, "s", "x", "y").Err())
	require.NoError(t, c.ZAdd(ctx, "z", goredis.Z{Score: 2.5, Member: "m"}).Err())
	require.NoError(t, c.RPush(ctx, "l", "1", "2", "3").Err())
	require.NoError(t, r.Close())

	r2, err := StartRedis(snap)
	require.NoError(t, err)
	defer r2.Close()
	c2 := client(t, r2)
	assert.Equal(t, "D fp response", c2.Get(ctx, "biosync:idem:v1:k").Val())
	ttl := c2.PTTL(ctx, "biosync:idem:v1:k").Val()
	assert.True(t, ttl > 59*time.Minute && ttl <= time.Hour, "the key keeps the time it had left, got %v", ttl)
	assert.Equal(t, time.Duration(-1), c2.PTTL(ctx, "forever").Val(), "a key without TTL stays without")
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, c2.HGetAll(ctx, "h").Val())
	assert.ElementsMatch(t, []string{"x", "y"}, c2.SMembers(ctx, "s").Val())
	assert.Equal(t, 2.5, c2.ZScore(ctx, "z", "m").Val())
	assert.Equal(t, []string{"1", "2", "3"}, c2.LRange(ctx, "l", 0, -1).Val())
}

// A kill -9 gives Close no chance: the snapshot written every interval is
// what the next start finds. And TTLs run on the wall clock, as in Redis.
func TestTheEmbeddedRedisSnapshotsPeriodicallyAndExpiresOnTheClock(t *testing.T) {
	ctx := context.Background()
	snap := filepath.Join(t.TempDir(), "snapshot.json")
	r, err := StartRedis(snap)
	require.NoError(t, err)
	defer r.Close()
	c := client(t, r)
	require.NoError(t, c.Set(ctx, "delivery", "remembered", time.Hour).Err())
	require.NoError(t, c.Set(ctx, "lock", "L", 500*time.Millisecond).Err())
	require.Eventually(t, func() bool {
		raw, err := os.ReadFile(snap)
		return err == nil && len(raw) > 0 && c.Exists(ctx, "lock").Val() == 0 && !contains(raw, "\"lock\"") && contains(raw, "remembered")
	}, 3*snapshotInterval, 100*time.Millisecond, "the snapshot never held the delivery without the expired lock")

	// What a process killed now would leave behind:
	copyOf := filepath.Join(t.TempDir(), "after-kill.json")
	raw, err := os.ReadFile(snap)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(copyOf, raw, 0o600))
	r2, err := StartRedis(copyOf)
	require.NoError(t, err)
	defer r2.Close()
	assert.Equal(t, "remembered", client(t, r2).Get(ctx, "delivery").Val())
}

func TestAnUnreadableSnapshotIsAnErrorThatSaysWhatToDo(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "snapshot.json")
	require.NoError(t, os.WriteFile(snap, []byte("{not json"), 0o600))
	_, err := StartRedis(snap)
	require.ErrorContains(t, err, "delete it to start empty")
}

func contains(raw []byte, s string) bool { return strings.Contains(string(raw), s) }
