package logbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/biosync/biosync/eventstore"
)

// Metadata keys set on every message.
const (
	MetaEventType = "event_type"
	MetaUserID    = "user_id"
)

// Offsets stores how far a consumer has acknowledged each partition
// (adapters/postgres.ProcessOffsets).
type Offsets interface {
	// Load returns the next offset to read (0 when none is stored).
	Load(ctx context.Context, consumer string, partition int32) (int64, error)
	// Store records that everything before next was handled.
	Store(ctx context.Context, consumer string, partition int32, next int64) error
}

// Owners decides which process reads a partition for a consumer
// (adapters/postgres.ProcessOffsets: a session advisory lock), so with
// several instances each event is handled by one of them.
type Owners interface {
	// Claim tries to take partition for consumer. When ok, held ends when
	// the claim is lost (its connection failed) or release is called.
	Claim(ctx context.Context, consumer string, partition int32) (held context.Context, release func(), ok bool, err error)
}

// Subscriber implements message.Subscriber over the event log. The topic
// given to Subscribe is informational (there is one event topic).
type Subscriber struct {
	// Log is read with one subscription per partition; give the subscriber
	// a Log of its own (see adapters/kafka.Log.Subscribe).
	Log eventstore.Log
	// Codec decrypts the records.
	Codec *eventstore.Codec
	// Offsets keeps the acknowledged position per partition.
	Offsets Offsets
	// Owners, when set, makes each partition read by one process at a
	// time; nil reads every partition here.
	Owners Owners
	// Consumer names the offsets ("providers.fetch").
	Consumer string
	// Types are the event types delivered; others are skipped (their
	// offsets are stored at most once a second).
	Types map[string]bool
	// Redeliver is the pause before a nacked message is sent again
	// (default 1 s).
	Redeliver time.Duration
	// Logger reports stream failures (event ids and types only).
	Logger *slog.Logger

	mu     sync.Mutex
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// Subscribe starts reading every partition; the channel closes once ctx
// ends or Close is called.
func (s *Subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	if s.Log == nil || s.Codec == nil || s.Offsets == nil || s.Consumer == "" {
		return nil, errors.New("logbus: Log, Codec, Offsets and Consumer are required")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Redeliver <= 0 {
		s.Redeliver = time.Second
	}
	parts, err := s.Log.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancel = append(s.cancel, cancel)
	s.mu.Unlock()
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		s.wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.wg.Done()
			for ctx.Err() == nil {
				if err := s.owned(ctx, p, out); err != nil && ctx.Err() == nil {
					s.Logger.Warn("event log subscription failed; resubscribing", "consumer", s.Consumer, "partition", p, "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(s.Redeliver):
					}
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out, nil
}

// owned consumes p while this process holds it (always without Owners);
// a partition another process holds is asked for again after Redeliver.
func (s *Subscriber) owned(ctx context.Context, p int32, out chan<- *message.Message) error {
	if s.Owners == nil {
		return s.consume(ctx, p, out)
	}
	held, release, ok, err := s.Owners.Claim(ctx, s.Consumer, p)
	if err != nil {
		return err
	}
	if !ok {
		select {
		case <-ctx.Done():
		case <-time.After(max(s.Redeliver, 2*time.Second)):
		}
		return nil
	}
	defer release()
	return s.consume(held, p, out)
}

// consume streams one partition from its stored offset until ctx ends or
// the stream fails.
func (s *Subscriber) consume(ctx context.Context, p int32, out chan<- *message.Message) error {
	from, err := s.Offsets.Load(ctx, s.Consumer, p)
	if err != nil {
		return err
	}
	sub, err := s.Log.Subscribe(ctx, p, from)
	if err != nil {
		return err
	}
	defer sub.Close()
	lastSkipStore := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-sub.Errors():
			return err
		case rec, ok := <-sub.Records():
			if !ok {
				return errors.New("the subscription ended")
			}
			next := rec.Position.Offset + 1
			e, err := s.Codec.Decode(ctx, rec)
			if err != nil {
				return fmt.Errorf("decode %d/%d: %w", p, rec.Position.Offset, err)
			}
			if e.Erased || !s.Types[e.Type] {
				if time.Since(lastSkipStore) > time.Second {
					if err := s.Offsets.Store(ctx, s.Consumer, p, next); err != nil {
						return err
					}
					lastSkipStore = time.Now()
				}
				continue
			}
			if err := s.deliver(ctx, e, out); err != nil {
				return err
			}
			if err := s.Offsets.Store(ctx, s.Consumer, p, next); err != nil {
				return err
			}
		}
	}
}

// deliver sends the event until it is acknowledged (a nack sends it again
// after Redeliver).
func (s *Subscriber) deliver(ctx context.Context, e eventstore.Stored, out chan<- *message.Message) error {
	for {
		msg := message.NewMessage(e.ID.String(), e.Payload)
		msg.Metadata.Set(MetaEventType, e.Type)
		msg.Metadata.Set(MetaUserID, e.UserID.String())
		if e.CorrelationID != "" {
			middleware.SetCorrelationID(e.CorrelationID, msg)
		}
		msg.SetContext(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case out <- msg:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-msg.Acked():
			return nil
		case <-msg.Nacked():
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.Redeliver):
			}
		}
	}
}

// Close stops every subscription and waits for them.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	for _, c := range s.cancel {
		c()
	}
	s.cancel = nil
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// LoggingPublisher is the poison queue's publisher: a message whose
// handling kept failing is logged (its id, event type and the reason
// watermill's poison middleware recorded; never its payload) and counted.
// The failure itself is visible on the connection (last_error, status).
type LoggingPublisher struct {
	Logger *slog.Logger
	mu     sync.Mutex
	count  int
}

// Publish logs each message.
func (p *LoggingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	p.count += len(msgs)
	p.mu.Unlock()
	for _, m := range msgs {
		if p.Logger != nil {
			p.Logger.Warn("a message kept failing and was set aside", "topic", topic, "event_id", m.UUID,
				"event_type", m.Metadata.Get(MetaEventType), "reason", m.Metadata.Get(middleware.ReasonForPoisonedKey))
		}
	}
	return nil
}

// Poisoned is how many messages were set aside.
func (p *LoggingPublisher) Poisoned() int { p.mu.Lock(); defer p.mu.Unlock(); return p.count }

// Close does nothing.
func (p *LoggingPublisher) Close() error { return nil }
