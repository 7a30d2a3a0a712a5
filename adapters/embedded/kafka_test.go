package embedded

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	defer k.Close()

	// The data dir is exclusive while the broker runs.
	k2, err := StartKafka(dir)
	if err == nil {
		k2.Close()
	}
	require.Error(t, err, "second StartKafka on the same data dir succeeded")
	require.ErrorContains(t, err, "in use", "unexpected error for locked data dir")

	// CLI discovery.
	got, err := DiscoverKafka(dir)
	require.NoError(t, err, "DiscoverKafka = %v, %v; want %v", got, err, k.Brokers())
	require.True(t, slices.Equal(got, k.Brokers()), "DiscoverKafka = %v, %v; want %v", got, err, k.Brokers())

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...), kgo.ProducerBatchMaxBytes(4<<20))
	require.NoError(t, err)
	adm := kadm.NewClient(cl)
	const topic = "events.persist-test"
	// Event-log style topic configs must be accepted.
	resp, err := adm.CreateTopic(ctx, -1, -1, map[string]*string{
		"retention.ms":      ptr("-1"),
		"cleanup.policy":    ptr("delete"),
		"max.message.bytes": ptr("2097152"),
	}, topic)
	require.NoError(t, err, "create topic: %v / %v", err, resp.Err)
	require.NoError(t, resp.Err, "create topic: %v /", err)
	assert.EqualValues(t, 1, resp.NumPartitions, "default partitions = %d, want 1 (as Kafka's num.partitions)", resp.NumPartitions)
	// A record larger than the 1 MiB default but within max.message.bytes.
	big := make([]byte, 1500*1024)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: big}).FirstErr(), "produce big record")
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello")}).FirstErr(), "produce")
	offs := make(kadm.Offsets)
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: -1})
	_, err = adm.CommitOffsets(ctx, "projector", offs)
	require.NoError(t, err, "commit offsets")
	cl.Close()

	require.NoError(t, k.Close())
	_, err = os.Stat(filepath.Join(dir, KafkaBrokersFile))
	require.True(t, os.IsNotExist(err), "brokers file still present after Close: %v", err)
	_, err = DiscoverKafka(dir)
	require.Error(t, err, "DiscoverKafka found a server after Close")

	// Restart on the same dir: topic, configs, records and offsets survive.
	k, err = StartKafka(dir)
	require.NoError(t, err)
	defer k.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(k.Brokers()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	adm = kadm.NewClient(cl)
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	require.NoError(t, err)
	rc, err := cfgs.On(topic, nil)
	require.NoError(t, err)
	want := map[string]string{"retention.ms": "-1", "cleanup.policy": "delete", "max.message.bytes": "2097152"}
	for _, c := range rc.Configs {
		if w, ok := want[c.Key]; ok {
			assert.Equal(t, w, c.MaybeValue(), "config %s = %q after restart, want %q", c.Key, c.MaybeValue(), w)
			delete(want, c.Key)
		}
	}
	assert.Len(t, want, 0, "configs missing after restart: %v", want)
	fetched, err := adm.FetchOffsets(ctx, "projector")
	require.NoError(t, err)
	o, ok := fetched.Lookup(topic, 0)
	if assert.True(t, ok, "no group offset after restart") {
		assert.EqualValues(t, 2, o.At, "group offset after restart")
	}
	var n int
	for n < 2 {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "consumed %d records before timeout", n)
		fs.EachError(func(_ string, _ int32, err error) { require.NoError(t, err, "fetch") })
		n += fs.NumRecords()
	}
}

func TestKafkaInMemory(t *testing.T) {
	testlayer.Integration(t, "kfake")
	k, err := StartKafka("")
	require.NoError(t, err)
	defer k.Close()
	require.Len(t, k.Brokers(), 1, "brokers = %v", k.Brokers())
	require.True(t, strings.HasPrefix(k.Brokers()[0], "127.0.0.1:"), "brokers = %v", k.Brokers())
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).BrokerMetadata(ctx)
	require.NoError(t, err)
	require.NoError(t, k.Close())
	require.NoError(t, k.Close(), "second Close")
}

func TestRedis(t *testing.T) {
	testlayer.Integration(t, "miniredis")
	r, err := StartRedis("")
	require.NoError(t, err)
	defer r.Close()
	require.True(t, strings.HasPrefix(r.URL(), "redis://127.0.0.1:"), "URL = %q", r.URL())
	require.True(t, strings.HasSuffix(r.URL(), "/0"), "URL = %q", r.URL())
	require.NoError(t, r.Server().Set("k", "v"))
}
