package kafka_test

import (
	"fmt"
	"net"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/google/uuid"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/eventstoretest"
	"github.com/biosync/biosync/eventstore/memstore"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

func codec(t *testing.T) *eventstore.Codec {
	_, c := testbackend.Store(t, 4)
	return c
}

func TestEventStoreContract(t *testing.T) {
	for _, target := range testbackend.KafkaTargets(t) {
		t.Run(target.Name, func(t *testing.T) {
			eventstoretest.Run(t, func(t *testing.T) eventstoretest.Harness {
				cfg := kafka.Config{Brokers: target.Brokers, Topic: testbackend.UniqueName(t, "events"), Partitions: 4}
				require.NoError(t, kafka.EnsureTopic(cfg))
				c := codec(t)
				app := kafka.NewAppender(cfg, c)
				t.Cleanup(func() { app.Close() })
				log, err := kafka.NewLog(cfg)
				require.NoError(t, err)
				t.Cleanup(func() { log.Close() })
				return eventstoretest.Harness{Appender: app, Log: log, Codec: c}
			})
		})
	}
}

func TestEnsureTopicIsIdempotentAndRefusesRepartitioning(t *testing.T) {
	for _, target := range testbackend.KafkaTargets(t) {
		t.Run(target.Name, func(t *testing.T) {
			cfg := kafka.Config{Brokers: target.Brokers, Topic: testbackend.UniqueName(t, "events"), Partitions: 3}
			for i := 0; i < 2; i++ {
				require.NoError(t, kafka.EnsureTopic(cfg), "attempt %d", i+1)
			}
			cfg.Partitions = 5
			require.Error(t, kafka.EnsureTopic(cfg), "a topic with another partition count must be refused, not silently used")
		})
	}
}

// TestAppendAnswersUnavailableFastWhenKafkaIsDown: with no broker listening
// an append fails with domain.ErrUnavailable within about two seconds (the
// HTTP layer turns that into 503), never hangs and never succeeds.
func TestAppendAnswersUnavailableFastWhenKafkaIsDown(t *testing.T) {
	cfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "nowhere"}
	c, err := memstore.NewCodec()
	require.NoError(t, err)
	app := kafka.NewAppender(cfg, c)
	defer app.Close()
	start := time.Now()
	now := time.Now()
	_, err = app.Append(context.Background(), eventstore.Event{ID: uuid.New(), Type: "test.happened", SchemaVersion: 1, UserID: uuid.New(), OccurredAt: now, RecordedAt: now, Payload: []byte(`{}`)})
	require.ErrorIs(t, err, domain.ErrUnavailable, "want ErrUnavailable, got %v", err)
	d := time.Since(start)
	require.LessOrEqual(t, d, 3*time.Second, "append took %v with Kafka down; the budget is ~2s", d)
}

// TestAppendRecoversWhenKafkaComesBack: the broker goes away (503s, never a
// 2xx), comes back on the same address with its log, and appends succeed
// again without restarting the appender; nothing acknowledged is lost.
func TestAppendRecoversWhenKafkaComesBack(t *testing.T) {
	testbackend.Integration(t, "kfake on a data dir")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir))
		require.NoError(t, err)
		return c
	}
	broker := start()
	cfg := kafka.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Topic: "events", Partitions: 2}
	require.NoError(t, kafka.EnsureTopic(cfg))
	c := codec(t)
	app := kafka.NewAppender(cfg, c)
	defer app.Close()
	user := uuid.New()
	send := func() (eventstore.Position, error) {
		now := time.Now()
		return app.Append(context.Background(), eventstore.Event{ID: uuid.New(), Type: "test.happened", SchemaVersion: 1, UserID: user, OccurredAt: now, RecordedAt: now, Payload: []byte(`{}`)})
	}
	first, err := send()
	require.NoError(t, err)
	broker.Close()
	for i := 0; i < 3; i++ {
		began := time.Now()
		_, err := send()
		require.ErrorIs(t, err, domain.ErrUnavailable, "append with the broker down = %v, want ErrUnavailable", err)
		d := time.Since(began)
		require.LessOrEqual(t, d, 3*time.Second, "append with the broker down took %v", d)
	}
	broker = start()
	defer broker.Close()
	var again eventstore.Position
	deadline := time.Now().Add(15 * time.Second)
	for {
		if again, err = send(); err == nil {
			break
		}
		require.False(t, time.Now().After(deadline), "appends did not recover after the broker returned: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, first.Partition, again.Partition, "after recovery the user's event landed at %v, first at %v", again, first)
	require.Greater(t, again.Offset, first.Offset, "after recovery the user's event landed at %v, first at %v", again, first)
	log, err := kafka.NewLog(cfg)
	require.NoError(t, err)
	defer log.Close()
	hw, _ := log.HighWater(context.Background(), first.Partition)
	require.Equal(t, again.Offset+1, hw, "high water %d after recovery, want %d (the acknowledged event before the outage must survive)", hw, again.Offset+1)
}

func TestEnsureTopicRefusesATopicThatWouldDeleteEvents(t *testing.T) {
	for _, target := range testbackend.KafkaTargets(t) {
		t.Run(target.Name, func(t *testing.T) {
			name := testbackend.UniqueName(t, "events")
			cfg := sarama.NewConfig()
			cfg.Version = kafka.Version
			admin, err := sarama.NewClusterAdmin(target.Brokers, cfg)
			require.NoError(t, err)
			defer admin.Close()
			week := "604800000"
			require.NoError(t, admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &week}}, false))
			require.Error(t, kafka.EnsureTopic(kafka.Config{Brokers: target.Brokers, Topic: name, Partitions: 2}), "a topic with 7-day retention must be refused as the event log")
		})
	}
}
