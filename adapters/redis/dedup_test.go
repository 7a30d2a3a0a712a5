package redis_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/eventstore"
)

// TestConcurrentDeliveriesEachGetTheirOwnAnswer: many deliveries arrive at
// once and share pipelines; each one must still see exactly its own
// remembered token, never a neighbour's, and an unknown one none.
func TestConcurrentDeliveriesEachGetTheirOwnAnswer(t *testing.T) {
	ctx := context.Background()
	c, err := bredis.Open(testbackend.Redis(t))
	require.NoError(t, err)
	defer c.Close()
	d := bredis.NewDedup(c, time.Minute)

	const n = 500
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	delivery := func(i int) ingestion.Delivery {
		return ingestion.Delivery{Digest: sha256.Sum256([]byte{byte(i), byte(i >> 8)}), Token: eventstore.Token{{Partition: int32(i % 3), Offset: int64(i)}}}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, ok := d.Lookup(ctx, ids[i])
			assert.False(t, ok, "delivery %d: seen before it was remembered", i)
			d.Remember(ctx, ids[i], delivery(i))
			got, ok := d.Lookup(ctx, ids[i])
			assert.True(t, ok, "delivery %d: not found after remember", i)
			assert.Equal(t, delivery(i), got, "delivery %d: lookup after remember", i)
		})
	}
	wg.Wait()
	ttl := c.PTTL(ctx, "biosync:delivery:v2:"+ids[0].String()).Val()
	require.Greater(t, ttl, time.Duration(0), "remembered delivery expires in %v, want within the configured minute", ttl)
	require.LessOrEqual(t, ttl, time.Minute, "remembered delivery expires in %v, want within the configured minute", ttl)
}

// TestACallerThatGivesUpDoesNotSpoilTheBatch: one caller's cancelled
// context ends only its own wait; the commands queued beside it are
// answered.
func TestACallerThatGivesUpDoesNotSpoilTheBatch(t *testing.T) {
	c, err := bredis.Open(testbackend.Redis(t))
	require.NoError(t, err)
	defer c.Close()
	d := bredis.NewDedup(c, time.Minute)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id, tok := uuid.New(), ingestion.Delivery{Token: eventstore.Token{{Partition: 0, Offset: int64(i)}}}
			if i%2 == 0 {
				d.Remember(cancelled, id, tok)
				_, ok := d.Lookup(cancelled, id)
				assert.False(t, ok, "a cancelled lookup answered")
				return
			}
			d.Remember(context.Background(), id, tok)
			got, ok := d.Lookup(context.Background(), id)
			assert.True(t, ok, "lookup beside cancelled callers: not found")
			assert.Equal(t, tok, got, "lookup beside cancelled callers")
		})
	}
	wg.Wait()
}
