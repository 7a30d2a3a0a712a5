package commands

import (
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// RegisterUser creates an account. Email uniqueness is claimed synchronously
// in PostgreSQL before the event is appended.
type RegisterUser struct {
	Email    string
	Password string
	Timezone string // IANA name, e.g. "Europe/Berlin"
}

// Registered is the outcome of RegisterUser.
type Registered struct {
	UserID   uuid.UUID
	Email    string
	Timezone string
	Token    eventstore.Token
}

// Login exchanges credentials for an access token and a refresh token.
// UserAgent and IP are kept with the session for the session list.
type Login struct {
	Email     string
	Password  string
	UserAgent string
	IP        string
	// OTP is the current TOTP code, RecoveryCode a recovery code; one of
	// them is required when the account has MFA on.
	OTP          string
	RecoveryCode string
}

// Session is an issued token pair: a short-lived access token carrying
// SessionID as its sid, and the opaque refresh token of that session.
type Session struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
	SessionID    uuid.UUID
	UserID       uuid.UUID
}

// PushSamples appends one batch of samples and sleep sessions for one user.
// DeliveryID is the natural identity of the push (webhook-id, or the
// Idempotency-Key of the app endpoint); when set, the event id derives from
// it, so a redelivery is recognised and never double-counts.
type PushSamples struct {
	UserID     uuid.UUID
	Batch      ingest.Batch
	DeliveryID string
	Channel    string // "webhook" or "app": where the batch entered
}

// Accepted is the outcome of an appending command. Duplicate is true when
// the same delivery was already accepted; Token then points at the original.
type Accepted struct {
	EventID   uuid.UUID
	Token     eventstore.Token
	Duplicate bool
}
