package commands

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/biosync/biosync/eventstore"
)

// Clock tells the time to commands; nil means time.Now. It is a type so
// tests can pin the time of every decision without touching the system
// clock.
type Clock func() time.Time

// Now returns the current time of c.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// Envelope fills the envelope of the events commands append: ids, times,
// correlation and trace context. Its zero value is usable (system clock,
// no correlation id).
type Envelope struct {
	// Now is the clock of OccurredAt and RecordedAt.
	Now Clock
	// CorrelationID extracts the request's correlation id from ctx; nil
	// means none.
	CorrelationID func(ctx context.Context) string
}

// Event builds an event: correlation id from the request, causation from
// the request too (commands are caused by requests), and the W3C trace
// context so the trace continues into projectors.
func (v Envelope) Event(ctx context.Context, id, userID uuid.UUID, typ string, body any) (eventstore.Event, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return eventstore.Event{}, err
	}
	now := v.Now.Now().UTC()
	e := eventstore.Event{ID: id, Type: typ, SchemaVersion: 1, UserID: userID, OccurredAt: now, RecordedAt: now, Payload: payload}
	if v.CorrelationID != nil {
		e.CorrelationID = logSafeCorrelation(v.CorrelationID(ctx))
		e.CausationID = e.CorrelationID
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	// Only traceparent (ids and flags): tracestate is free text a caller
	// can set, and the envelope is unencrypted and immutable.
	e.TraceParent = carrier["traceparent"]
	return e, nil
}

// logSafeCorrelation keeps a request id that is a UUID (what the server
// generates) and replaces any other caller-chosen id with its UUIDv5: the
// envelope is not encrypted and the log is immutable, so a caller's string
// (which could carry a name) must not outlive an erasure there. The same
// caller id always maps to the same UUID, so correlation still works.
func logSafeCorrelation(id string) string {
	if id == "" {
		return ""
	}
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u.String()
	}
	return eventstore.DeterministicID("correlation", id).String()
}
