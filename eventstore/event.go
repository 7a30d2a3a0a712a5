package eventstore

import (
	"time"

	"github.com/google/uuid"
)

// Event is one immutable fact about one user. Payload is the plaintext JSON
// of the event body; it is encrypted with the user's data key on the way into
// the log and decrypted on the way out.
type Event struct {
	ID            uuid.UUID
	Type          string // stable name, e.g. "samples.pushed"
	SchemaVersion int
	UserID        uuid.UUID
	OccurredAt    time.Time // when it happened in the world (as far as we know)
	RecordedAt    time.Time // when BioSync accepted it
	CorrelationID string    // request id that started the chain
	CausationID   string    // id of the message that caused this one
	TraceParent   string    // W3C traceparent, so traces continue into projectors
	TraceState    string    // W3C tracestate
	Payload       []byte    // plaintext JSON body
}

// Position is where a record sits in the log. Within one partition offsets
// are totally ordered; all of one user's events share one partition.
type Position struct {
	Partition int32 `json:"p"`
	Offset    int64 `json:"o"`
}

// Stored is an event read back from the log with its position. Erased is set
// when the user's key was destroyed: the envelope is readable, the payload is
// gone forever, and projectors skip it.
type Stored struct {
	Event
	Position
	KeyID  string
	Erased bool
}

// namespace roots deterministic event ids (UUIDv5) so the same natural
// identity (a webhook delivery, an Idempotency-Key) always yields the same id.
var namespace = uuid.MustParse("4f1d6c3a-9b0e-5c7d-8a21-b105ec0de000")

// DeterministicID returns the UUIDv5 of a natural identity, e.g.
// DeterministicID("push", deliveryID). Replays of the same input produce the
// same event id, which keeps duplicates harmless end to end.
func DeterministicID(kind string, parts ...string) uuid.UUID {
	name := kind
	for _, p := range parts {
		name += "\x00" + p
	}
	return uuid.NewSHA1(namespace, []byte(name))
}
