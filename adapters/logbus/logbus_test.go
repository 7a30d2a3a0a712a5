package logbus_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/biosync/biosync/adapters/logbus"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
)

// offsets is logbus.Offsets in memory.
type offsets struct {
	mu   sync.Mutex
	next map[int32]int64
}

func (o *offsets) Load(_ context.Context, _ string, p int32) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next[p], nil
}

func (o *offsets) Store(_ context.Context, _ string, p int32, next int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next[p] = max(o.next[p], next)
	return nil
}

func (o *offsets) get(p int32) int64 { o.mu.Lock(); defer o.mu.Unlock(); return o.next[p] }

func appendEvent(t *testing.T, log *memstore.Store, user uuid.UUID, typ, payload string) eventstore.Position {
	t.Helper()
	now := time.Now().UTC()
	pos, err := log.Append(context.Background(), eventstore.Event{ID: uuid.New(), Type: typ, SchemaVersion: 1, UserID: user,
		OccurredAt: now, RecordedAt: now, CorrelationID: "corr-1", Payload: []byte(payload)})
	require.NoError(t, err)
	return pos
}

func newSubscriber(t *testing.T) (*logbus.Subscriber, *memstore.Store, *offsets) {
	t.Helper()
	codec, err := memstore.NewCodec()
	require.NoError(t, err)
	log := memstore.New(codec, 1)
	o := &offsets{next: map[int32]int64{}}
	sub := &logbus.Subscriber{Log: log, Codec: codec, Offsets: o, Consumer: "test", Redeliver: 10 * time.Millisecond,
		Types: map[string]bool{"provider.notified": true}}
	t.Cleanup(func() { _ = sub.Close() })
	return sub, log, o
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		require.FailNow(t, "no message")
		return nil
	}
}

func TestWantedEventsArriveDecryptedWithTheirEnvelopeAndTheOffsetMovesOnlyOnAck(t *testing.T) {
	sub, log, o := newSubscriber(t)
	user := uuid.New()
	appendEvent(t, log, user, "samples.pushed", `{"skipped":true}`)
	pos := appendEvent(t, log, user, "provider.notified", `{"data_type":"sleep"}`)
	ch, err := sub.Subscribe(context.Background(), "events")
	require.NoError(t, err)
	m := receive(t, ch)
	assert.JSONEq(t, `{"data_type":"sleep"}`, string(m.Payload))
	assert.Equal(t, "provider.notified", m.Metadata.Get(logbus.MetaEventType))
	assert.Equal(t, user.String(), m.Metadata.Get(logbus.MetaUserID))
	assert.Equal(t, "corr-1", middleware.MessageCorrelationID(m))
	time.Sleep(20 * time.Millisecond)
	assert.Less(t, o.get(pos.Partition), pos.Offset+1, "not acknowledged yet")
	m.Ack()
	assert.Eventually(t, func() bool { return o.get(pos.Partition) == pos.Offset+1 }, 5*time.Second, 5*time.Millisecond)
}

func TestANackedMessageComesBackAndARestartResumesAfterTheLastAck(t *testing.T) {
	sub, log, o := newSubscriber(t)
	user := uuid.New()
	first := appendEvent(t, log, user, "provider.notified", `{"n":1}`)
	appendEvent(t, log, user, "provider.notified", `{"n":2}`)
	ch, err := sub.Subscribe(context.Background(), "events")
	require.NoError(t, err)
	m := receive(t, ch)
	m.Nack()
	again := receive(t, ch)
	assert.JSONEq(t, `{"n":1}`, string(again.Payload), "redelivered")
	again.Ack()
	assert.Eventually(t, func() bool { return o.get(first.Partition) == first.Offset+1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, sub.Close())

	// A new subscriber over the same offsets starts at the second event.
	codec := log.Codec()
	next := &logbus.Subscriber{Log: log, Codec: codec, Offsets: o, Consumer: "test", Types: map[string]bool{"provider.notified": true}}
	defer next.Close()
	ch, err = next.Subscribe(context.Background(), "events")
	require.NoError(t, err)
	assert.JSONEq(t, `{"n":2}`, string(receive(t, ch).Payload))
}

func TestAnErasedUsersEventsAreSkipped(t *testing.T) {
	sub, log, _ := newSubscriber(t)
	erased, kept := uuid.New(), uuid.New()
	appendEvent(t, log, erased, "provider.notified", `{"who":"erased"}`)
	appendEvent(t, log, kept, "provider.notified", `{"who":"kept"}`)
	require.NoError(t, log.Codec().Keys().Destroy(context.Background(), erased))
	ch, err := sub.Subscribe(context.Background(), "events")
	require.NoError(t, err)
	m := receive(t, ch)
	assert.JSONEq(t, `{"who":"kept"}`, string(m.Payload))
	m.Ack()
}

func TestThePoisonPublisherLogsIdsOnlyAndCounts(t *testing.T) {
	var buf bytes.Buffer
	p := &logbus.LoggingPublisher{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	m := message.NewMessage("id-1", []byte(`{"secret":"health data"}`))
	m.Metadata.Set(logbus.MetaEventType, "provider.notified")
	require.NoError(t, p.Publish("poison", m))
	assert.Equal(t, 1, p.Poisoned())
	assert.Contains(t, buf.String(), "id-1")
	assert.Contains(t, buf.String(), "provider.notified")
	assert.NotContains(t, buf.String(), "health data")
}
