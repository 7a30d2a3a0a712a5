package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// Appender appends events with a sarama SyncProducer. It implements
// eventstore.Appender.
type Appender struct {
	cfg     Config
	codec   *eventstore.Codec
	timeout time.Duration
	observe func(d time.Duration, err error)

	mu        sync.Mutex
	producer  sarama.SyncProducer
	creating  chan struct{} // closed when the creation in flight ends
	createErr error         // outcome of the last creation
}

// NewAppender prepares an appender. The producer is created lazily and
// recreated after failures, so a Kafka outage heals without a restart.
func NewAppender(c Config, codec *eventstore.Codec) *Appender {
	return &Appender{cfg: c.WithDefaults(), codec: codec, timeout: 2 * time.Second, observe: func(time.Duration, error) {}}
}

// SetObserver installs a callback for append latency metrics.
func (a *Appender) SetObserver(f func(d time.Duration, err error)) { a.observe = f }

// get returns the producer, creating it at most once at a time (callers
// wait for the one creation in flight, bounded by their context) so a hung
// broker cannot queue requests behind a mutex.
func (a *Appender) get(ctx context.Context) (sarama.SyncProducer, error) {
	a.mu.Lock()
	if a.producer != nil {
		p := a.producer
		a.mu.Unlock()
		return p, nil
	}
	if a.creating == nil {
		done := make(chan struct{})
		a.creating = done
		go func() {
			p, err := sarama.NewSyncProducer(a.cfg.Brokers, NewSaramaConfig(a.cfg))
			a.mu.Lock()
			a.producer, a.createErr, a.creating = p, err, nil
			a.mu.Unlock()
			close(done)
		}()
	}
	done := a.creating
	a.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.producer == nil {
		return nil, a.createErr
	}
	return a.producer, nil
}

// reset drops a producer that failed: after an outage the idempotent
// producer's sequence state may be stale (OutOfOrderSequence), and a fresh
// producer id is the documented way out.
func (a *Appender) reset(p sarama.SyncProducer) {
	a.mu.Lock()
	if a.producer == p {
		a.producer = nil
		go p.Close()
	}
	a.mu.Unlock()
}

// Append encrypts e and writes it as one record keyed by its user id. It
// returns after Kafka acknowledged with acks=all, or an error wrapping
// domain.ErrUnavailable within about two seconds.
func (a *Appender) Append(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
	start := time.Now()
	rec, err := a.codec.Encode(ctx, e)
	if err != nil {
		return eventstore.Position{}, err
	}
	pos, err := a.send(ctx, rec)
	a.observe(time.Since(start), err)
	return pos, err
}

func (a *Appender) send(ctx context.Context, rec eventstore.Record) (eventstore.Position, error) {
	if len(rec.Value) > a.cfg.MaxMessageBytes {
		return eventstore.Position{}, fmt.Errorf("event of %d bytes exceeds the %d byte record limit", len(rec.Value), a.cfg.MaxMessageBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	p, err := a.get(ctx)
	if err != nil {
		// Nothing was sent: the caller may release what it reserved.
		return eventstore.Position{}, fmt.Errorf("kafka producer: %w: %w", eventstore.ErrNotAppended, unavailable(err))
	}
	msg := &sarama.ProducerMessage{Topic: a.cfg.Topic, Key: sarama.ByteEncoder(rec.Key), Value: sarama.ByteEncoder(rec.Value), Timestamp: rec.Timestamp}
	for _, h := range rec.Headers {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	type result struct {
		pos eventstore.Position
		err error
	}
	done := make(chan result, 1)
	go func() {
		part, off, err := p.SendMessage(msg)
		done <- result{eventstore.Position{Partition: part, Offset: off}, err}
	}()
	var res result
	select {
	case res = <-done:
		err = res.err
	case <-ctx.Done():
		// The send may still complete later: the outcome is unknown (not
		// ErrNotAppended). A retry carries the same deterministic event id,
		// so a late success is a harmless duplicate. Only our own deadline
		// means the broker is stuck; a caller that went away says nothing
		// about the producer.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			a.reset(p)
		}
		return eventstore.Position{}, fmt.Errorf("kafka append: %w: %v", domain.ErrUnavailable, ctx.Err())
	}
	if err != nil {
		if errors.Is(err, sarama.ErrMessageSizeTooLarge) || errors.Is(err, sarama.ErrInvalidMessageSize) {
			return eventstore.Position{}, fmt.Errorf("kafka append: %w", err)
		}
		a.reset(p)
		return eventstore.Position{}, fmt.Errorf("kafka append: %w", unavailable(err))
	}
	return res.pos, nil
}

// Close flushes and closes the producer.
func (a *Appender) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.producer == nil {
		return nil
	}
	err := a.producer.Close()
	a.producer = nil
	return err
}

// unavailable classifies a client error as "Kafka cannot be reached".
func unavailable(err error) error {
	return fmt.Errorf("%w: %v", domain.ErrUnavailable, err)
}
