package ingestion_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// deliveries fakes the durable record (PostgreSQL in production, tested
// against it in ingestion_test.go) with a map; down makes it unreachable.
type deliveries struct {
	mu   sync.Mutex
	recs map[uuid.UUID]ingestion.Delivery
	down bool
}

func (d *deliveries) Reserve(_ context.Context, id, _ uuid.UUID, digest [32]byte) (ingestion.Delivery, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return ingestion.Delivery{}, false, fmt.Errorf("postgres down: %w", domain.ErrUnavailable)
	}
	if r, ok := d.recs[id]; ok {
		return r, false, nil
	}
	if d.recs == nil {
		d.recs = map[uuid.UUID]ingestion.Delivery{}
	}
	d.recs[id] = ingestion.Delivery{Digest: digest}
	return d.recs[id], true, nil
}

func (d *deliveries) Confirm(_ context.Context, id uuid.UUID, t eventstore.Token) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.recs[id]
	r.Token = t
	d.recs[id] = r
	return nil
}

func stepsAt(value float64) ingest.Batch {
	return ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{{Type: "steps", Start: "2026-11-20T08:00:00Z", End: "2026-11-20T08:15:00Z", Value: value, Unit: "count"}}}
}

// With nothing in the fast store (Redis restarted, flushed or past its
// TTL), the durable record still tells a redelivery from a second batch
// under the same id: the first stands, the second is refused and never
// reaches the log.
func TestADeliveryIDThatComesBackWithAnotherBatchIsRefusedByTheDurableRecord(t *testing.T) {
	log := &commandstest.Log{}
	s := newPushes(t, ingestion.Deps{Log: log, Accounts: everyoneExists(), Deliveries: &deliveries{}})
	ctx := context.Background()
	ada := uuid.New()
	for _, channel := range []string{"webhook", "app"} {
		first, err := s.Push(ctx, commands.PushSamples{UserID: ada, Batch: stepsAt(10), DeliveryID: "msg_1", Channel: channel})
		require.NoError(t, err)
		again, err := s.Push(ctx, commands.PushSamples{UserID: ada, Batch: stepsAt(10), DeliveryID: "msg_1", Channel: channel})
		require.NoError(t, err, "%s: the same batch again is a redelivery", channel)
		assert.True(t, again.Duplicate, channel)
		assert.Equal(t, first.Token, again.Token, "%s: a redelivery answers with the original token", channel)
		_, err = s.Push(ctx, commands.PushSamples{UserID: ada, Batch: stepsAt(99), DeliveryID: "msg_1", Channel: channel})
		require.ErrorIs(t, err, ingest.ErrDeliveryReused, "%s: another batch under a used id", channel)
		require.ErrorIs(t, err, domain.ErrConflict)
	}
	assert.Len(t, log.Appended(), 2, "one event per delivery id and channel, whatever came after")
}

// An attempt that reserved the id and then failed (the log refused, the
// process died) left a record without a position: the sender's retry with
// the same batch appends; one with another batch is still refused.
func TestAReservedButUnconfirmedDeliveryIsAppendedOnRetry(t *testing.T) {
	log := &commandstest.Log{}
	d := &deliveries{}
	s := newPushes(t, ingestion.Deps{Log: log, Accounts: everyoneExists(), Deliveries: d})
	ctx := context.Background()
	ada := uuid.New()
	id := eventstore.DeterministicID("push.webhook", ada.String(), "msg_7")
	b := stepsAt(10)
	b.UserID = ada.String()
	d.recs = map[uuid.UUID]ingestion.Delivery{id: {Digest: b.Digest()}}

	_, err := s.Push(ctx, commands.PushSamples{UserID: ada, Batch: stepsAt(11), DeliveryID: "msg_7", Channel: "webhook"})
	require.ErrorIs(t, err, ingest.ErrDeliveryReused)
	acc, err := s.Push(ctx, commands.PushSamples{UserID: ada, Batch: stepsAt(10), DeliveryID: "msg_7", Channel: "webhook"})
	require.NoError(t, err)
	assert.False(t, acc.Duplicate, "nothing confirmed it: it is appended")
	require.Len(t, log.Appended(), 1)
	assert.Equal(t, acc.Token, d.recs[id].Token, "the append is confirmed in the record")
}

// The fast store answers a second batch as the durable record would,
// without a PostgreSQL round trip.
func TestTheFastStoreRefusesAnotherBatchUnderAKnownID(t *testing.T) {
	ada := uuid.New()
	b := stepsAt(10)
	b.UserID = ada.String()
	d := &deliveries{down: true}
	s := newPushes(t, ingestion.Deps{Log: &commandstest.Log{}, Accounts: everyoneExists(), Deliveries: d, Dedup: dedup{
		lookup: func(context.Context, uuid.UUID) (ingestion.Delivery, bool) {
			return ingestion.Delivery{Digest: b.Digest(), Token: eventstore.Token{{Partition: 1, Offset: 5}}}, true
		},
		remember: func(context.Context, uuid.UUID, ingestion.Delivery) {},
	}})
	_, err := s.Push(context.Background(), commands.PushSamples{UserID: ada, Batch: stepsAt(12), DeliveryID: "k", Channel: "app"})
	require.ErrorIs(t, err, ingest.ErrDeliveryReused)
	acc, err := s.Push(context.Background(), commands.PushSamples{UserID: ada, Batch: stepsAt(10), DeliveryID: "k", Channel: "app"})
	require.NoError(t, err)
	assert.True(t, acc.Duplicate)
}

// Without its durable record a delivery with an id cannot be checked: the
// push answers unavailable (503) and appends nothing, rather than risk two
// different events under one id.
func TestAPushWithAnIDWaitsForTheDurableRecord(t *testing.T) {
	log := &commandstest.Log{}
	s := newPushes(t, ingestion.Deps{Log: log, Accounts: everyoneExists(), Deliveries: &deliveries{down: true}})
	_, err := s.Push(context.Background(), commands.PushSamples{UserID: uuid.New(), Batch: stepsAt(1), DeliveryID: "msg_1", Channel: "webhook"})
	require.ErrorIs(t, err, domain.ErrUnavailable)
	assert.Empty(t, log.Appended())
	_, err = s.Push(context.Background(), commands.PushSamples{UserID: uuid.New(), Batch: stepsAt(1), Channel: "app"})
	require.NoError(t, err, "a push without an id needs no record")
}
