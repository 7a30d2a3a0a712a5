package kafka

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// EnsureTopic creates the event topic if it does not exist: fixed partition
// count, infinite retention, delete (never compact) cleanup, and
// min.insync.replicas=2 when replicated three times or more. An existing
// topic with another partition count is an error: silently using it would
// move users to other partitions.
func EnsureTopic(c Config) error {
	c = c.WithDefaults()
	admin, err := sarama.NewClusterAdmin(c.Brokers, NewSaramaConfig(c))
	if err != nil {
		return fmt.Errorf("kafka admin: %w", unavailable(err))
	}
	defer admin.Close()
	topics, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("kafka list topics: %w", unavailable(err))
	}
	if d, ok := topics[c.Topic]; ok {
		if d.NumPartitions != c.Partitions {
			return fmt.Errorf("kafka topic %s has %d partitions, configuration says %d: refusing to remap users", c.Topic, d.NumPartitions, c.Partitions)
		}
		if err := checkRetention(admin, c.Topic); err != nil {
			return err
		}
		return waitForLeaders(c)
	}
	entries := map[string]*string{
		"retention.ms":      ptr("-1"),
		"retention.bytes":   ptr("-1"),
		"cleanup.policy":    ptr("delete"),
		"max.message.bytes": ptr(strconv.Itoa(c.MaxMessageBytes + 64<<10)),
	}
	if c.ReplicationFactor >= 3 {
		entries["min.insync.replicas"] = ptr("2")
	}
	err = admin.CreateTopic(c.Topic, &sarama.TopicDetail{NumPartitions: c.Partitions, ReplicationFactor: c.ReplicationFactor, ConfigEntries: entries}, false)
	var te *sarama.TopicError
	if errors.Is(err, sarama.ErrTopicAlreadyExists) || (errors.As(err, &te) && te.Err == sarama.ErrTopicAlreadyExists) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("kafka create topic %s: %w", c.Topic, err)
	}
	return waitForLeaders(c)
}

// waitForLeaders returns once every partition of a new topic has a leader
// that answers as one: a broker acknowledges CreateTopics before the leaders
// are elected, and a produce in between fails with NOT_LEADER_OR_FOLLOWER.
func waitForLeaders(c Config) error {
	client, err := sarama.NewClient(c.Brokers, NewSaramaConfig(c))
	if err != nil {
		return fmt.Errorf("kafka client: %w", unavailable(err))
	}
	defer client.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := client.RefreshMetadata(c.Topic)
		if err == nil {
			var parts []int32
			if parts, err = client.Partitions(c.Topic); err == nil && len(parts) == int(c.Partitions) {
				for _, p := range parts {
					// The metadata names a leader before that broker acts
					// as one (KRaft applies the change asynchronously);
					// ListOffsets goes to the leader and answers
					// NOT_LEADER_OR_FOLLOWER until it does.
					if _, err = client.Leader(c.Topic, p); err != nil {
						break
					}
					if _, err = client.GetOffset(c.Topic, p, sarama.OffsetNewest); err != nil {
						break
					}
				}
			} else if err == nil {
				err = fmt.Errorf("%d of %d partitions visible", len(parts), c.Partitions)
			}
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka topic %s has no leader for every partition yet: %w", c.Topic, unavailable(err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ptr(s string) *string { return &s }

// checkRetention refuses an existing event topic that would delete or
// compact events (e.g. created by hand or by broker defaults): the log is
// the source of truth and must keep everything.
func checkRetention(admin sarama.ClusterAdmin, topic string) error {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms", "cleanup.policy"}})
	if err != nil {
		return fmt.Errorf("kafka describe topic %s: %w", topic, unavailable(err))
	}
	for _, e := range entries {
		switch {
		case e.Name == "retention.ms" && e.Value != "-1":
			return fmt.Errorf("kafka topic %s has retention.ms=%s: an event topic must keep events forever (retention.ms=-1)", topic, e.Value)
		case e.Name == "cleanup.policy" && e.Value != "delete":
			return fmt.Errorf("kafka topic %s has cleanup.policy=%s: an event topic is never compacted (cleanup.policy=delete)", topic, e.Value)
		}
	}
	return nil
}
