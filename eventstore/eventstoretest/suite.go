// Package eventstoretest is the contract every event store implementation
// passes (kfake and real Kafka today): append returns durable positions,
// one user's events stay in one partition in order, reads start at an
// offset or a time, and erased users' payloads are unreadable.
package eventstoretest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

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
	t.Run("ErasedUserReadsAsTombstone", func(t *testing.T) { erased(t, newHarness(t)) })
}

func ev(user uuid.UUID, n int, body string) eventstore.Event {
	now := time.Now().UTC()
	return eventstore.Event{ID: uuid.New(), Type: "test.happened", SchemaVersion: 1, UserID: user, OccurredAt: now, RecordedAt: now,
		Payload: []byte(fmt.Sprintf(`{"n":%d,"body":%q}`, n, body))}
}

// readN reads n records of partition from offset.
func readN(t *testing.T, h Harness, p int32, from int64, n int) []eventstore.Stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := h.Log.Subscribe(ctx, p, from)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var out []eventstore.Stored
	for len(out) < n {
		select {
		case r, ok := <-sub.Records():
			if !ok {
				t.Fatalf("stream closed after %d of %d records", len(out), n)
			}
			s, err := h.Codec.Decode(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		case err := <-sub.Errors():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("read %d of %d records before timeout", len(out), n)
		}
	}
	return out
}

func appendReturnsPosition(t *testing.T, h Harness) {
	ctx := context.Background()
	user := uuid.New()
	var pos []eventstore.Position
	var sent []eventstore.Event
	for i := 0; i < 3; i++ {
		e := ev(user, i, "hello")
		p, err := h.Appender.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		pos, sent = append(pos, p), append(sent, e)
	}
	for i := 1; i < 3; i++ {
		if pos[i].Partition != pos[0].Partition || pos[i].Offset <= pos[i-1].Offset {
			t.Fatalf("positions %v: one user's appends must be ordered in one partition", pos)
		}
	}
	hw, err := h.Log.HighWater(ctx, pos[0].Partition)
	if err != nil || hw != pos[2].Offset+1 {
		t.Fatalf("high water = %d (%v), want %d", hw, err, pos[2].Offset+1)
	}
	got := readN(t, h, pos[0].Partition, pos[0].Offset, 3)
	for i, s := range got {
		if s.ID != sent[i].ID || !bytes.Equal(s.Payload, sent[i].Payload) || s.Position != pos[i] {
			t.Fatalf("record %d = %+v, want event %s at %v", i, s, sent[i].ID, pos[i])
		}
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
		t.Fatal(err)
	}
	partitions := map[int32]bool{}
	for u, ps := range positions {
		for i := 1; i < len(ps); i++ {
			if ps[i].Partition != ps[0].Partition || ps[i].Offset <= ps[i-1].Offset {
				t.Fatalf("user %d positions %v are not ordered in one partition", u, ps)
			}
		}
		partitions[ps[0].Partition] = true
	}
	if parts, _ := h.Log.Partitions(ctx); len(parts) > 1 && len(partitions) < 2 {
		t.Fatalf("%d users all landed in one of %d partitions: keys are not hashed", users, len(parts))
	}
}

func readFromTime(t *testing.T, h Harness) {
	ctx := context.Background()
	user := uuid.New()
	first, err := h.Appender.Append(ctx, ev(user, 0, "before"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	mark := time.Now()
	time.Sleep(50 * time.Millisecond)
	later := ev(user, 1, "after")
	later.RecordedAt = time.Now().UTC()
	second, err := h.Appender.Append(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	off, err := h.Log.OffsetForTime(ctx, first.Partition, mark)
	if err != nil {
		t.Fatal(err)
	}
	if off != second.Offset {
		t.Fatalf("offset for time = %d, want %d (first event at %d)", off, second.Offset, first.Offset)
	}
	if got := readN(t, h, first.Partition, off, 1); got[0].ID != later.ID {
		t.Fatalf("read from time got %s", got[0].ID)
	}
}

func erased(t *testing.T, h Harness) {
	ctx := context.Background()
	gone, kept := uuid.New(), uuid.New()
	canary := "canary-" + uuid.NewString()
	pg, err := h.Appender.Append(ctx, ev(gone, 0, canary))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := h.Appender.Append(ctx, ev(kept, 0, "still here"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Codec.Keys().Destroy(ctx, gone); err != nil {
		t.Fatal(err)
	}
	s := readN(t, h, pg.Partition, pg.Offset, 1)[0]
	if !s.Erased || s.Payload != nil || s.UserID != gone {
		t.Fatalf("erased user's event: %+v", s)
	}
	if k := readN(t, h, pk.Partition, pk.Offset, 1)[0]; k.Erased || !bytes.Contains(k.Payload, []byte("still here")) {
		t.Fatalf("other user's event must stay readable: %+v", k)
	}
}
