package eventstore_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/eventstore"
)

// pinnedMasterKeys has two entries so the pins also show that only the
// current (first) key is derived from.
const pinnedMasterKeys = "k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

// Keys derived from the master key are stored state in disguise: the email
// claims (accounts.email_key), recovery codes and idempotency fingerprints
// are keyed by them, so existing deployments depend on their exact bytes
// (the same pins held for the derivation before it moved here); page
// cursors that clients hold stay valid across a deployment only while
// theirs stays the same.
func TestDerivedKeysArePinned(t *testing.T) {
	mk, err := eventstore.ParseMasterKeys(pinnedMasterKeys)
	require.NoError(t, err)
	for _, c := range []struct{ purpose, want string }{
		{eventstore.PurposeEmailIndex, "d6e37db12e4c412e63f95bad7b9f3c5c464a45f10b0971dfbcf930f368c6f311"},
		{eventstore.PurposeRecoveryCodes, "1966bda3afc3c6f11535a45accc1a440706157f1ea9808d0deaf4c120baf63bf"},
		{eventstore.PurposeIdempotencyFingerprint, "542b9b5e248533544ba666c733ae09377b1235cea4fd6088ac1ddf7d297be624"},
		{eventstore.PurposePageCursor, "799a8ec3d3a6456a6bcc4a463277b68d8b6b8cac8488cebcb9eb42da978acd08"},
	} {
		assert.Equal(t, c.want, hex.EncodeToString(mk.Derive(c.purpose)), c.purpose)
	}
}

// The purpose strings are part of the derived bytes: an edit would re-key
// stored state.
func TestDerivationPurposesAreUnchanged(t *testing.T) {
	assert.Equal(t, "biosync email index v1", eventstore.PurposeEmailIndex)
	assert.Equal(t, "biosync mfa recovery codes v1", eventstore.PurposeRecoveryCodes)
	assert.Equal(t, "biosync idempotency fingerprint v1", eventstore.PurposeIdempotencyFingerprint)
	assert.Equal(t, "biosync page cursor v1", eventstore.PurposePageCursor)
}

// Only the current master key is derived from: listing an old key for
// unwrapping does not change derived keys, making a new one current does.
func TestDeriveUsesTheCurrentMasterKey(t *testing.T) {
	both, err := eventstore.ParseMasterKeys(pinnedMasterKeys)
	require.NoError(t, err)
	alone, err := eventstore.ParseMasterKeys("k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	rotated, err := eventstore.ParseMasterKeys("k1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=")
	require.NoError(t, err)
	assert.Equal(t, alone.Derive(eventstore.PurposeEmailIndex), both.Derive(eventstore.PurposeEmailIndex))
	assert.NotEqual(t, rotated.Derive(eventstore.PurposeEmailIndex), both.Derive(eventstore.PurposeEmailIndex))
	assert.NotEqual(t, both.Derive(eventstore.PurposeEmailIndex), both.Derive(eventstore.PurposeRecoveryCodes), "purposes give independent keys")
}
