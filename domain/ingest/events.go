package ingest

import "time"

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
