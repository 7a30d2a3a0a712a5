package postgres_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/eventstore"
)

// Many deliveries reserve at once and share statements: each one still
// gets exactly its own record (created the first time, found with its
// digest and confirmed token after), and a second batch under a known id
// is reported with the first batch's digest.
func TestConcurrentReservationsEachGetTheirOwnRecord(t *testing.T) {
	pool, _ := testbackend.Store(t, 8)
	d := postgres.NewDeliveries(pool)
	ctx := context.Background()
	user := uuid.New()
	const n = 300
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	digest := func(i int) [32]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8)}) }
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec, created, err := d.Reserve(ctx, ids[i], user, digest(i))
			if assert.NoError(t, err, "delivery %d", i) {
				assert.True(t, created, "delivery %d: first reservation", i)
				assert.Equal(t, digest(i), rec.Digest, "delivery %d", i)
				assert.NoError(t, d.Confirm(ctx, ids[i], eventstore.Token{{Partition: int32(i % 4), Offset: int64(i)}}))
			}
		})
	}
	wg.Wait() // Confirm returns once written: the tokens are there
	for i := range n {
		wg.Go(func() {
			other := digest(i + 1000)
			rec, created, err := d.Reserve(ctx, ids[i], user, other)
			if assert.NoError(t, err, "delivery %d again", i) {
				assert.False(t, created, "delivery %d again", i)
				assert.Equal(t, digest(i), rec.Digest, "delivery %d again: the first batch's digest", i)
				assert.Equal(t, eventstore.Token{{Partition: int32(i % 4), Offset: int64(i)}}.String(), rec.Token.String(), "delivery %d again: its confirmed token", i)
			}
		})
	}
	wg.Wait()
}
