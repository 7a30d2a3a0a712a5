package eventstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
)

// registered gives user a data key the way the system does: by appending
// (encoding) their first event.
func registered(t *testing.T, c *eventstore.Codec, user uuid.UUID) {
	t.Helper()
	_, err := c.Encode(context.Background(), event(user, `{}`))
	require.NoError(t, err)
}

// A read model keeps Ada's address sealed: the stored bytes do not hold it,
// Ada's key opens it, and it cannot be passed off as Bob's address or as
// Ada's display name, nor altered unnoticed.
func TestASealedFieldOpensOnlyAsItsUsersOwnField(t *testing.T) {
	ctx := context.Background()
	c := newCodec(t, memstore.NewKeyStore(), testMaster)
	registered(t, c, ada)
	registered(t, c, bob)
	keys := c.Keys()

	sealed, err := keys.SealField(ctx, ada, "users.email", []byte(canary))
	require.NoError(t, err)
	assert.False(t, bytes.Contains(sealed, []byte(canary)), "the sealed address holds the plaintext")
	assert.False(t, bytes.Contains(sealed, []byte("lovelace")), "the sealed address holds part of the plaintext")

	opened, err := keys.OpenField(ctx, ada, "users.email", sealed)
	require.NoError(t, err)
	assert.Equal(t, canary, string(opened))

	again, err := keys.SealField(ctx, ada, "users.email", []byte(canary))
	require.NoError(t, err)
	assert.Equal(t, sealed, again, "sealing one address twice must give the same bytes (a rebuild leaves rows byte-identical)")
	other, err := keys.SealField(ctx, ada, "users.email", []byte("ada@example.org"))
	require.NoError(t, err)
	assert.NotEqual(t, sealed[:12], other[:12], "two addresses sealed under one nonce")
	bobs, err := keys.SealField(ctx, bob, "users.email", []byte(canary))
	require.NoError(t, err)
	assert.NotEqual(t, sealed, bobs, "one address sealed for two users gives the same bytes: equal addresses would show across rows")
	asName, err := keys.SealField(ctx, ada, "settings.display_name", []byte(canary))
	require.NoError(t, err)
	assert.NotEqual(t, sealed[:12], asName[:12], "one value sealed as two fields under one nonce")

	_, err = keys.OpenField(ctx, bob, "users.email", sealed)
	assert.ErrorIs(t, err, eventstore.ErrDecrypt, "Ada's sealed address opened as Bob's")
	_, err = keys.OpenField(ctx, ada, "settings.display_name", sealed)
	assert.ErrorIs(t, err, eventstore.ErrDecrypt, "Ada's sealed address opened as her display name")
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	_, err = keys.OpenField(ctx, ada, "users.email", tampered)
	assert.ErrorIs(t, err, eventstore.ErrDecrypt, "an altered value opened")
	_, err = keys.OpenField(ctx, ada, "users.email", sealed[:5])
	assert.ErrorIs(t, err, eventstore.ErrDecrypt, "a truncated value opened")
}

// Erasure destroys the key: every field sealed with it is gone, for this
// instance and for one that never cached the key alike, while another
// user's fields stay readable.
func TestAnErasedUsersSealedFieldsCannotBeOpened(t *testing.T) {
	ctx := context.Background()
	store := memstore.NewKeyStore()
	c := newCodec(t, store, testMaster)
	registered(t, c, ada)
	registered(t, c, bob)
	adas, err := c.Keys().SealField(ctx, ada, "users.email", []byte(canary))
	require.NoError(t, err)
	bobs, err := c.Keys().SealField(ctx, bob, "users.email", []byte("bob@example.com"))
	require.NoError(t, err)

	require.NoError(t, c.Keys().Destroy(ctx, ada))
	for _, keys := range []*eventstore.Keyring{c.Keys(), newCodec(t, store, testMaster).Keys()} {
		opened, err := keys.OpenField(ctx, ada, "users.email", adas)
		assert.ErrorIs(t, err, eventstore.ErrErased, "the erased user's address")
		assert.Nil(t, opened, "the erased user's address")
		_, err = keys.SealField(ctx, ada, "users.email", []byte(canary))
		assert.ErrorIs(t, err, eventstore.ErrErased, "sealing for an erased user")
		opened, err = keys.OpenField(ctx, bob, "users.email", bobs)
		require.NoError(t, err, "another user's address")
		assert.Equal(t, "bob@example.com", string(opened), "another user's address")
	}
}

// Sealing a field never creates a data key: a user without one has no
// events, so there is nothing of theirs to keep.
func TestSealingAFieldNeverCreatesADataKey(t *testing.T) {
	ctx := context.Background()
	store := memstore.NewKeyStore()
	c := newCodec(t, store, testMaster)
	stranger := uuid.New()
	_, err := c.Keys().SealField(ctx, stranger, "users.email", []byte(canary))
	assert.ErrorIs(t, err, eventstore.ErrNoKey)
	_, err = store.LoadKey(ctx, stranger)
	assert.ErrorIs(t, err, eventstore.ErrNoKey, "sealing a field created a data key")
}

// BenchmarkOpenField is what GET /v1/me adds per request with the user's
// key cached (an instance keeps a key for up to a minute).
func BenchmarkOpenField(b *testing.B) {
	ctx := context.Background()
	c := newCodec(b, memstore.NewKeyStore(), testMaster)
	_, err := c.Encode(ctx, event(ada, `{}`))
	require.NoError(b, err)
	sealed, err := c.Keys().SealField(ctx, ada, "users.email", []byte(canary))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Keys().OpenField(ctx, ada, "users.email", sealed); err != nil {
			b.Fatal(err)
		}
	}
}
