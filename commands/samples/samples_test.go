package samples_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/samples"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
)

var (
	tokyo = time.FixedZone("", 9*3600)
	now   = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
)

// onMemstore is a deletion service on the unit layer's in-memory event
// store (sealed with real per-user keys, partitioned like Kafka).
func onMemstore(t *testing.T) (*samples.Service, *memstore.Store) {
	t.Helper()
	codec, err := memstore.NewCodec()
	require.NoError(t, err)
	log := memstore.New(codec, 4)
	s, err := samples.New(samples.Deps{Log: log, Envelope: commands.Envelope{Now: func() time.Time { return now }}})
	require.NoError(t, err)
	return s, log
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

// aFarFutureDay is the day a wrongly set clock put a sample on.
func aFarFutureDay() ingest.Deletion {
	return ingest.Deletion{From: time.Date(2099, 3, 1, 0, 0, 0, 0, tokyo), To: time.Date(2099, 3, 2, 0, 0, 0, 0, tokyo), Provider: "apple_health", Type: "steps"}
}

// A deletion is one samples.deleted event in the user's partition, after
// what the user pushed before, sealed with the user's key, whose body is
// the deletion as asked (the offsets of the range kept); the token names
// exactly where it landed.
func TestADeletionLandsAsOneSealedEventAfterTheUsersPushes(t *testing.T) {
	s, log := onMemstore(t)
	ada := uuid.New()
	ctx := context.Background()
	pushed, err := log.Append(ctx, eventstore.Event{ID: uuid.New(), Type: ingest.EventPushed, SchemaVersion: 1, UserID: ada, Payload: []byte(`{}`)})
	require.NoError(t, err)

	acc, err := s.DeleteSamples(ctx, commands.DeleteSamples{UserID: ada, Deletion: aFarFutureDay()})
	require.NoError(t, err)
	require.Len(t, acc.Token, 1, "one command, one record")
	assert.False(t, acc.Duplicate)
	pos := acc.Token[0]
	assert.Equal(t, pushed.Partition, pos.Partition, "the user's events share one partition, so the log orders the deletion after the push")
	assert.Greater(t, pos.Offset, pushed.Offset)

	st := readBack(t, log, pos)
	assert.Equal(t, acc.EventID, st.ID)
	assert.Equal(t, ingest.EventDeleted, st.Type)
	assert.Equal(t, ada, st.UserID)
	assert.Equal(t, 1, st.SchemaVersion)
	assert.True(t, st.OccurredAt.Equal(now), "stamped by the command's clock: %v", st.OccurredAt)
	assert.NotEmpty(t, st.KeyID, "the payload is sealed with the user's data key")
	var body ingest.Deletion
	require.NoError(t, json.Unmarshal(st.Payload, &body))
	want := aFarFutureDay()
	assert.True(t, body.From.Equal(want.From) && body.To.Equal(want.To), "range %v..%v, want %v..%v", body.From, body.To, want.From, want.To)
	_, off := body.From.Zone()
	assert.Equal(t, 9*3600, off, "the offset the client sent is kept")
	assert.Equal(t, "apple_health", body.Provider)
	assert.Equal(t, "steps", body.Type)
}

// A deletion that breaks a rule is refused naming every parameter at
// fault, and nothing reaches the log.
func TestAnInvalidDeletionAppendsNothing(t *testing.T) {
	log := &commandstest.Log{}
	s, err := samples.New(samples.Deps{Log: log})
	require.NoError(t, err)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, tokyo)

	_, err = s.DeleteSamples(context.Background(), commands.DeleteSamples{UserID: uuid.New(),
		Deletion: ingest.Deletion{From: day, To: day.AddDate(2, 0, 0), Type: "mood"}})
	var v *domain.ValidationError
	require.ErrorAs(t, err, &v)
	var fields []string
	for _, p := range v.Problems {
		fields = append(fields, p.Field)
	}
	assert.Equal(t, []string{"/from", "/type"}, fields, "a range over 400 days and an unknown type")

	_, err = s.DeleteSamples(context.Background(), commands.DeleteSamples{Deletion: aFarFutureDay()})
	require.Error(t, err, "a deletion without a user")
	assert.Empty(t, log.Appended(), "refused deletions append nothing")
}

// Every deletion is an event of its own, even the same range twice: a
// second one also removes what was pushed between the two, so it is never
// taken for a duplicate (the HTTP edge's Idempotency-Key makes retries
// safe).
func TestTheSameDeletionTwiceIsTwoEvents(t *testing.T) {
	log := &commandstest.Log{}
	s, err := samples.New(samples.Deps{Log: log})
	require.NoError(t, err)
	ada := uuid.New()
	first, err := s.DeleteSamples(context.Background(), commands.DeleteSamples{UserID: ada, Deletion: aFarFutureDay()})
	require.NoError(t, err)
	again, err := s.DeleteSamples(context.Background(), commands.DeleteSamples{UserID: ada, Deletion: aFarFutureDay()})
	require.NoError(t, err)
	assert.NotEqual(t, first.EventID, again.EventID)
	assert.False(t, again.Duplicate)
	assert.Len(t, log.Appended(), 2)
}

// While the log cannot take the record the deletion answers unavailable
// (503 at the edge) and nothing is in the log; the client's retry appends
// it once.
func TestADeletionTheLogRefusedIsUnavailableAndTheRetryAppendsIt(t *testing.T) {
	s, log := onMemstore(t)
	ada := uuid.New()
	log.Inject(memstore.Faults{Append: func(context.Context, eventstore.Event) error {
		return fmt.Errorf("broker down: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	}})
	cmd := commands.DeleteSamples{UserID: ada, Deletion: aFarFutureDay()}
	_, err := s.DeleteSamples(context.Background(), cmd)
	require.ErrorIs(t, err, domain.ErrUnavailable)

	log.Inject(memstore.Faults{})
	acc, err := s.DeleteSamples(context.Background(), cmd)
	require.NoError(t, err, "the retry appends")
	hw, err := log.HighWater(context.Background(), acc.Token[0].Partition)
	require.NoError(t, err)
	assert.Equal(t, int64(1), hw, "exactly one record in the user's partition")
}

func TestNewNamesAMissingLog(t *testing.T) {
	_, err := samples.New(samples.Deps{})
	require.ErrorContains(t, err, "Log")
}
