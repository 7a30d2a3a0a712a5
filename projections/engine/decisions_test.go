package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

func stored(user uuid.UUID, offset int64) eventstore.Stored {
	return eventstore.Stored{Event: eventstore.Event{UserID: user}, Position: eventstore.Position{Offset: offset}}
}

func offsets(events []eventstore.Stored) []int64 {
	var out []int64
	for _, e := range events {
		out = append(out, e.Offset)
	}
	return out
}

func records(from, to int64) []eventstore.Record {
	var out []eventstore.Record
	for o := from; o < to; o++ {
		out = append(out, eventstore.Record{Position: eventstore.Position{Offset: o}})
	}
	return out
}

func TestABatchSplitsByUserInOrderOfFirstAppearance(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	groups := byUser([]eventstore.Stored{stored(a, 1), stored(b, 2), stored(a, 3), stored(b, 4), stored(a, 5)})
	if assert.Len(t, groups, 2) {
		assert.Equal(t, []int64{1, 3, 5}, offsets(groups[0]), "each user's events in log order")
		assert.Equal(t, []int64{2, 4}, offsets(groups[1]))
	}
	assert.Empty(t, byUser(nil))
}

func TestRedeliveriesAndTheStopOffsetTrimTheBatch(t *testing.T) {
	b := records(10, 15)
	assert.Len(t, dropBefore(b, 12), 3, "offsets 10 and 11 were applied already")
	assert.Len(t, dropBefore(b, 10), 5)
	assert.Empty(t, dropBefore(b, 20))
	assert.Len(t, keepBefore(b, 12), 2, "an as-of build stops at offset 12, exclusive")
	assert.Empty(t, keepBefore(b, 10))
	assert.Len(t, keepBefore(b, 99), 5)
}

func TestParkedUsersEventsAreHeldBehindTheirDeadLetter(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	events := []eventstore.Stored{stored(a, 1), stored(b, 2), stored(a, 3)}
	live, held := splitParked(events, map[uuid.UUID]bool{a: true})
	assert.Equal(t, []int64{2}, offsets(live))
	assert.Equal(t, []int64{1, 3}, offsets(held), "held in log order")

	live, held = splitParked(events, nil)
	assert.Equal(t, []int64{1, 2, 3}, offsets(live), "nobody parked: the batch as it is")
	assert.Nil(t, held)
}

func TestEveryUserFailingIsTheSystemsFault(t *testing.T) {
	assert.True(t, everyUserFailed(3, 3))
	assert.False(t, everyUserFailed(2, 3), "some users flowed: their events are the poison")
	assert.False(t, everyUserFailed(1, 1), "one user alone cannot tell: park it")
	assert.ErrorIs(t, errEveryUserFailed, domain.ErrUnavailable, "retried, not parked")
}

// Only data faults are poison; the system's faults, fences and
// cancellations are retried with the same batch.
func TestOnlyDataErrorsArePoison(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		poison bool
	}{
		{"nil", nil, false},
		{"fenced", fmt.Errorf("apply: %w", ErrFenced), false},
		{"canceled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, false},
		{"data exception", &pgconn.PgError{Code: "22003"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, true},
		{"missing table", &pgconn.PgError{Code: "42P01"}, false},
		{"serialization", &pgconn.PgError{Code: "40001"}, false},
		{"unavailable", domain.ErrUnavailable, false},
		{"the projector rejected the event", errors.New("event x: invalid character"), true},
	} {
		assert.Equal(t, c.poison, permanent(c.err), c.name)
	}
}

func TestStoredErrorsAreCutAtACharacterBoundary(t *testing.T) {
	assert.Equal(t, "short", truncateError("short"))
	long := strings.Repeat("a", maxDeadLetterError-1) + "é and more"
	got := truncateError(long)
	assert.LessOrEqual(t, len(got), maxDeadLetterError)
	assert.True(t, utf8.ValidString(got), "no half character at the end")
}

func TestARegistryWithoutTheProjectorServesGenerationOneOnlyWhenEmpty(t *testing.T) {
	assert.Equal(t, 1, liveOr1(map[string]int{}, "metrics"), "a database from before the registry")
	assert.Equal(t, 3, liveOr1(map[string]int{"metrics": 3}, "metrics"))
	assert.Equal(t, 0, liveOr1(map[string]int{"users": 2}, "metrics"), "registered, none live")
}

func TestATokenIsReachedWhenEveryCheckpointIsBeyondIt(t *testing.T) {
	token := eventstore.Token{{Partition: 1, Offset: 10}, {Partition: 3, Offset: 0}}
	assert.True(t, passed(map[int32]int64{1: 11, 3: 1}, token))
	assert.False(t, passed(map[int32]int64{1: 10, 3: 1}, token), "next offset 10 has not applied offset 10")
	assert.False(t, passed(map[int32]int64{1: 11}, token), "no checkpoint yet")
}

func TestPartitionOfIsSaramasHashPartitioner(t *testing.T) {
	u := uuid.MustParse("6f1c1f5e-2f0a-4f4e-9d2b-0d6c1a1b2c3d")
	p := PartitionOf(u, 12)
	assert.GreaterOrEqual(t, p, int32(0))
	assert.Less(t, p, int32(12))
	assert.Equal(t, p, PartitionOf(u, 12), "stable")
	assert.Equal(t, int32(0), PartitionOf(u, 1))
}

func TestEveryGenerationHasItsOwnTables(t *testing.T) {
	assert.Equal(t, "samples_g1", Table("samples", 1))
	assert.Equal(t, "daily_source_rollups_g12", Table("daily_source_rollups", 12))
}

// sealingProjector is a read model that keeps sealed fields (Sealing).
type sealingProjector struct{ fields Fields }

func (sealingProjector) Name() string     { return "sealing" }
func (sealingProjector) Generation() int  { return 1 }
func (sealingProjector) Tables() []string { return nil }
func (sealingProjector) Apply(context.Context, pgx.Tx, []eventstore.Stored) error {
	return nil
}
func (p sealingProjector) WithFields(f Fields) Projector { p.fields = f; return p }

// A projector that seals personal fields never runs without the key ring
// its events are opened with: the runtime halts at once instead of
// retrying batches it could never apply.
func TestARuntimeWithoutACodecRefusesASealingProjector(t *testing.T) {
	err := (&Runtime{Projector: sealingProjector{}}).Run(context.Background())
	var fatal *FatalError
	assert.ErrorAs(t, err, &fatal)
	assert.ErrorContains(t, err, "seals personal fields")
}
