package eventstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
	"github.com/biosync/biosync/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testMaster = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func newCodec(t testing.TB, store eventstore.KeyStore, master string) *eventstore.Codec {
	t.Helper()
	mk, err := eventstore.ParseMasterKeys(master)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := eventstore.NewKeyring(store, mk)
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.Value, []byte(canary)) || bytes.Contains(rec.Value, []byte("lovelace")) {
		t.Fatal("plaintext leaked into the record")
	}
	if string(rec.Key) != ada.String() {
		t.Fatalf("record key = %q, want the user id", rec.Key)
	}
	got, err := c.Decode(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Erased || string(got.Payload) != string(e.Payload) || got.ID != e.ID || got.Type != e.Type ||
		got.UserID != ada || !got.OccurredAt.Equal(recAt) || got.TraceParent != e.TraceParent || got.CorrelationID != "req-1" {
		t.Fatalf("round trip changed the event: %+v", got)
	}
}

func TestPayloadIsBoundToItsEventIDAndType(t *testing.T) {
	c := newCodec(t, memstore.NewKeyStore(), testMaster)
	rec, _ := c.Encode(context.Background(), event(ada, `{"a":1}`))
	var env map[string]any
	_ = json.Unmarshal(rec.Value, &env)
	env["type"] = "samples.pushed"
	rec.Value, _ = json.Marshal(env)
	if _, err := c.Decode(context.Background(), rec); !errors.Is(err, eventstore.ErrDecrypt) {
		t.Fatalf("moving a payload to another event type must fail authentication, got %v", err)
	}
}

func TestErasedUserIsUnreadableButOthersAreNot(t *testing.T) {
	store := memstore.NewKeyStore()
	c := newCodec(t, store, testMaster)
	ctx := context.Background()
	ra, _ := c.Encode(ctx, event(ada, `{"n":"`+canary+`"}`))
	rb, _ := c.Encode(ctx, event(bob, `{"n":"bob"}`))
	if err := c.Keys().Destroy(ctx, ada); err != nil {
		t.Fatal(err)
	}
	// A fresh instance (no cache) as well as this one must agree.
	for _, codec := range []*eventstore.Codec{c, newCodec(t, store, testMaster)} {
		got, err := codec.Decode(ctx, ra)
		if err != nil || !got.Erased || got.Payload != nil {
			t.Fatalf("erased user's event: erased=%v payload=%q err=%v", got.Erased, got.Payload, err)
		}
		if got, err := codec.Decode(ctx, rb); err != nil || got.Erased || string(got.Payload) != `{"n":"bob"}` {
			t.Fatalf("other user's event must stay readable: %+v %v", got, err)
		}
	}
}

func TestWrongMasterKeyHaltsInsteadOfLookingErased(t *testing.T) {
	store := memstore.NewKeyStore()
	rec, _ := newCodec(t, store, testMaster).Encode(context.Background(), event(ada, `{}`))
	other := "k1:" + "ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY="
	_, err := newCodec(t, store, other).Decode(context.Background(), rec)
	if !errors.Is(err, eventstore.ErrKeyUnwrap) {
		t.Fatalf("want ErrKeyUnwrap, got %v", err)
	}
}

func TestMasterKeyRotationStillUnwrapsOldKeys(t *testing.T) {
	store := memstore.NewKeyStore()
	rec, _ := newCodec(t, store, testMaster).Encode(context.Background(), event(ada, `{"x":1}`))
	rotated := "k2:ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=," + testMaster
	got, err := newCodec(t, store, rotated).Decode(context.Background(), rec)
	if err != nil || string(got.Payload) != `{"x":1}` {
		t.Fatalf("old key after rotation: %v", err)
	}
}

// TestEnvelopeWireFormat pins the record value shape (payload bytes vary
// with the random data key and nonce, so they are blanked) and checks it
// against schemas/events/envelope.v1.schema.json.
func TestEnvelopeWireFormat(t *testing.T) {
	c := newCodec(t, memstore.NewKeyStore(), testMaster)
	rec, err := c.Encode(context.Background(), event(ada, `{"email":"ada@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := schemas.Events.ReadFile("events/envelope.v1.schema.json")
	doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	comp := jsonschema.NewCompiler()
	comp.AssertFormat()
	_ = comp.AddResource("envelope.json", doc)
	sch, err := comp.Compile("envelope.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Value))
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("envelope does not match its schema: %v", err)
	}
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
	if err != nil {
		t.Fatalf("%v (go test ./eventstore -update creates it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("envelope wire format changed:\n%s\nwant:\n%s", got, want)
	}
}

func TestConsistencyTokenRoundTrip(t *testing.T) {
	tok := eventstore.Token{{Partition: 3, Offset: 41}, {Partition: 0, Offset: 7}, {Partition: 3, Offset: 12}}
	back, err := eventstore.ParseToken(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0] != (eventstore.Position{Partition: 0, Offset: 7}) || back[1] != (eventstore.Position{Partition: 3, Offset: 41}) {
		t.Fatalf("token = %v", back)
	}
	for _, bad := range []string{"v1.", "v2.MzozMw", "v1.!!", "v1." + "MzotMQ", "x"} {
		if _, err := eventstore.ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted a malformed token", bad)
		}
	}
}

func TestDeterministicIDsAreStablePerIdentity(t *testing.T) {
	a := eventstore.DeterministicID("push.webhook", "msg_1")
	if a != eventstore.DeterministicID("push.webhook", "msg_1") || a == eventstore.DeterministicID("push.webhook", "msg_2") || a.Version() != 5 {
		t.Fatal("ids must be UUIDv5 of the natural identity")
	}
	if eventstore.DeterministicID("a", "bc") == eventstore.DeterministicID("ab", "c") {
		t.Fatal("identity parts must not run together")
	}
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
	if got, err := other.Decode(ctx, rec); err != nil || got.Erased {
		t.Fatalf("before erasure: %+v %v", got, err)
	}
	if err := eraser.Keys().Destroy(ctx, ada); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(eventstore.KeyCacheMaxAge - time.Second)
	if got, _ := other.Decode(ctx, rec); got.Erased {
		t.Fatal("the cached key should still be in use just before the cache age (this test relies on it)")
	}
	clock = clock.Add(2 * time.Second)
	if got, err := other.Decode(ctx, rec); err != nil || !got.Erased || got.Payload != nil {
		t.Fatalf("after the cache age the erased user's event must be a tombstone: erased=%v payload=%q err=%v", got.Erased, got.Payload, err)
	}
}
