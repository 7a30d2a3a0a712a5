package kafka_test

import (
	"fmt"
	"github.com/IBM/sarama"
	"net"

	"context"
	"errors"
	"github.com/twmb/franz-go/pkg/kfake"
	"testing"
	"time"

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
				if err := kafka.EnsureTopic(cfg); err != nil {
					t.Fatal(err)
				}
				c := codec(t)
				app := kafka.NewAppender(cfg, c)
				t.Cleanup(func() { app.Close() })
				log, err := kafka.NewLog(cfg)
				if err != nil {
					t.Fatal(err)
				}
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
				if err := kafka.EnsureTopic(cfg); err != nil {
					t.Fatalf("attempt %d: %v", i+1, err)
				}
			}
			cfg.Partitions = 5
			if err := kafka.EnsureTopic(cfg); err == nil {
				t.Fatal("a topic with another partition count must be refused, not silently used")
			}
		})
	}
}

// TestAppendAnswersUnavailableFastWhenKafkaIsDown: with no broker listening
// an append fails with domain.ErrUnavailable within about two seconds (the
// HTTP layer turns that into 503), never hangs and never succeeds.
func TestAppendAnswersUnavailableFastWhenKafkaIsDown(t *testing.T) {
	cfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "nowhere"}
	c, err := memstore.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	app := kafka.NewAppender(cfg, c)
	defer app.Close()
	start := time.Now()
	now := time.Now()
	_, err = app.Append(context.Background(), eventstore.Event{ID: uuid.New(), Type: "test.happened", SchemaVersion: 1, UserID: uuid.New(), OccurredAt: now, RecordedAt: now, Payload: []byte(`{}`)})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("append took %v with Kafka down; the budget is ~2s", d)
	}
}

// TestAppendRecoversWhenKafkaComesBack: the broker goes away (503s, never a
// 2xx), comes back on the same address with its log, and appends succeed
// again without restarting the appender; nothing acknowledged is lost.
func TestAppendRecoversWhenKafkaComesBack(t *testing.T) {
	testbackend.Integration(t, "kfake on a data dir")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	broker := start()
	cfg := kafka.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Topic: "events", Partitions: 2}
	if err := kafka.EnsureTopic(cfg); err != nil {
		t.Fatal(err)
	}
	c := codec(t)
	app := kafka.NewAppender(cfg, c)
	defer app.Close()
	user := uuid.New()
	send := func() (eventstore.Position, error) {
		now := time.Now()
		return app.Append(context.Background(), eventstore.Event{ID: uuid.New(), Type: "test.happened", SchemaVersion: 1, UserID: user, OccurredAt: now, RecordedAt: now, Payload: []byte(`{}`)})
	}
	first, err := send()
	if err != nil {
		t.Fatal(err)
	}
	broker.Close()
	for i := 0; i < 3; i++ {
		began := time.Now()
		if _, err := send(); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("append with the broker down = %v, want ErrUnavailable", err)
		}
		if d := time.Since(began); d > 3*time.Second {
			t.Fatalf("append with the broker down took %v", d)
		}
	}
	broker = start()
	defer broker.Close()
	var again eventstore.Position
	deadline := time.Now().Add(15 * time.Second)
	for {
		if again, err = send(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appends did not recover after the broker returned: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if again.Partition != first.Partition || again.Offset <= first.Offset {
		t.Fatalf("after recovery the user's event landed at %v, first at %v", again, first)
	}
	log, err := kafka.NewLog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if hw, _ := log.HighWater(context.Background(), first.Partition); hw != again.Offset+1 {
		t.Fatalf("high water %d after recovery, want %d (the acknowledged event before the outage must survive)", hw, again.Offset+1)
	}
}

func TestEnsureTopicRefusesATopicThatWouldDeleteEvents(t *testing.T) {
	for _, target := range testbackend.KafkaTargets(t) {
		t.Run(target.Name, func(t *testing.T) {
			name := testbackend.UniqueName(t, "events")
			cfg := sarama.NewConfig()
			cfg.Version = kafka.Version
			admin, err := sarama.NewClusterAdmin(target.Brokers, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			week := "604800000"
			if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &week}}, false); err != nil {
				t.Fatal(err)
			}
			if err := kafka.EnsureTopic(kafka.Config{Brokers: target.Brokers, Topic: name, Partitions: 2}); err == nil {
				t.Fatal("a topic with 7-day retention must be refused as the event log")
			}
		})
	}
}
