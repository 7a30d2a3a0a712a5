package embedded

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/biosync/biosync/deploy/testlayer"
)

func ptr(s string) *string { return &s }

func TestKafkaPersistsAcrossRestart(t *testing.T) {
	testlayer.Integration(t, "kfake on a data dir")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()

	k, err := StartKafka(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()

	// The data dir is exclusive while the broker runs.
	if k2, err := StartKafka(dir); err == nil {
		k2.Close()
		t.Fatal("second StartKafka on the same data dir succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("unexpected error for locked data dir: %v", err)
	}

	// CLI discovery.
	got, err := DiscoverKafka(dir)
	if err != nil || !slices.Equal(got, k.Brokers()) {
		t.Fatalf("DiscoverKafka = %v, %v; want %v", got, err, k.Brokers())
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	const topic = "events.persist-test"
	// Event-log style topic configs must be accepted.
	resp, err := adm.CreateTopic(ctx, -1, -1, map[string]*string{
		"retention.ms":      ptr("-1"),
		"cleanup.policy":    ptr("delete"),
		"max.message.bytes": ptr("2097152"),
	}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	if resp.NumPartitions != 1 {
		t.Errorf("default partitions = %d, want 1 (as Kafka's num.partitions)", resp.NumPartitions)
	}
	// A record larger than the 1 MiB default but within max.message.bytes.
	big := make([]byte, 1500*1024)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: big}).FirstErr(); err != nil {
		t.Fatalf("produce big record: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	offs := make(kadm.Offsets)
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "projector", offs); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	cl.Close()

	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, KafkaBrokersFile)); !os.IsNotExist(err) {
		t.Fatalf("brokers file still present after Close: %v", err)
	}
	if _, err := DiscoverKafka(dir); err == nil {
		t.Fatal("DiscoverKafka found a server after Close")
	}

	// Restart on the same dir: topic, configs, records and offsets survive.
	k, err = StartKafka(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(k.Brokers()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm = kadm.NewClient(cl)
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retention.ms": "-1", "cleanup.policy": "delete", "max.message.bytes": "2097152"}
	for _, c := range rc.Configs {
		if w, ok := want[c.Key]; ok {
			if c.MaybeValue() != w {
				t.Errorf("config %s = %q after restart, want %q", c.Key, c.MaybeValue(), w)
			}
			delete(want, c.Key)
		}
	}
	if len(want) != 0 {
		t.Errorf("configs missing after restart: %v", want)
	}
	fetched, err := adm.FetchOffsets(ctx, "projector")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup(topic, 0); !ok || o.At != 2 {
		t.Errorf("group offset after restart = %+v (found %v), want 2", o, ok)
	}
	var n int
	for n < 2 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records before timeout", n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		n += fs.NumRecords()
	}
}

func TestKafkaInMemory(t *testing.T) {
	testlayer.Integration(t, "kfake")
	k, err := StartKafka("")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if len(k.Brokers()) != 1 || !strings.HasPrefix(k.Brokers()[0], "127.0.0.1:") {
		t.Fatalf("brokers = %v", k.Brokers())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).BrokerMetadata(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRedis(t *testing.T) {
	testlayer.Integration(t, "miniredis")
	r, err := StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !strings.HasPrefix(r.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(r.URL(), "/0") {
		t.Fatalf("URL = %q", r.URL())
	}
	if err := r.Server().Set("k", "v"); err != nil {
		t.Fatal(err)
	}
}
