package commands

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/domain/settings"
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

// DeleteSamples removes the user's own samples and sleep sessions that
// Deletion selects (a time range, optionally one source provider and one
// type). It appends one samples.deleted event; the outcome is an Accepted
// whose token tells reads when the rows are gone.
type DeleteSamples struct {
	UserID   uuid.UUID
	Deletion ingest.Deletion
}

// Refresh exchanges a refresh token for a new pair.
type Refresh struct {
	RefreshToken string
	IP           string
}

// ChangePassword replaces the caller's password after re-checking it.
type ChangePassword struct {
	UserID          uuid.UUID
	CurrentPassword string
	NewPassword     string
	IP              string
}

// ChangeProfile replaces the settings document of a user. IfMatch is the
// version the client read (0 for the defaults nobody has edited yet).
type ChangeProfile struct {
	UserID  uuid.UUID
	IfMatch int64
	Profile settings.Profile
}

// ChangeNotifications replaces the notification preferences of a user.
type ChangeNotifications struct {
	UserID        uuid.UUID
	IfMatch       int64
	Notifications settings.Notifications
}

// ProfileSaved is the outcome of ChangeProfile: the document as stored
// (normalized), its new version and where its event landed.
type ProfileSaved struct {
	settings.ProfileChanged
	Token eventstore.Token
}

// NotificationsSaved is the outcome of ChangeNotifications.
type NotificationsSaved struct {
	settings.NotificationsChanged
	Token eventstore.Token
}

// StaleVersion is the answer to an edit based on an old version: someone
// else changed the document since the client read it.
type StaleVersion struct {
	Document settings.Document
	Current  int64
}

// Error names the current version so the client knows to read again.
func (e *StaleVersion) Error() string {
	return fmt.Sprintf("%s changed: the current version is %d", e.Document, e.Current)
}

// Is makes a StaleVersion a domain.ErrConflict (409).
func (e *StaleVersion) Is(target error) bool { return target == domain.ErrConflict }

// WriteJournalEntry creates the journal entry of one local day.
type WriteJournalEntry struct {
	UserID uuid.UUID
	Entry  journal.Entry
}

// ReplaceJournalEntry replaces a journal entry as a whole. IfMatch is the
// version the client read.
type ReplaceJournalEntry struct {
	UserID  uuid.UUID
	EntryID uuid.UUID
	IfMatch int64
	Entry   journal.Entry
}

// DeleteJournalEntry deletes a journal entry; its day is free again.
type DeleteJournalEntry struct {
	UserID  uuid.UUID
	EntryID uuid.UUID
	IfMatch int64
}

// JournalEntrySaved is the outcome of a journal command: the entry as
// stored (normalized; for a deletion only id, date and version) and where
// its event landed.
type JournalEntrySaved struct {
	journal.EntryWritten
	// At is when the event was written (its occurred time).
	At    time.Time
	Token eventstore.Token
}

// DayTaken is the answer to a journal entry for a local day that already
// has one: the client edits Existing (PUT) instead.
type DayTaken struct {
	Date     string
	Existing uuid.UUID
}

// Error names the entry that holds the day.
func (e *DayTaken) Error() string {
	return fmt.Sprintf("%s already has journal entry %s", e.Date, e.Existing)
}

// Is makes a DayTaken a domain.ErrConflict (409).
func (e *DayTaken) Is(target error) bool { return target == domain.ErrConflict }

// TOTPEnrolment is a started enrolment: the secret to put into an
// authenticator app, also as an otpauth:// URL for a QR code.
type TOTPEnrolment struct {
	Secret string
	URL    string
}

// ConfirmTOTP turns MFA on with a code from the pending secret. The
// account's current password is asked again: an access token alone (15
// minutes, possibly stolen) must not be able to enrol another
// authenticator, which would end every session and hand the recovery codes
// to whoever holds the token.
type ConfirmTOTP struct {
	UserID   uuid.UUID
	Password string
	Code     string
	IP       string
}

// MFAChange re-authenticates a change to MFA (disable, new recovery codes)
// with the password and a second factor (a TOTP or a recovery code).
type MFAChange struct {
	UserID   uuid.UUID
	Password string
	Code     string
	IP       string
}

// ErrMFARequired is the answer to a correct password of an account with MFA
// on when the login carries no code. It wraps domain.ErrUnauthorized; the
// HTTP layer gives it its own problem type (mfa-required) so the client
// knows to ask for the code. It tells a password holder that MFA is on, as
// every two-step TOTP login does; it is only ever returned after the
// password was verified.
var ErrMFARequired = fmt.Errorf("a one-time code is required: %w", domain.ErrUnauthorized)

// ErrInvalidSecondFactor is a login whose password was right but whose
// one-time or recovery code was wrong or already used. It wraps
// domain.ErrUnauthorized (401 like a wrong password).
var ErrInvalidSecondFactor = fmt.Errorf("the one-time code or recovery code is wrong or already used: %w", domain.ErrUnauthorized)
