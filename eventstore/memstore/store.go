package memstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/biosync/biosync/eventstore"
)

// MaxRecordBytes is the largest record value an append accepts, the
// default record limit of the Kafka event topic.
const MaxRecordBytes = 4 << 20

// Faults are the log failures a test injects. A nil function injects
// nothing; the zero Faults is a healthy log.
type Faults struct {
	// Append runs before a record is written. An error it returns is the
	// append's result and nothing is written: wrap eventstore.ErrNotAppended
	// (and domain.ErrUnavailable) for a log that could not be reached.
	Append func(ctx context.Context, e eventstore.Event) error
	// Appended runs after the record was written at pos. An error it
	// returns is the append's result although the record landed: the
	// unknown outcome of a timed-out append.
	Appended func(ctx context.Context, e eventstore.Event, pos eventstore.Position) error
	// Read runs before every read (Partitions with partition -1,
	// HighWater, OffsetForTime, Subscribe, Fetch). An error it returns is
	// the read's result.
	Read func(ctx context.Context, partition int32) error
}

// Store is one in-memory topic. It implements eventstore.Appender and
// eventstore.Log; any number of subscriptions may read a partition.
type Store struct {
	codec *eventstore.Codec

	mu          sync.Mutex
	partitioner sarama.Partitioner // not safe for concurrent use: under mu
	logs        [][]eventstore.Record
	grew        chan struct{} // closed and replaced whenever a record is written
	faults      Faults
}

var (
	_ eventstore.Appender = (*Store)(nil)
	_ eventstore.Log      = (*Store)(nil)
)

// New returns an empty topic of partitions partitions whose records codec
// encodes and seals.
func New(codec *eventstore.Codec, partitions int32) *Store {
	if partitions < 1 {
		panic(fmt.Sprintf("memstore: %d partitions", partitions))
	}
	return &Store{
		codec:       codec,
		partitioner: sarama.NewHashPartitioner(""),
		logs:        make([][]eventstore.Record, partitions),
		grew:        make(chan struct{}),
	}
}

// Inject replaces the store's faults; Inject(Faults{}) heals the log. Safe
// while appends and reads are in flight.
func (s *Store) Inject(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

func (s *Store) currentFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Append encodes e and writes it as one record keyed by its user id on the
// partition sarama's hash partitioner picks, like adapters/kafka.
func (s *Store) Append(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
	f := s.currentFaults()
	if f.Append != nil {
		if err := f.Append(ctx, e); err != nil {
			return eventstore.Position{}, err
		}
	}
	rec, err := s.codec.Encode(ctx, e)
	if err != nil {
		return eventstore.Position{}, err
	}
	if len(rec.Value) > MaxRecordBytes {
		return eventstore.Position{}, fmt.Errorf("event of %d bytes exceeds the %d byte record limit", len(rec.Value), MaxRecordBytes)
	}
	if err := ctx.Err(); err != nil {
		return eventstore.Position{}, fmt.Errorf("memstore append: %w: %w", eventstore.ErrNotAppended, err)
	}
	// Kafka keeps record timestamps in milliseconds; the producer stamps a
	// record without one.
	ts := rec.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	rec.Timestamp = time.UnixMilli(ts.UnixMilli())

	s.mu.Lock()
	p, err := s.partitioner.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(rec.Key)}, int32(len(s.logs)))
	if err != nil {
		s.mu.Unlock()
		return eventstore.Position{}, fmt.Errorf("memstore append: %w: %w", eventstore.ErrNotAppended, err)
	}
	rec.Position = eventstore.Position{Partition: p, Offset: int64(len(s.logs[p]))}
	s.logs[p] = append(s.logs[p], rec)
	close(s.grew)
	s.grew = make(chan struct{})
	s.mu.Unlock()

	if f.Appended != nil {
		if err := f.Appended(ctx, e, rec.Position); err != nil {
			return eventstore.Position{}, err
		}
	}
	return rec.Position, nil
}

// read checks an injected read fault and that partition exists (-1: no
// particular partition).
func (s *Store) read(ctx context.Context, partition int32) error {
	if f := s.currentFaults(); f.Read != nil {
		if err := f.Read(ctx, partition); err != nil {
			return err
		}
	}
	if partition != -1 && (partition < 0 || int(partition) >= len(s.logs)) {
		return fmt.Errorf("memstore: partition %d does not exist (the topic has %d)", partition, len(s.logs))
	}
	return ctx.Err()
}

