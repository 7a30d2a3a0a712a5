package eventstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
	"github.com/biosync/biosync/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testMaster = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func newCodec(t testing.TB, store eventstore.KeyStore, master string) *eventstore.Codec {
	t.Helper()
	mk, err := eventstore.ParseMasterKeys(master)
	require.NoError(t, err)
	kr, err := eventstore.NewKeyring(store, mk)
	require.NoError(t, err)
	return eventstore.NewCodec(kr)
}

var (
	ada    = uuid.MustParse("0b7c2c9e-2f8e-4a39-9f62-8f3c4c3f7a10")
	bob    = uuid.MustParse("5d1f7e0a-1111-4c2b-9a0e-77aa00bb11cc")
	recAt  = time.Date(2026, 11, 20, 7, 30, 0, 0, time.UTC)
	canary = "canary-7f3a-ada-lovelace@example.com"
)

func event(user uuid.UUID, payload string) eventstore.Event {
	return eventstore.Event{
		ID: eventstore.DeterministicID("test", user.String(), payload), Type: "user.registered", SchemaVersion: 1, UserID: user,
		OccurredAt: recAt, RecordedAt: recAt, CorrelationID: "req-1", CausationID: "req-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Payload:     []byte(payload),
	}
}

func TestEncryptedRoundTripKeepsEveryEnvelopeField(t *testing.T) {
	c := newCodec(t, memstore.NewKeyStore(), testMaster)
	e := event(ada, `{"email":"`+canary+`"}`)
	rec, err := c.Encode(context.Background(), e)
	require.NoError(t, err)
	require.False(t, bytes.Contains(rec.Value, []byte(canary)), "plaintext leaked into the record")
	require.False(t, bytes.Contains(rec.Value, []byte("lovelace")), "plaintext leaked into the record")
	require.Equal(t, ada.String(), string(rec.Key), "record key = %q, want the user id", rec.Key)
	got, err := c.Decode(context.Background(), rec)
	require.NoError(t, err)
	require.False(t, got.Erased, "round trip changed the event: %+v", got)
	require.Equal(t, string(e.Payload), string(got.Payload), "round trip changed the event: %+v", got)
	require.Equal(t, e.ID, got.ID, "round trip changed the event: %+v", got)
	require.Equal(t, e.Type, got.Type, "round trip changed the event: %+v", got)
	require.Equal(t, ada, got.UserID, "round trip changed the event: %+v", got)
	require.True(t, got.OccurredAt.Equal(recAt), "round trip changed the event: %+v", got)
	require.Equal(t, e.TraceParent, got.TraceParent, "round trip changed the event: %+v", got)
	require.Equal(t, "req-1", got.CorrelationID, "round trip changed the event: %+v", got)
}

func TestPayloadIsBoundToItsEventIDAndType(t *testing.T) {
	c := newCodec(t, memstore.NewKeyStore(), testMaster)
	rec, _ := c.Encode(context.Background(), event(ada, `{"a":1}`))
	var env map[string]any
	_ = json.Unmarshal(rec.Value, &env)
	env["type"] = "samples.pushed"
	rec.Value, _ = json.Marshal(env)
	_, err := c.Decode(context.Background(), rec)
	require.ErrorIs(t, err, eventstore.ErrDecrypt, "moving a payload to another event type must fail authentication, got %v", err)
}

func TestErasedUserIsUnreadableButOthersAreNot(t *testing.T) {
	store := memstore.NewKeyStore()
	c := newCodec(t, store, testMaster)
	ctx := context.Background()
	ra, _ := c.Encode(ctx, event(ada, `{"n":"`+canary+`"}`))
	rb, _ := c.Encode(ctx, event(bob, `{"n":"bob"}`))
	require.NoError(t, c.Keys().Destroy(ctx, ada))
	// A fresh instance (no cache) as well as this one must agree.
	for _, codec := range []*eventstore.Codec{c, newCodec(t, store, testMaster)} {
		got, err := codec.Decode(ctx, ra)
		require.NoError(t, err, "erased user's event: erased=%v payload=%q err=", got.Erased, got.Payload)
		require.True(t, got.Erased, "erased user's event: erased=%v payload=%q err=%v", got.Erased, got.Payload, err)
		require.Nil(t, got.Payload, "erased user's event: erased=%v payload=%q err=%v", got.Erased, got.Payload, err)
		got, err = codec.Decode(ctx, rb)
		require.NoError(t, err, "other user's event must stay readable: %+v", got)
		require.False(t, got.Erased, "other user's event must stay readable: %+v %v", got, err)
		require.Equal(t, `{"n":"bob"}`, string(got.Payload), "other user's event must stay readable: %+v %v", got, err)
	}
}

func TestWrongMasterKeyHaltsInsteadOfLookingErased(t *testing.T) {
	store := memstore.NewKeyStore()
	rec, _ := newCodec(t, store, testMaster).Encode(context.Background(), event(ada, `{}`))
	other := "k1:" + "ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY="
	_, err := newCodec(t, store, other).Decode(context.Background(), rec)
	require.ErrorIs(t, err, eventstore.ErrKeyUnwrap, "want ErrKeyUnwrap, got %v", err)
}

