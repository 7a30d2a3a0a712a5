package ingestion_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
)

// onMemstore is a push service on the unit layer's in-memory event store
// (sealed with real per-user keys, partitioned like Kafka).
func onMemstore(t *testing.T) (*ingestion.Service, *memstore.Store) {
	t.Helper()
	codec, err := memstore.NewCodec()
	require.NoError(t, err)
	log := memstore.New(codec, 4)
	return newPushes(t, ingestion.Deps{Log: log, Accounts: everyoneExists()}), log
}

// readBack decodes the record at pos.
func readBack(t *testing.T, log *memstore.Store, pos eventstore.Position) eventstore.Stored {
	t.Helper()
	recs, err := log.Fetch(context.Background(), pos.Partition, []int64{pos.Offset})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	st, err := log.Codec().Decode(context.Background(), recs[0])
	require.NoError(t, err)
	return st
}

// A push is one samples.pushed event in the user's partition, sealed with
// the user's key, whose body is the batch as accepted; the token names
// exactly where it landed.
func TestAPushLandsAsOneSealedEventWhereItsTokenSays(t *testing.T) {
	s, log := onMemstore(t)
	ada := uuid.New()
	batch := ingest.Batch{Source: ingest.Source{Provider: "bridge", Device: "watch"},
		Samples: []ingest.Sample{{Type: "steps", Start: "2026-11-20T08:00:00Z", End: "2026-11-20T08:15:00Z", Value: 1200, Unit: "count"}}}

	acc, err := s.Push(context.Background(), commands.PushSamples{UserID: ada, Batch: batch, DeliveryID: "msg_1", Channel: "webhook"})
	require.NoError(t, err)
	require.Len(t, acc.Token, 1, "one command, one record")

	st := readBack(t, log, acc.Token[0])
	assert.Equal(t, acc.EventID, st.ID)
	assert.Equal(t, ingest.EventPushed, st.Type)
	assert.Equal(t, ada, st.UserID)
	assert.NotEmpty(t, st.KeyID, "the payload is sealed with the user's data key")
	var body ingest.Pushed
	require.NoError(t, json.Unmarshal(st.Payload, &body))
	assert.Equal(t, "msg_1", body.DeliveryID)
	assert.Equal(t, ada.String(), body.Batch.UserID, "the batch names the user it was appended for")
	assert.Equal(t, batch.Samples, body.Batch.Samples)
}

// A log that certainly did not take the record answers unavailable and
// the push is not remembered as accepted: the sender's retry appends it.
func TestAPushTheLogRefusedIsNotRememberedAsAccepted(t *testing.T) {
	codec, err := memstore.NewCodec()
	require.NoError(t, err)
	log := memstore.New(codec, 4)
	remembered := 0
	s := newPushes(t, ingestion.Deps{Log: log, Accounts: everyoneExists(), Dedup: dedup{
		lookup:   func(context.Context, uuid.UUID) (ingestion.Delivery, bool) { return ingestion.Delivery{}, false },
		remember: func(context.Context, uuid.UUID, ingestion.Delivery) { remembered++ },
	}})
	log.Inject(memstore.Faults{Append: func(context.Context, eventstore.Event) error {
		return fmt.Errorf("broker down: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	}})
	push := commands.PushSamples{UserID: uuid.New(), DeliveryID: "msg_2", Channel: "webhook"}
	_, err = s.Push(context.Background(), push)
	require.ErrorIs(t, err, domain.ErrUnavailable)
	assert.Zero(t, remembered)

	log.Inject(memstore.Faults{})
	acc, err := s.Push(context.Background(), push)
	require.NoError(t, err, "the retry appends")
	assert.False(t, acc.Duplicate)
	assert.Equal(t, 1, remembered)
	hw, err := log.HighWater(context.Background(), acc.Token[0].Partition)
	require.NoError(t, err)
	assert.Equal(t, int64(1), hw, "exactly one record in the user's partition")
}
