package provider

import (
	"encoding/json"
	"time"
)

// Name is a provider's stable name as it appears in routes, events and
// the source of every value it delivered ("oura").
type Name string

// The providers of issue 10; only those with a client and a normalizer are
// served (see Supported).
const (
	Oura     Name = "oura"
	Whoop    Name = "whoop"
	Polar    Name = "polar"
	Withings Name = "withings"
	Fitbit   Name = "fitbit"
	Garmin   Name = "garmin"
)

// All lists every provider of issue 10, in the order GET /v1/providers
// shows them; one without a configured client is listed as not
// configured.
func All() []Name { return []Name{Oura, Whoop, Polar, Withings, Fitbit, Garmin} }

// Scopes are the OAuth scopes each provider is asked for (Garmin grants
// its permissions per app in its portal, so it asks for none).
func Scopes(p Name) []string {
	switch p {
	case Oura:
		return []string{"personal", "daily", "heartrate", "workout", "session", "spo2", "tag"}
	case Whoop:
		return []string{"read:recovery", "read:cycles", "read:workout", "read:sleep", "read:profile", "read:body_measurement", "offline"}
	case Polar:
		return []string{"accesslink.read_all"}
	case Withings:
		return []string{"user.info", "user.metrics", "user.activity"}
	case Fitbit:
		return []string{"activity", "heartrate", "sleep", "weight", "profile", "oxygen_saturation", "respiratory_rate", "temperature"}
	}
	return []string{}
}

// Status is where a connection stands, as GET /v1/connections shows it.
type Status string

// Connection states. A connection is syncing while its backfill runs,
// connected once it has caught up, error while fetches keep failing (the
// last error says why) and revoked once the user or the provider ended it.
const (
	StatusConnected Status = "connected"
	StatusSyncing   Status = "syncing"
	StatusRevoked   Status = "revoked"
	StatusError     Status = "error"
)

// Event type names of the connection lifecycle and of provider data.
const (
	// EventConnectionEstablished: the user authorised BioSync at the
	// provider and the tokens are stored.
	EventConnectionEstablished = "connection.established"
	// EventConnectionRevoked: the connection ended (by the user, or the
	// provider refused the refresh token).
	EventConnectionRevoked = "connection.revoked"
	// EventNotified: the provider told us something changed (a pointer, or
	// data), recorded as it arrived.
	EventNotified = "provider.notified"
	// EventRecordFetched: one record as the provider's API returned it.
	EventRecordFetched = "provider.record_fetched"
)

// Revocation reasons carried by ConnectionRevoked.
const (
	// RevokedByUser: DELETE /v1/connections/{provider}.
	RevokedByUser = "user"
	// RevokedByProvider: the provider answered invalid_grant to a refresh
	// or told us the user revoked access.
	RevokedByProvider = "provider"
)

// ConnectionEstablished is the body of connection.established (schema
// version 1). The tokens are not in it: they stay command-side, sealed
// with the user's data key.
type ConnectionEstablished struct {
	Provider       Name      `json:"provider"`
	ProviderUserID string    `json:"provider_user_id"`
	Scopes         []string  `json:"scopes"`
	ConnectedAt    time.Time `json:"connected_at"`
	// BackfillFrom and BackfillTo bound the history fetched on connect.
	BackfillFrom time.Time `json:"backfill_from"`
	BackfillTo   time.Time `json:"backfill_to"`
}

// ConnectionRevoked is the body of connection.revoked (schema version 1).
type ConnectionRevoked struct {
	Provider  Name      `json:"provider"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
	// DeleteData records the user's wish that data received through this
	// connection be deleted too.
	DeleteData bool `json:"delete_data"`
}

// Notified is the body of provider.notified (schema version 1): one
// delivery to /v1/webhooks/{provider}, signature already verified. The
// event id is derived from DeliveryID, the provider's own identity of the
// delivery, so a redelivery is the same event.
type Notified struct {
	Provider       Name      `json:"provider"`
	DeliveryID     string    `json:"delivery_id"`
	ProviderUserID string    `json:"provider_user_id"`
	ReceivedAt     time.Time `json:"received_at"`
	// Operation is what happened at the provider (create, update, delete).
	Operation string `json:"operation"`
	// DataType names the provider's collection ("sleep", "daily_activity").
	DataType string `json:"data_type"`
	// ObjectID is the provider's id of the record to fetch ("" for data
	// notifications).
	ObjectID string `json:"object_id,omitempty"`
	// EventTime is the provider's time of the change, as sent.
	EventTime string `json:"event_time,omitempty"`
}

// RecordFetched is the body of provider.record_fetched (schema version 1):
// one record exactly as the provider's API returned it. Normalized values
// are derived by projectors, never stored in the event.
type RecordFetched struct {
	Provider  Name            `json:"provider"`
	DataType  string          `json:"data_type"`
	RecordID  string          `json:"record_id"`
	FetchedAt time.Time       `json:"fetched_at"`
	Record    json.RawMessage `json:"record"`
}
