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

	mu       sync.Mutex
	producer sarama.SyncProducer
}

// NewAppender prepares an appender. The producer is created lazily and
// recreated after failures, so a Kafka outage heals without a restart.
func NewAppender(c Config, codec *eventstore.Codec) *Appender {
	return &Appender{cfg: c.WithDefaults(), codec: codec, timeout: 2 * time.Second, observe: func(time.Duration, error) {}}
}

// SetObserver installs a callback for append latency metrics.
func (a *Appender) SetObserver(f func(d time.Duration, err error)) { a.observe = f }

func (a *Appender) get() (sarama.SyncProducer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.producer != nil {
		return a.producer, nil
	}
	p, err := sarama.NewSyncProducer(a.cfg.Brokers, NewSaramaConfig(a.cfg))
	if err != nil {
		return nil, err
	}
	a.producer = p
	return p, nil
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
	p, err := a.get()
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("kafka producer: %w", unavailable(err))
	}
	msg := &sarama.ProducerMessage{Topic: a.cfg.Topic, Key: sarama.ByteEncoder(rec.Key), Value: sarama.ByteEncoder(rec.Value), Timestamp: rec.Timestamp}
	for _, h := range rec.Headers {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
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
		// The send may still complete later; the caller was told 503 and a
		// retry carries the same deterministic event id, so a late success
		// is a harmless duplicate.
		a.reset(p)
		return eventstore.Position{}, fmt.Errorf("kafka append: %w: %v", domain.ErrUnavailable, ctx.Err())
	}
	if err != nil {
		if errors.Is(err, sarama.ErrMessageSizeTooLarge) {
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
