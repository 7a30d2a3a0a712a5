package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/deploy/testbackend"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

// TestEveryInstanceHearsOfAnErasureAndItsKeysGo: two instances subscribe;
// an erasure broadcast by a third reaches both, and PurgeUser removes
// every key naming the user while other users' keys stay.
func TestEveryInstanceHearsOfAnErasureAndItsKeysGo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := testbackend.Redis(t)
	clients := make([]bredis.Erasures, 3)
	for i := range clients {
		c, err := bredis.Open(url)
		require.NoError(t, err)
		defer c.Close()
		clients[i] = bredis.Erasures{C: c}
	}
	erased, kept := uuid.New(), uuid.New()
	var mu sync.Mutex
	heard := map[int][]uuid.UUID{}
	for i := range 2 {
		go clients[i].Subscribe(ctx, func(u uuid.UUID) { mu.Lock(); heard[i] = append(heard[i], u); mu.Unlock() }, nil)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Subscriptions start asynchronously: publish until both heard it.
		require.NoError(t, clients[2].Broadcast(ctx, erased))
		mu.Lock()
		done := len(heard[0]) > 0 && len(heard[1]) > 0
		mu.Unlock()
		if done {
			break
		}
		require.False(t, time.Now().After(deadline), "broadcast not heard by every instance: %v", heard)
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	for i, ids := range heard {
		for _, id := range ids {
			assert.Equal(t, erased, id, "instance %d heard %s, want only %s", i, id, erased)
		}
	}
	mu.Unlock()

	c := clients[2].C
	gone := []string{"biosync:dashboard:v1:" + erased.String(), "biosync:idem:v1:u:" + erased.String() + ":k1", "rate:rl:v1:auth:acct:e:" + erased.String()[:8] + "alias"}
	keep := "biosync:dashboard:v1:" + kept.String()
	for _, k := range append(gone, keep) {
		require.NoError(t, c.Set(ctx, k, "x", time.Minute).Err())
	}
	require.NoError(t, clients[2].PurgeUser(ctx, erased, erased.String()[:8]+"alias"))
	for _, k := range gone {
		n := c.Exists(ctx, k).Val()
		assert.EqualValues(t, 0, n, "%s survived the purge of %s", k, erased)
	}
	n := c.Exists(ctx, keep).Val()
	assert.EqualValues(t, 1, n, "another user's key %s was purged", keep)
}
