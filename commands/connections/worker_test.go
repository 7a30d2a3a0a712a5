package connections_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain/provider"
)

// runWorker runs the worker over an in-memory pub/sub; publish sends one
// event as the log subscriber would.
func runWorker(t *testing.T, w *world) (publish func(typ string, body any), poisoned <-chan *message.Message) {
	t.Helper()
	bus := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	poison := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	ctx, cancel := context.WithCancel(context.Background())
	p, err := poison.Subscribe(ctx, connections.PoisonTopic)
	require.NoError(t, err)
	worker, err := w.svc.NewWorker(bus, "events", poison, connections.WorkerConfig{Retries: 2, RetryInterval: 10 * time.Millisecond, BackfillEvery: time.Hour})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = worker.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-worker.Running()
	return func(typ string, body any) {
		raw, _ := json.Marshal(body)
		m := message.NewMessage(watermill.NewUUID(), raw)
		m.Metadata.Set(connections.MetaEventType, typ)
		m.Metadata.Set(connections.MetaUserID, w.user.String())
		require.NoError(t, bus.Publish("events", m))
	}, p
}

func TestTheWorkerFollowsAPointerAndWaitsOutA429(t *testing.T) {
	w := newWorld(t)
	calls := 0
	w.client.fetch = func(_ string, n provider.Notified) ([]connections.Record, error) {
		calls++
		if calls == 1 {
			return nil, &connections.RateLimited{RetryAfter: time.Millisecond}
		}
		return []connections.Record{{DataType: n.DataType, ID: n.ObjectID, Raw: []byte(`{}`)}}, nil
	}
	w.connect(t)
	publish, _ := runWorker(t, w)
	publish(provider.EventNotified, provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: "s1"})
	assert.Eventually(t, func() bool { return count(w.types(), provider.EventRecordFetched) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 2, calls, "the 429 was retried")
}

func TestAPointerThatKeepsFailingGoesToThePoisonQueueAndShowsOnTheConnection(t *testing.T) {
	w := newWorld(t)
	w.client.fetch = func(string, provider.Notified) ([]connections.Record, error) {
		return nil, errors.New("500 from the provider")
	}
	w.connect(t)
	publish, poisoned := runWorker(t, w)
	publish(provider.EventNotified, provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: "s1"})
	select {
	case m := <-poisoned:
		m.Ack()
		assert.Equal(t, provider.EventNotified, m.Metadata.Get(connections.MetaEventType))
	case <-time.After(5 * time.Second):
		require.Fail(t, "nothing reached the poison queue")
	}
	c, _ := w.store.Get(context.Background(), w.user, provider.Oura)
	assert.Equal(t, provider.StatusError, c.Status, "1 try + 2 retries = 3 failures in a row")
	assert.NotEmpty(t, c.LastError)
}

func TestConnectionEstablishedRunsTheBackfill(t *testing.T) {
	w := newWorld(t)
	w.client.list = func(_, dataType, _ string) (connections.Page, error) {
		return connections.Page{Records: []connections.Record{{DataType: dataType, ID: dataType + "-1", Raw: []byte(`{}`)}}}, nil
	}
	w.connect(t)
	publish, _ := runWorker(t, w)
	publish(provider.EventConnectionEstablished, provider.ConnectionEstablished{Provider: provider.Oura, ProviderUserID: "oura-1"})
	assert.Eventually(t, func() bool { return count(w.types(), provider.EventRecordFetched) == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Eventually(t, func() bool {
		c, _ := w.store.Get(context.Background(), w.user, provider.Oura)
		return c.Status == provider.StatusConnected
	}, 5*time.Second, 10*time.Millisecond)
}
