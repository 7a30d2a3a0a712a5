package main

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
// are keyed by them, so existing deployments depend on their exact bytes.
func TestDerivedKeysArePinned(t *testing.T) {
	mk, err := eventstore.ParseMasterKeys(pinnedMasterKeys)
	require.NoError(t, err)
	assert.Equal(t, "d6e37db12e4c412e63f95bad7b9f3c5c464a45f10b0971dfbcf930f368c6f311", hex.EncodeToString(emailIndexKey(mk)), "email index key")
	assert.Equal(t, "1966bda3afc3c6f11535a45accc1a440706157f1ea9808d0deaf4c120baf63bf", hex.EncodeToString(derivedKey(mk, "biosync mfa recovery codes v1")), "recovery code key")
	assert.Equal(t, "542b9b5e248533544ba666c733ae09377b1235cea4fd6088ac1ddf7d297be624", hex.EncodeToString(derivedKey(mk, "biosync idempotency fingerprint v1")), "fingerprint key")
}

// The JWT key is base64 when it decodes to at least 32 bytes, else the raw
// string's bytes.
func TestJWTKeyDecodingIsPinned(t *testing.T) {
	assert.Equal(t, "secret-key-of-the-e2e-test-32-bytes!!", string(decodeKey("c2VjcmV0LWtleS1vZi10aGUtZTJlLXRlc3QtMzItYnl0ZXMhIQ==")))
	assert.Equal(t, "c2hvcnQ=", string(decodeKey("c2hvcnQ=")), "base64 of fewer than 32 bytes is taken as raw bytes")
}
