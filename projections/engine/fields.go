package engine

import (
	"context"

	"github.com/google/uuid"
)

// Fields seals and opens the personal fields of read-model rows (an
// address, a display name) with their user's data key, the key that seals
// the user's events in the log (eventstore.Keyring implements it). A read
// model that keeps such a field this way loses it on erasure the moment
// the key is destroyed, in every generation, as-of copy and backup, before
// any row is purged.
type Fields interface {
	// SealField encrypts plaintext for user, bound to field (the user id
	// and field name are associated data). It never creates a key; it
	// returns eventstore.ErrErased when the user's key was destroyed.
	SealField(ctx context.Context, user uuid.UUID, field string, plaintext []byte) ([]byte, error)
	// OpenField decrypts what SealField sealed for the same user and
	// field; eventstore.ErrErased when the key was destroyed.
	OpenField(ctx context.Context, user uuid.UUID, field string, sealed []byte) ([]byte, error)
}

// Sealing is implemented by projectors that keep personal fields sealed
// (users, settings). A runtime hands them the key ring its codec opens the
// events with, so the live generation, a rebuild and an as-of build all
// store the same form, and none of them can run without the keys.
type Sealing interface {
	// WithFields returns the projector sealing with f.
	WithFields(f Fields) Projector
}
