package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/eventstoretest"
	"github.com/biosync/biosync/eventstore/memstore"
	"github.com/biosync/biosync/projections/engine"
)

func newStore(t *testing.T, partitions int32) *memstore.Store {
	t.Helper()
	c, err := memstore.NewCodec()
	require.NoError(t, err)
	return memstore.New(c, partitions)
}

func codecOf(t *testing.T) *eventstore.Codec {
	t.Helper()
	c, err := memstore.NewCodec()
	require.NoError(t, err)
	return c
}

// The same contract adapters/kafka passes on kfake and real Kafka.
func TestEventStoreContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Harness {
		c := codecOf(t)
		s := memstore.New(c, 4)
		return eventstoretest.Harness{Appender: s, Log: s, Codec: c}
	})
}

func pushed(user uuid.UUID) eventstore.Event {
	now := time.Now()
	return eventstore.Event{ID: uuid.New(), Type: "samples.pushed", SchemaVersion: 1, UserID: user, OccurredAt: now, RecordedAt: now, Payload: []byte(`{}`)}
}

// A user's events land where the production producer puts them, so the
// readers' partition lookup (engine.PartitionOf) finds them.
func TestUsersLandOnTheProductionPartitions(t *testing.T) {
	const partitions = 12
	s := newStore(t, partitions)
	for range 200 {
		user := uuid.New()
		at, err := s.Append(context.Background(), pushed(user))
		require.NoError(t, err)
		require.Equal(t, engine.PartitionOf(user, partitions), at.Partition, "user %s", user)
	}
}

func TestAnAppendThatCertainlyFailedWritesNothing(t *testing.T) {
	s := newStore(t, 2)
	ctx := context.Background()
	down := fmt.Errorf("log down: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	s.Inject(memstore.Faults{Append: func(context.Context, eventstore.Event) error { return down }})
	user := uuid.New()
	_, err := s.Append(ctx, pushed(user))
	require.ErrorIs(t, err, eventstore.ErrNotAppended)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	for _, p := range []int32{0, 1} {
		hw, err := s.HighWater(ctx, p)
		require.NoError(t, err)
		assert.Zero(t, hw, "partition %d after a failed append", p)
	}

	s.Inject(memstore.Faults{})
	at, err := s.Append(ctx, pushed(user))
	require.NoError(t, err, "the healed log takes appends again")
	assert.Equal(t, int64(0), at.Offset, "the failed append left no record behind")
}

func TestAnAppendWithAnUnknownOutcomeMayHaveLanded(t *testing.T) {
	s := newStore(t, 2)
	ctx := context.Background()
	var landed eventstore.Position
	s.Inject(memstore.Faults{Appended: func(_ context.Context, _ eventstore.Event, at eventstore.Position) error {
		landed = at
		return fmt.Errorf("append timed out: %w", domain.ErrUnavailable)
	}})
	e := pushed(uuid.New())
	_, err := s.Append(ctx, e)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	assert.NotErrorIs(t, err, eventstore.ErrNotAppended, "the outcome is unknown, not a certain failure")
	recs, err := s.Fetch(ctx, landed.Partition, []int64{landed.Offset})
	require.NoError(t, err)
	got, err := s.Codec().Decode(ctx, recs[0])
	require.NoError(t, err)
	assert.Equal(t, e.ID, got.ID, "the record landed despite the error")
}

func TestReadsFailWhileTheLogIsUnreachable(t *testing.T) {
	s := newStore(t, 2)
	ctx := context.Background()
	down := errors.New("log unreachable")
	var asked []int32
	s.Inject(memstore.Faults{Read: func(_ context.Context, p int32) error { asked = append(asked, p); return down }})
	_, err := s.Partitions(ctx)
	assert.ErrorIs(t, err, down, "Partitions")
	_, err = s.HighWater(ctx, 1)
	assert.ErrorIs(t, err, down, "HighWater")
	_, err = s.OffsetForTime(ctx, 1, time.Now())
	assert.ErrorIs(t, err, down, "OffsetForTime")
	_, err = s.Subscribe(ctx, 0, 0)
	assert.ErrorIs(t, err, down, "Subscribe")
	_, err = s.Fetch(ctx, 0, []int64{0})
	assert.ErrorIs(t, err, down, "Fetch")
	assert.Equal(t, []int32{-1, 1, 1, 0, 0}, asked, "the partition each read asked for")
}

func TestAPartitionTheTopicDoesNotHaveIsAnError(t *testing.T) {
	s := newStore(t, 2)
	_, err := s.HighWater(context.Background(), 2)
	assert.Error(t, err)
	_, err = s.Subscribe(context.Background(), -3, 0)
	assert.Error(t, err)
}

func TestASubscriptionSeesLaterAppendsAndStopsOnClose(t *testing.T) {
	s := newStore(t, 1)
	ctx := context.Background()
	sub, err := s.Subscribe(ctx, 0, 0)
	require.NoError(t, err)
	e := pushed(uuid.New())
	_, err = s.Append(ctx, e)
	require.NoError(t, err)
	select {
	case r := <-sub.Records():
		got, err := s.Codec().Decode(ctx, r)
		require.NoError(t, err)
		assert.Equal(t, e.ID, got.ID)
	case <-time.After(5 * time.Second):
		require.FailNow(t, "an append after Subscribe was not delivered")
	}
	require.NoError(t, sub.Close())
	select {
	case _, open := <-sub.Records():
		assert.False(t, open, "no record after Close")
	case <-time.After(5 * time.Second):
		require.FailNow(t, "Records was not closed after Close")
	}
}

func TestReadersGetTheirOwnCopyOfARecord(t *testing.T) {
	s := newStore(t, 1)
	ctx := context.Background()
	at, err := s.Append(ctx, pushed(uuid.New()))
	require.NoError(t, err)
	first, err := s.Fetch(ctx, 0, []int64{at.Offset})
	require.NoError(t, err)
	want := string(first[0].Value)
	for i := range first[0].Value {
		first[0].Value[i] = 'x'
	}
	again, err := s.Fetch(ctx, 0, []int64{at.Offset})
	require.NoError(t, err)
	assert.Equal(t, want, string(again[0].Value), "a reader changing its bytes must not change the log")
}

func TestFetchWaitsForAnOffsetNotWrittenYet(t *testing.T) {
	s := newStore(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Fetch(ctx, 0, []int64{0})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
