// Package eventstoretest is the contract every event store implementation
// passes (adapters/kafka on kfake and real Kafka, and the unit layer's
// eventstore/memstore): append returns durable positions, one user's events
// stay in one partition in order, reads start at an offset or a time, a
// fetch reads chosen offsets, an offset beyond the end is out of range, and
// erased users' payloads are unreadable.
package eventstoretest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/eventstore"
)

// Harness is one event store under test, on a fresh topic.
type Harness struct {
	Appender eventstore.Appender
	Log      eventstore.Log
	Codec    *eventstore.Codec
}

// Run runs the contract. newHarness must return a store on a fresh topic.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("AppendReturnsThePositionItWasStoredAt", func(t *testing.T) { appendReturnsPosition(t, newHarness(t)) })
	t.Run("OneUsersEventsShareAPartitionInOrder", func(t *testing.T) { perUserOrder(t, newHarness(t)) })
	t.Run("ReadFromTime", func(t *testing.T) { readFromTime(t, newHarness(t)) })
	t.Run("FetchReadsTheChosenOffsets", func(t *testing.T) { fetchChosenOffsets(t, newHarness(t)) })
	t.Run("ReadingBeyondTheEndIsOutOfRange", func(t *testing.T) { beyondTheEnd(t, newHarness(t)) })
	t.Run("ErasedUserReadsAsTombstone", func(t *testing.T) { erased(t, newHarness(t)) })
}

func ev(user uuid.UUID, n int, body string) eventstore.Event {
	now := time.Now().UTC()
	return eventstore.Event{ID: uuid.New(), Type: "test.happened", SchemaVersion: 1, UserID: user, OccurredAt: now, RecordedAt: now,
		Payload: []byte(fmt.Sprintf(`{"n":%d,"body":%q}`, n, body))}
}

// appendAll appends one user's events in order and returns their positions.
func appendAll(t *testing.T, h Harness, events ...eventstore.Event) []eventstore.Position {
	t.Helper()
	var pos []eventstore.Position
	for _, e := range events {
		p, err := h.Appender.Append(context.Background(), e)
		require.NoError(t, err, "append event %s", e.ID)
		pos = append(pos, p)
	}
	return pos
}

// readN reads n records of partition from offset.
func readN(t *testing.T, h Harness, p int32, from int64, n int) []eventstore.Stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := h.Log.Subscribe(ctx, p, from)
	require.NoError(t, err)
	defer sub.Close()
	var out []eventstore.Stored
	for len(out) < n {
		select {
		case r, ok := <-sub.Records():
			require.True(t, ok, "stream closed after %d of %d records", len(out), n)
			s, err := h.Codec.Decode(ctx, r)
			require.NoError(t, err)
			out = append(out, s)
		case err := <-sub.Errors():
			require.NoError(t, err, "stream error after %d of %d records", len(out), n)
		case <-ctx.Done():
			require.FailNow(t, "timeout", "read %d of %d records before timeout", len(out), n)
		}
	}
	return out
}

// inOnePartitionInOrder fails unless positions share a partition with rising
// offsets.
func inOnePartitionInOrder(t *testing.T, positions []eventstore.Position, who string) {
	t.Helper()
	for i := 1; i < len(positions); i++ {
		require.True(t, positions[i].Partition == positions[0].Partition && positions[i].Offset > positions[i-1].Offset,
			"%s positions %v: one user's appends must be ordered in one partition", who, positions)
	}
}

func appendReturnsPosition(t *testing.T, h Harness) {
	user := uuid.New()
	sent := []eventstore.Event{ev(user, 0, "hello"), ev(user, 1, "hello"), ev(user, 2, "hello")}
	pos := appendAll(t, h, sent...)
	inOnePartitionInOrder(t, pos, "the user's")
	hw, err := h.Log.HighWater(context.Background(), pos[0].Partition)
	require.NoError(t, err)
	require.Equal(t, pos[2].Offset+1, hw, "high water after the last append")
	for i, s := range readN(t, h, pos[0].Partition, pos[0].Offset, 3) {
		assert.Equal(t, sent[i].ID, s.ID, "record %d's event", i)
		assert.Equal(t, sent[i].Payload, s.Payload, "record %d's payload", i)
		assert.Equal(t, pos[i], s.Position, "record %d's position", i)
	}
}