func TestMasterKeyRotationStillUnwrapsOldKeys(t *testing.T) {
	store := memstore.NewKeyStore()
	rec, _ := newCodec(t, store, testMaster).Encode(context.Background(), event(ada, `{"x":1}`))
	rotated := "k2:ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=," + testMaster
	got, err := newCodec(t, store, rotated).Decode(context.Background(), rec)
	require.NoError(t, err, "old key after rotation")
	require.Equal(t, `{"x":1}`, string(got.Payload), "old key after rotation: %v", err)
}

// TestEnvelopeWireFormat pins the record value shape (payload bytes vary
// with the random data key and nonce, so they are blanked) and checks it
// against schemas/events/envelope.v1.schema.json.
func TestEnvelopeWireFormat(t *testing.T) {
	c := newCodec(t, memstore.NewKeyStore(), testMaster)
	rec, err := c.Encode(context.Background(), event(ada, `{"email":"ada@example.com"}`))
	require.NoError(t, err)
	raw, _ := schemas.Events.ReadFile("events/envelope.v1.schema.json")
	doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	comp := jsonschema.NewCompiler()
	comp.AssertFormat()
	_ = comp.AddResource("envelope.json", doc)
	sch, err := comp.Compile("envelope.json")
	require.NoError(t, err)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Value))
	require.NoError(t, sch.Validate(inst), "envelope does not match its schema")
	var env map[string]any
	_ = json.Unmarshal(rec.Value, &env)
	env["payload"] = "<sealed>"
	got, _ := json.MarshalIndent(env, "", "  ")
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	hs, _ := json.MarshalIndent(headers, "", "  ")
	got = append(append(got, '\n'), hs...)
	path := "testdata/envelope.v1.golden"
	if *update {
		_ = os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "%v (go test ./eventstore -update creates it)", err)
	require.Equal(t, got, want, "envelope wire format changed:\n%s\nwant:\n%s", got, want)
}

func TestConsistencyTokenRoundTrip(t *testing.T) {
	tok := eventstore.Token{{Partition: 3, Offset: 41}, {Partition: 0, Offset: 7}, {Partition: 3, Offset: 12}}
	back, err := eventstore.ParseToken(tok.String())
	require.NoError(t, err)
	require.Len(t, back, 2, "token = %v", back)
	require.Equal(t, (eventstore.Position{Partition: 0, Offset: 7}), back[0], "token = %v", back)
	require.Equal(t, (eventstore.Position{Partition: 3, Offset: 41}), back[1], "token = %v", back)
	for _, bad := range []string{"v1.", "v2.MzozMw", "v1.!!", "v1." + "MzotMQ", "x"} {
		_, err := eventstore.ParseToken(bad)
		assert.Error(t, err, "ParseToken(%q) accepted a malformed token", bad)
	}
}

func TestDeterministicIDsAreStablePerIdentity(t *testing.T) {
	a := eventstore.DeterministicID("push.webhook", "msg_1")
	require.Equal(t, eventstore.DeterministicID("push.webhook", "msg_1"), a, "ids must be UUIDv5 of the natural identity")
	require.NotEqual(t, eventstore.DeterministicID("push.webhook", "msg_2"), a, "ids must be UUIDv5 of the natural identity")
	require.EqualValues(t, 5, a.Version(), "ids must be UUIDv5 of the natural identity")
	require.NotEqual(t, eventstore.DeterministicID("ab", "c"), eventstore.DeterministicID("a", "bc"), "identity parts must not run together")
}

// TestAnotherInstanceStopsReadingAnErasedUserWithinTheCacheAge: an instance
// that missed the erasure broadcast keeps the key it had loaded for at most
// KeyCacheMaxAge, then sees the tombstone like everyone else.
func TestAnotherInstanceStopsReadingAnErasedUserWithinTheCacheAge(t *testing.T) {
	store := memstore.NewKeyStore()
	ctx := context.Background()
	eraser, other := newCodec(t, store, testMaster), newCodec(t, store, testMaster)
	clock := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	eventstore.SetClock(other.Keys(), func() time.Time { return clock })
	rec, _ := eraser.Encode(ctx, event(ada, `{"n":"`+canary+`"}`))
	got, err := other.Decode(ctx, rec)
	require.NoError(t, err, "before erasure: %+v", got)
	require.False(t, got.Erased, "before erasure: %+v %v", got, err)
	require.NoError(t, eraser.Keys().Destroy(ctx, ada))
	clock = clock.Add(eventstore.KeyCacheMaxAge - time.Second)
	got, _ = other.Decode(ctx, rec)
	require.False(t, got.Erased, "the cached key should still be in use just before the cache age (this test relies on it)")
	clock = clock.Add(2 * time.Second)
	got, err = other.Decode(ctx, rec)
	require.NoError(t, err, "after the cache age the erased user's event must be a tombstone: erased=%v payload=%q err=", got.Erased, got.Payload)
	require.True(t, got.Erased, "after the cache age the erased user's event must be a tombstone: erased=%v payload=%q err=%v", got.Erased, got.Payload, err)
	require.Nil(t, got.Payload, "after the cache age the erased user's event must be a tombstone: erased=%v payload=%q err=%v", got.Erased, got.Payload, err)
}
