package eventstore

import (
	"context"
	"errors"
	"time"
)

// Appender appends events to the log. Append returns only after the log
// acknowledged the record durably (acks=all) and reports where it landed.
// It returns an error wrapping domain.ErrUnavailable when the log cannot be
// reached; the event may then be retried (ids are deterministic).
type Appender interface {
	Append(ctx context.Context, e Event) (Position, error)
}

// ErrNotAppended marks an append failure where the record was certainly not
// written (e.g. no connection to the log). Any other append error is
// ambiguous: the record may still land.
var ErrNotAppended = errors.New("event not appended")

// ErrOffsetOutOfRange: a reader asked for an offset the log does not have
// (beyond its end, or truncated away). Projectors halt on it.
var ErrOffsetOutOfRange = errors.New("offset out of range of the log")

// Log reads the event topic: the base for projectors and replay.
type Log interface {
	// Partitions lists the topic's partitions.
	Partitions(ctx context.Context) ([]int32, error)
	// HighWater returns the offset the next record of partition will get.
	HighWater(ctx context.Context, partition int32) (int64, error)
	// OffsetForTime returns the first offset whose record timestamp is at or
	// after t (HighWater when there is none).
	OffsetForTime(ctx context.Context, partition int32, t time.Time) (int64, error)
	// Subscribe streams partition's records in order from offset from on.
	Subscribe(ctx context.Context, partition int32, from int64) (Subscription, error)
	// Fetch reads the records at the given offsets of partition (sorted
	// ascending), independently of any open subscription (retrying dead
	// letters reads old records while the projector keeps streaming).
	Fetch(ctx context.Context, partition int32, offsets []int64) ([]Record, error)
}

// Subscription is an open stream of one partition.
type Subscription interface {
	// Records delivers records in log order; it is closed after Close.
	Records() <-chan Record
	// Errors delivers fatal stream errors (e.g. the offset is out of range).
	Errors() <-chan error
	// Close stops the stream.
	Close() error
}
