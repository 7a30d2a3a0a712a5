package ingest

import (
	"fmt"
	"time"

	"github.com/biosync/biosync/domain"
)

// EventPushed is the stable type name of Pushed.
const EventPushed = "samples.pushed"

// Pushed is the body of samples.pushed (schema version 1): the batch exactly
// as accepted, plus where and when it entered. Normalized values are derived
// from it by projectors, never stored in the event.
type Pushed struct {
	DeliveryID string    `json:"delivery_id,omitempty"`
	Channel    string    `json:"channel"`
	ReceivedAt time.Time `json:"received_at"`
	Batch      Batch     `json:"batch"`
}

// ErrDeliveryReused is a delivery id (a webhook-id, or an Idempotency-Key
// scoped to its user) that came back with a batch other than the one first
// accepted under it. The first batch stands; the second is refused, never
// appended, whether the first is remembered by the fast store or only by
// the durable record.
var ErrDeliveryReused = fmt.Errorf("the delivery id was already used for a different batch: %w", domain.ErrConflict)