// Partitions lists the topic's partitions, 0 to n-1.
func (s *Store) Partitions(ctx context.Context) ([]int32, error) {
	if err := s.read(ctx, -1); err != nil {
		return nil, err
	}
	out := make([]int32, len(s.logs))
	for i := range out {
		out[i] = int32(i)
	}
	return out, nil
}

// HighWater returns the offset the next record of partition will get.
func (s *Store) HighWater(ctx context.Context, partition int32) (int64, error) {
	if err := s.read(ctx, partition); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.logs[partition])), nil
}

// OffsetForTime returns the first offset whose timestamp is at or after t,
// compared in milliseconds like Kafka's offsets-for-times, or the high-water
// mark when there is none.
func (s *Store) OffsetForTime(ctx context.Context, partition int32, t time.Time) (int64, error) {
	if err := s.read(ctx, partition); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.logs[partition]
	for i, r := range recs {
		if r.Timestamp.UnixMilli() >= t.UnixMilli() {
			return int64(i), nil
		}
	}
	return int64(len(recs)), nil
}

// Subscribe streams partition's records in order from offset from on, then
// every record appended later, until ctx ends or the subscription is
// closed. An offset beyond the high-water mark is
// eventstore.ErrOffsetOutOfRange.
func (s *Store) Subscribe(ctx context.Context, partition int32, from int64) (eventstore.Subscription, error) {
	if err := s.read(ctx, partition); err != nil {
		return nil, err
	}
	if err := s.inRange(partition, from); err != nil {
		return nil, err
	}
	sub := &subscription{out: make(chan eventstore.Record, 1024), errs: make(chan error, 8), done: make(chan struct{})}
	go sub.run(ctx, s, partition, from)
	return sub, nil
}

func (s *Store) inRange(partition int32, offset int64) error {
	s.mu.Lock()
	hw := int64(len(s.logs[partition]))
	s.mu.Unlock()
	if offset < 0 || offset > hw {
		return fmt.Errorf("memstore read %d@%d (high water %d): %w", partition, offset, hw, eventstore.ErrOffsetOutOfRange)
	}
	return nil
}

// Fetch returns the records at offsets (ascending) of partition. Like a
// Kafka fetch it waits, until ctx ends, for offsets not written yet.
func (s *Store) Fetch(ctx context.Context, partition int32, offsets []int64) ([]eventstore.Record, error) {
	if len(offsets) == 0 {
		return nil, nil
	}
	if err := s.read(ctx, partition); err != nil {
		return nil, err
	}
	if err := s.inRange(partition, offsets[0]); err != nil {
		return nil, err
	}
	last := offsets[len(offsets)-1]
	for {
		recs, grew := s.since(partition, 0)
		if last < int64(len(recs)) {
			out := make([]eventstore.Record, 0, len(offsets))
			for _, o := range offsets {
				out = append(out, clone(recs[o]))
			}
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-grew:
		}
	}
}

// since returns partition's records from offset from on and a channel
// closed at the next write.
func (s *Store) since(partition int32, from int64) ([]eventstore.Record, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := s.logs[partition]
	return recs[min(from, int64(len(recs))):len(recs):len(recs)], s.grew
}

// clone copies a record so no reader shares bytes with the log or with
// another reader, as records read from Kafka do not.
func clone(r eventstore.Record) eventstore.Record {
	r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
	r.Headers = slices.Clone(r.Headers)
	for i, h := range r.Headers {
		r.Headers[i].Value = bytes.Clone(h.Value)
	}
	return r
}

type subscription struct {
	out  chan eventstore.Record
	errs chan error
	done chan struct{}
	once sync.Once
}

func (sub *subscription) run(ctx context.Context, s *Store, partition int32, next int64) {
	defer close(sub.out)
	for {
		recs, grew := s.since(partition, next)
		for _, r := range recs {
			select {
			case sub.out <- clone(r):
				next++
			case <-ctx.Done():
				return
			case <-sub.done:
				return
			}
		}
		if len(recs) > 0 {
			continue
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return
		case <-sub.done:
			return
		}
	}
}

// Records implements eventstore.Subscription.
func (sub *subscription) Records() <-chan eventstore.Record { return sub.out }

// Errors implements eventstore.Subscription. An in-memory partition has no
// stream errors: a bad offset is refused by Subscribe itself.
func (sub *subscription) Errors() <-chan error { return sub.errs }

// Close implements eventstore.Subscription.
func (sub *subscription) Close() error {
	sub.once.Do(func() { close(sub.done) })
	return nil
}

// Codec is the codec the store encodes appends with; tests decode what they
// read with it.
func (s *Store) Codec() *eventstore.Codec { return s.codec }