func perUserOrder(t *testing.T, h Harness) {
	ctx := context.Background()
	const users, each = 12, 10
	ids := make([]uuid.UUID, users)
	positions := make([][]eventstore.Position, users)
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for u := range ids {
		ids[u] = uuid.New()
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				p, err := h.Appender.Append(ctx, ev(ids[u], i, "x"))
				if err != nil {
					errs <- err
					return
				}
				positions[u] = append(positions[u], p)
			}
		}(u)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "concurrent append")
	}
	partitions := map[int32]bool{}
	for u, ps := range positions {
		inOnePartitionInOrder(t, ps, fmt.Sprintf("user %d", u))
		partitions[ps[0].Partition] = true
	}
	if parts, _ := h.Log.Partitions(ctx); len(parts) > 1 {
		require.GreaterOrEqual(t, len(partitions), 2, "%d users all landed in one of %d partitions: keys are not hashed", users, len(parts))
	}
}

func readFromTime(t *testing.T, h Harness) {
	ctx := context.Background()
	user := uuid.New()
	first := appendAll(t, h, ev(user, 0, "before"))[0]
	time.Sleep(50 * time.Millisecond)
	mark := time.Now()
	time.Sleep(50 * time.Millisecond)
	later := ev(user, 1, "after")
	later.RecordedAt = time.Now().UTC()
	second := appendAll(t, h, later)[0]
	off, err := h.Log.OffsetForTime(ctx, first.Partition, mark)
	require.NoError(t, err)
	require.Equal(t, second.Offset, off, "offset for a time between the events (first event at %d)", first.Offset)
	assert.Equal(t, later.ID, readN(t, h, first.Partition, off, 1)[0].ID, "reading from the time starts at the later event")
	end, err := h.Log.OffsetForTime(ctx, first.Partition, time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, second.Offset+1, end, "a time after every record is the high-water mark")
}

func fetchChosenOffsets(t *testing.T, h Harness) {
	user := uuid.New()
	sent := []eventstore.Event{ev(user, 0, "a"), ev(user, 1, "b"), ev(user, 2, "c"), ev(user, 3, "d")}
	pos := appendAll(t, h, sent...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs, err := h.Log.Fetch(ctx, pos[0].Partition, []int64{pos[1].Offset, pos[3].Offset})
	require.NoError(t, err)
	require.Len(t, recs, 2, "one record per offset asked for")
	for i, want := range []int{1, 3} {
		s, err := h.Codec.Decode(ctx, recs[i])
		require.NoError(t, err)
		assert.Equal(t, sent[want].ID, s.ID, "fetched record %d", i)
		assert.Equal(t, pos[want], s.Position, "fetched record %d", i)
	}
}

func beyondTheEnd(t *testing.T, h Harness) {
	ctx := context.Background()
	at := appendAll(t, h, ev(uuid.New(), 0, "only"))[0]
	sub, err := h.Log.Subscribe(ctx, at.Partition, at.Offset+1)
	require.NoError(t, err, "subscribing at the high-water mark waits for the next record")
	require.NoError(t, sub.Close())
	_, err = h.Log.Subscribe(ctx, at.Partition, at.Offset+2)
	require.ErrorIs(t, err, eventstore.ErrOffsetOutOfRange, "a checkpoint beyond the end of the log must not be silently skipped")
}

func erased(t *testing.T, h Harness) {
	ctx := context.Background()
	gone, kept := uuid.New(), uuid.New()
	canary := "canary-" + uuid.NewString()
	pg := appendAll(t, h, ev(gone, 0, canary))[0]
	pk := appendAll(t, h, ev(kept, 0, "still here"))[0]
	require.NoError(t, h.Codec.Keys().Destroy(ctx, gone))
	s := readN(t, h, pg.Partition, pg.Offset, 1)[0]
	assert.True(t, s.Erased, "the erased user's event reads as a tombstone")
	assert.Nil(t, s.Payload, "the erased user's payload is gone")
	assert.Equal(t, gone, s.UserID, "the tombstone keeps its user id")
	k := readN(t, h, pk.Partition, pk.Offset, 1)[0]
	assert.False(t, k.Erased, "another user's event is not erased")
	assert.Contains(t, string(k.Payload), "still here", "another user's event stays readable")
}
