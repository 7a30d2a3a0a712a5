package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/biosync/biosync/eventstore"
)

// Log reads the event topic partition by partition. It implements
// eventstore.Log with a plain sarama Consumer: projectors own partitions
// through PostgreSQL advisory locks and seek to their own checkpoints, so
// they need no consumer group.
type Log struct {
	cfg    Config
	client sarama.Client

	mu       sync.Mutex
	consumer sarama.Consumer
}

// NewLog connects a reader to the brokers.
func NewLog(c Config) (*Log, error) {
	c = c.WithDefaults()
	client, err := sarama.NewClient(c.Brokers, NewSaramaConfig(c))
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", unavailable(err))
	}
	return &Log{cfg: c, client: client}, nil
}

// Topic is the topic this log reads.
func (l *Log) Topic() string { return l.cfg.Topic }

// Partitions lists the partitions of the topic.
func (l *Log) Partitions(ctx context.Context) ([]int32, error) {
	if err := l.client.RefreshMetadata(l.cfg.Topic); err != nil {
		return nil, unavailable(err)
	}
	ps, err := l.client.Partitions(l.cfg.Topic)
	if err != nil {
		return nil, unavailable(err)
	}
	return ps, nil
}

// HighWater returns the next offset to be written in partition.
func (l *Log) HighWater(ctx context.Context, partition int32) (int64, error) {
	o, err := l.client.GetOffset(l.cfg.Topic, partition, sarama.OffsetNewest)
	if err != nil {
		return 0, unavailable(err)
	}
	return o, nil
}

// OffsetForTime uses Kafka's ListOffsets by timestamp (offsets-for-times).
func (l *Log) OffsetForTime(ctx context.Context, partition int32, t time.Time) (int64, error) {
	o, err := l.client.GetOffset(l.cfg.Topic, partition, t.UnixMilli())
	if err != nil {
		return 0, unavailable(err)
	}
	if o < 0 {
		return l.HighWater(ctx, partition)
	}
	return o, nil
}

// Subscribe starts reading partition at offset from. All subscriptions of
// one Log share one sarama Consumer, which fetches every partition of a
// broker in one request. A Log therefore serves ONE reader of each
// partition: give every projector its own Log (and so its own connection;
// with Net.MaxOpenRequests=1 readers sharing a connection would queue
// their long-polling fetches behind each other).
func (l *Log) Subscribe(ctx context.Context, partition int32, from int64) (eventstore.Subscription, error) {
	l.mu.Lock()
	if l.consumer == nil {
		c, err := sarama.NewConsumerFromClient(l.client)
		if err != nil {
			l.mu.Unlock()
			return nil, unavailable(err)
		}
		l.consumer = c
	}
	c := l.consumer
	l.mu.Unlock()
	pc, err := c.ConsumePartition(l.cfg.Topic, partition, from)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return nil, fmt.Errorf("kafka consume %s/%d@%d: %w", l.cfg.Topic, partition, from, eventstore.ErrOffsetOutOfRange)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka consume %s/%d@%d: %w", l.cfg.Topic, partition, from, unavailable(err))
	}
	s := &subscription{pc: pc, out: make(chan eventstore.Record, 1024), errs: make(chan error, 8), done: make(chan struct{})}
	go s.run(ctx)
	return s, nil
}

// Fetch reads the records at offsets (ascending) of partition with a
// short-lived consumer of its own.
func (l *Log) Fetch(ctx context.Context, partition int32, offsets []int64) ([]eventstore.Record, error) {
	if len(offsets) == 0 {
		return nil, nil
	}
	c, err := sarama.NewConsumerFromClient(l.client)
	if err != nil {
		return nil, unavailable(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(l.cfg.Topic, partition, offsets[0])
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return nil, fmt.Errorf("kafka fetch %s/%d@%d: %w", l.cfg.Topic, partition, offsets[0], eventstore.ErrOffsetOutOfRange)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka fetch %s/%d@%d: %w", l.cfg.Topic, partition, offsets[0], unavailable(err))
	}
	defer pc.Close()
	want := map[int64]bool{}
	for _, o := range offsets {
		want[o] = true
	}
	last := offsets[len(offsets)-1]
	out := make([]eventstore.Record, 0, len(offsets))
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-pc.Errors():
			return nil, fmt.Errorf("kafka fetch: %w", unavailable(err))
		case m := <-pc.Messages():
			if want[m.Offset] {
				out = append(out, toRecord(m))
			}
			if m.Offset >= last {
				return out, nil
			}
		}
	}
}

func toRecord(m *sarama.ConsumerMessage) eventstore.Record {
	r := eventstore.Record{Key: m.Key, Value: m.Value, Timestamp: m.Timestamp, Position: eventstore.Position{Partition: m.Partition, Offset: m.Offset}}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, eventstore.Header{Key: string(h.Key), Value: h.Value})
	}
	return r
}

// Close releases the consumer and the client.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.consumer != nil {
		l.consumer.Close()
		l.consumer = nil
	}
	l.mu.Unlock()
	return l.client.Close()
}

type subscription struct {
	pc   sarama.PartitionConsumer
	out  chan eventstore.Record
	errs chan error
	done chan struct{}
	once sync.Once
}

func (s *subscription) run(ctx context.Context) {
	defer close(s.out)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case m, ok := <-s.pc.Messages():
			if !ok {
				return
			}
			select {
			case s.out <- toRecord(m):
			case <-ctx.Done():
				return
			case <-s.done:
				return
			}
		case err, ok := <-s.pc.Errors():
			if ok {
				select {
				case s.errs <- err:
				default:
				}
			}
		}
	}
}

// Records implements eventstore.Subscription.
func (s *subscription) Records() <-chan eventstore.Record { return s.out }

// Errors implements eventstore.Subscription.
func (s *subscription) Errors() <-chan error { return s.errs }

// Close implements eventstore.Subscription.
func (s *subscription) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.pc.Close()
	})
	return err
}
