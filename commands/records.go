package commands

import (
	"time"

	"github.com/google/uuid"
)

// This file holds the records the concept packages' ports exchange with
// adapters (sessions, MFA state, mailed-token purposes, deletion
// requests): adapters/postgres stores them for more than one concept.

// Revocation reasons stored with a revoked session, for support and audit.
const (
	RevokeLogout         = "logout"
	RevokeLogoutAll      = "logout_all"
	RevokeReuse          = "refresh_reuse"
	RevokePasswordChange = "password_change"
	RevokeMFAChange      = "mfa_change"
)

// NewSession is one login: a refresh-token family and its first token.
type NewSession struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	TokenHash []byte
	ExpiresAt time.Time
	UserAgent string
	IP        string
	// PasswordHash is the hash the login verified. The session is created
	// only if it is still the account's current hash, so a login racing a
	// password change cannot outlive it.
	PasswordHash string
	// MFA records that the login presented a second factor. A session
	// without it is created only while the account has MFA off, so a login
	// racing an MFA enrolment cannot outlive it.
	MFA bool
}

// RotationOutcome says what presenting a refresh token did.
type RotationOutcome int

const (
	// RotationInvalid: unknown, expired or revoked; nothing changed.
	RotationInvalid RotationOutcome = iota
	// Rotated: the token was current; it is now used and the new one issued.
	Rotated
	// RotationReused: the token had already been exchanged; its whole
	// family is now revoked (RFC 9700 §4.14.2).
	RotationReused
)

// Rotation is the result of sessions.SessionStore.Rotate.
type Rotation struct {
	Outcome   RotationOutcome
	UserID    uuid.UUID
	SessionID uuid.UUID
	// MFA is whether the session was opened with a second factor; the new
	// access token keeps saying so.
	MFA bool
}

// SessionInfo is one live session as the session list shows it.
type SessionInfo struct {
	ID         uuid.UUID
	CreatedAt  time.Time
	LastUsedAt time.Time
	UserAgent  string
	IP         string
	Current    bool
}

// TOTPState is a user's TOTP enrolment as stored: the sealed secret,
// whether it is confirmed (MFA on), and the last accepted time step.
type TOTPState struct {
	Secret   []byte
	Enabled  bool
	LastStep int64
}

// Purposes of mailed tokens (accounts.EmailTokens).
const (
	PurposeVerifyEmail   = "verify_email"
	PurposeResetPassword = "reset_password"
)

// Erasure request states (DeletionRequest.Status).
const (
	ErasureScheduled = "scheduled" // waiting out the grace period; cancellable
	ErasureCancelled = "cancelled"
	ErasurePurging   = "purging" // key destroyed, data purged; a second purge is pending
	ErasureCompleted = "completed"
)

// DeletionRequest is one erasure request (GDPR art. 17) and its progress.
type DeletionRequest struct {
	ID, UserID   uuid.UUID
	Status       string
	RequestedAt  time.Time
	ExecuteAfter time.Time
	CancelledAt  *time.Time
	CompletedAt  *time.Time
	// EmailKey is the keyed hash of the account's address, taken when the
	// request was made (the account row goes with the first purge): caches
	// key anonymous requests, such as a stored registration, by it. It is
	// cleared when the erasure completes.
	EmailKey []byte
}
