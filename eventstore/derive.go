package eventstore

import (
	"crypto/hmac"
	"crypto/sha256"
)

// Purposes of the keys derived from the master key (see MasterKeys.Derive).
// Each string is part of the derived bytes: changing one re-keys whatever
// was stored under it, so a new purpose gets a new string (v2), never an
// edit.
const (
	// PurposeEmailIndex keys the email claim hash (accounts.email_key);
	// operators' tools and per-account rate limits key by it too.
	PurposeEmailIndex = "biosync email index v1"
	// PurposeRecoveryCodes keys the stored hashes of MFA recovery codes.
	PurposeRecoveryCodes = "biosync mfa recovery codes v1"
	// PurposeIdempotencyFingerprint keys Idempotency-Key fingerprints, so
	// every instance computes the same.
	PurposeIdempotencyFingerprint = "biosync idempotency fingerprint v1"
	// PurposePageCursor keys the signatures of the HTTP API's page
	// cursors, so every instance accepts the cursors any of them issued
	// (and no client can make one up).
	PurposePageCursor = "biosync page cursor v1"
)

// Derive returns a purpose-bound key derived from the current master key
// (HMAC-SHA256 with the purpose as message), so one configured secret
// yields independent keys that never need their own configuration.
//
// Keys derived this way change with the current master key: rotating it
// voids recovery codes (users renew them with a TOTP code) and must re-key
// accounts.email_key (documented in docs/operations.md; not built yet).
func (mk MasterKeys) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, mk.Keys[mk.Current])
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
