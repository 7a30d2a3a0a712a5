package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"
)

// Header names on every Kafka record. They duplicate the routing part of the
// envelope so tools can filter by type or user without decrypting anything.
const (
	HeaderEventID       = "event-id"
	HeaderEventType     = "event-type"
	HeaderSchemaVersion = "schema-version"
	HeaderUserID        = "user-id"
	HeaderKeyID         = "key-id"
	HeaderTraceParent   = "traceparent"
	HeaderTraceState    = "tracestate"
	HeaderCorrelationID = "correlation-id"
)

// Record is an event in its wire form: Kafka key (the user id, so one user's
// events are totally ordered in one partition), headers and value.
type Record struct {
	Key       []byte
	Headers   []Header
	Value     []byte
	Position  Position
	Timestamp time.Time
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// envelope is the JSON value of a record. It is the whole truth on its own;
// headers are a convenience copy.
type envelope struct {
	ID            uuid.UUID `json:"id"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schema_version"`
	UserID        uuid.UUID `json:"user_id"`
	OccurredAt    time.Time `json:"occurred_at"`
	RecordedAt    time.Time `json:"recorded_at"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	TraceParent   string    `json:"traceparent,omitempty"`
	TraceState    string    `json:"tracestate,omitempty"`
	KeyID         string    `json:"key_id"`
	Encoding      string    `json:"encoding"`
	Payload       []byte    `json:"payload"` // base64 in JSON
}

// payloadEncoding says how Payload was produced: zstd-compressed plaintext
// (compression must come before encryption) sealed with AES-256-GCM.
const payloadEncoding = "zstd+aes256gcm"

// Codec turns events into records and back, encrypting payloads with the
// owner's data key.
type Codec struct {
	keys *Keyring
	enc  *zstd.Encoder
	dec  *zstd.Decoder
}

// NewCodec builds a codec over a key ring.
func NewCodec(keys *Keyring) *Codec {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
	return &Codec{keys: keys, enc: enc, dec: dec}
}

// Keys exposes the key ring (erasure needs it).
func (c *Codec) Keys() *Keyring { return c.keys }

// Encode seals e's payload and builds its record.
func (c *Codec) Encode(ctx context.Context, e Event) (Record, error) {
	if e.ID == uuid.Nil || e.UserID == uuid.Nil || e.Type == "" || e.SchemaVersion < 1 {
		return Record{}, errors.New("eventstore: event needs id, user id, type and schema version")
	}
	sealed, err := c.keys.Seal(ctx, e.UserID, e.ID, e.Type, c.enc.EncodeAll(e.Payload, nil))
	if err != nil {
		return Record{}, err
	}
	env := envelope{
		ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, UserID: e.UserID,
		OccurredAt: e.OccurredAt.UTC(), RecordedAt: e.RecordedAt.UTC(),
		CorrelationID: e.CorrelationID, CausationID: e.CausationID,
		TraceParent: e.TraceParent, TraceState: e.TraceState,
		KeyID: DataKeyID, Encoding: payloadEncoding, Payload: sealed,
	}
	value, err := json.Marshal(env)
	if err != nil {
		return Record{}, err
	}
	user := []byte(e.UserID.String())
	hs := []Header{
		{HeaderEventID, []byte(e.ID.String())},
		{HeaderEventType, []byte(e.Type)},
		{HeaderSchemaVersion, []byte(strconv.Itoa(e.SchemaVersion))},
		{HeaderUserID, user},
		{HeaderKeyID, []byte(DataKeyID)},
	}
	if e.CorrelationID != "" {
		hs = append(hs, Header{HeaderCorrelationID, []byte(e.CorrelationID)})
	}
	if e.TraceParent != "" {
		hs = append(hs, Header{HeaderTraceParent, []byte(e.TraceParent)})
	}
	if e.TraceState != "" {
		hs = append(hs, Header{HeaderTraceState, []byte(e.TraceState)})
	}
	return Record{Key: user, Headers: hs, Value: value, Timestamp: e.RecordedAt}, nil
}

// ErrCorrupt marks a record that is not a BioSync envelope at all.
var ErrCorrupt = errors.New("record is not a valid event envelope")

// maxPayload bounds decompression (a zip bomb in the log must not OOM a
// projector).
const maxPayload = 32 << 20

// Decode parses a record and decrypts its payload. A destroyed user key
// yields a Stored with Erased set and no payload (not an error); any other
// key or decryption failure is an error that must stop the caller.
func (c *Codec) Decode(ctx context.Context, r Record) (Stored, error) {
	var env envelope
	if err := json.Unmarshal(r.Value, &env); err != nil {
		return Stored{}, fmt.Errorf("%w at %d/%d: %v", ErrCorrupt, r.Position.Partition, r.Position.Offset, err)
	}
	if env.Encoding != payloadEncoding || env.KeyID != DataKeyID {
		return Stored{}, fmt.Errorf("%w at %d/%d: unknown encoding %q/%q", ErrCorrupt, r.Position.Partition, r.Position.Offset, env.Encoding, env.KeyID)
	}
	s := Stored{Position: r.Position, KeyID: env.KeyID, Event: Event{
		ID: env.ID, Type: env.Type, SchemaVersion: env.SchemaVersion, UserID: env.UserID,
		OccurredAt: env.OccurredAt, RecordedAt: env.RecordedAt,
		CorrelationID: env.CorrelationID, CausationID: env.CausationID,
		TraceParent: env.TraceParent, TraceState: env.TraceState,
	}}
	pt, err := c.keys.Open(ctx, env.UserID, env.ID, env.Type, env.Payload)
	if errors.Is(err, ErrErased) {
		s.Erased = true
		return s, nil
	}
	if err != nil {
		return Stored{}, fmt.Errorf("event %s at %d/%d: %w", env.ID, r.Position.Partition, r.Position.Offset, err)
	}
	if s.Payload, err = c.dec.DecodeAll(pt, make([]byte, 0, len(pt)*4)); err != nil {
		return Stored{}, fmt.Errorf("%w: event %s: decompress: %v", ErrCorrupt, env.ID, err)
	}
	if len(s.Payload) > maxPayload {
		return Stored{}, fmt.Errorf("%w: event %s payload too large", ErrCorrupt, env.ID)
	}
	return s, nil
}
