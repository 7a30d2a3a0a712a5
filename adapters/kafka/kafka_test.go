package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/adapters/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/eventstoretest"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

const master = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func codec(t *testing.T) *eventstore.Codec {
	t.Helper()
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	mk, _ := eventstore.ParseMasterKeys(master)
	kr, err := eventstore.NewKeyring(postgres.NewKeyStore(pool), mk)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.NewCodec(kr)
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
	app := kafka.NewAppender(cfg, codec(t))
	defer app.Close()
	start := time.Now()
	now := time.Now()
	_, err := app.Append(context.Background(), eventstore.Event{ID: uuid.New(), Type: "test.happened", SchemaVersion: 1, UserID: uuid.New(), OccurredAt: now, RecordedAt: now, Payload: []byte(`{}`)})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("append took %v with Kafka down; the budget is ~2s", d)
	}
}
