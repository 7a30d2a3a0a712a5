package ingestion_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// dedup fakes ingestion.Dedup with function fields.
type dedup struct {
	lookup   func(ctx context.Context, id uuid.UUID) (ingestion.Delivery, bool)
	remember func(ctx context.Context, id uuid.UUID, d ingestion.Delivery)
}

func (d dedup) Lookup(ctx context.Context, id uuid.UUID) (ingestion.Delivery, bool) {
	return d.lookup(ctx, id)
}

func (d dedup) Remember(ctx context.Context, id uuid.UUID, del ingestion.Delivery) {
	d.remember(ctx, id, del)
}

// everyoneExists answers ByID for any user.
func everyoneExists() *commandstest.Accounts {
	return &commandstest.Accounts{ByIDFunc: func(_ context.Context, id uuid.UUID) (commands.Account, error) {
		return commands.Account{UserID: id, Active: true}, nil
	}}
}

func newPushes(t *testing.T, d ingestion.Deps) *ingestion.Service {
	t.Helper()
	s, err := ingestion.New(d)
	require.NoError(t, err)
	return s
}

func TestAWebhookDeliveryIDGivesAnEventIDScopedToTheUser(t *testing.T) {
	log := &commandstest.Log{}
	s := newPushes(t, ingestion.Deps{Log: log, Accounts: everyoneExists()})
	ada, bob := uuid.New(), uuid.New()
	ctx := context.Background()

	first, err := s.Push(ctx, commands.PushSamples{UserID: ada, DeliveryID: "msg_1", Channel: "webhook"})
	require.NoError(t, err)
	again, err := s.Push(ctx, commands.PushSamples{UserID: ada, DeliveryID: "msg_1", Channel: "webhook"})
	require.NoError(t, err)
	other, err := s.Push(ctx, commands.PushSamples{UserID: bob, DeliveryID: "msg_1", Channel: "webhook"})
	require.NoError(t, err)
	app, err := s.Push(ctx, commands.PushSamples{UserID: ada, DeliveryID: "msg_1", Channel: "app"})
	require.NoError(t, err)

	assert.Equal(t, eventstore.DeterministicID("push.webhook", ada.String(), "msg_1"), first.EventID)
	assert.Equal(t, first.EventID, again.EventID, "a redelivery keeps its event id")
	assert.NotEqual(t, first.EventID, other.EventID, "another user's delivery with the same id is another event")
	assert.NotEqual(t, first.EventID, app.EventID, "webhook ids and Idempotency-Keys are separate spaces")
	events := log.Appended()
	require.Len(t, events, 4, "without Dedup every delivery is appended")
	assert.Equal(t, first.EventID, events[0].ID)
	assert.Equal(t, ingest.EventPushed, events[0].Type)
	assert.Equal(t, ada, events[0].UserID)
}

func TestADedupHitAnswersDuplicateWithoutAppending(t *testing.T) {
	log := &commandstest.Log{}
	original := eventstore.Token{{Partition: 3, Offset: 41}}
	var asked uuid.UUID
	user := uuid.New()
	s := newPushes(t, ingestion.Deps{Log: log, Accounts: everyoneExists(), Dedup: dedup{
		lookup: func(_ context.Context, id uuid.UUID) (ingestion.Delivery, bool) {
			asked = id
			return ingestion.Delivery{Digest: ingest.Batch{UserID: user.String()}.Digest(), Token: original}, true
		},
		remember: func(context.Context, uuid.UUID, ingestion.Delivery) {
			assert.Fail(t, "a duplicate must not be remembered again")
		},
	}})
	acc, err := s.Push(context.Background(), commands.PushSamples{UserID: user, DeliveryID: "msg_9", Channel: "webhook"})
	require.NoError(t, err)
	assert.True(t, acc.Duplicate)
	assert.Equal(t, original, acc.Token)
	assert.Equal(t, asked, acc.EventID)
	assert.Empty(t, log.Appended())
}

func TestAnAcceptedDeliveryIsRememberedWithItsToken(t *testing.T) {
	var remembered eventstore.Token
	s := newPushes(t, ingestion.Deps{Log: &commandstest.Log{}, Accounts: everyoneExists(), Dedup: dedup{
		lookup:   func(context.Context, uuid.UUID) (ingestion.Delivery, bool) { return ingestion.Delivery{}, false },
		remember: func(_ context.Context, _ uuid.UUID, d ingestion.Delivery) { remembered = d.Token },
	}})
	acc, err := s.Push(context.Background(), commands.PushSamples{UserID: uuid.New(), DeliveryID: "k", Channel: "app"})
	require.NoError(t, err)
	assert.False(t, acc.Duplicate)
	assert.Equal(t, acc.Token, remembered)
}

func TestAPushForAnUnknownOrMalformedUserIsAValidationErrorAtUserID(t *testing.T) {
	log := &commandstest.Log{}
	s := newPushes(t, ingestion.Deps{Log: log, Accounts: &commandstest.Accounts{ByIDFunc: func(context.Context, uuid.UUID) (commands.Account, error) {
		return commands.Account{}, domain.ErrNotFound
	}}})
	for name, cmd := range map[string]commands.PushSamples{
		"unknown":   {UserID: uuid.New(), Channel: "webhook"},
		"malformed": {Batch: ingest.Batch{UserID: "not-a-uuid"}, Channel: "webhook"},
	} {
		_, err := s.Push(context.Background(), cmd)
		var v *domain.ValidationError
		require.ErrorAs(t, err, &v, name)
		assert.Equal(t, "/user_id", v.Problems[0].Field, name)
	}
	assert.Empty(t, log.Appended())
}

func TestAForgottenUserIsLookedUpAgain(t *testing.T) {
	lookups := 0
	s := newPushes(t, ingestion.Deps{Log: &commandstest.Log{}, Accounts: &commandstest.Accounts{ByIDFunc: func(_ context.Context, id uuid.UUID) (commands.Account, error) {
		lookups++
		return commands.Account{UserID: id}, nil
	}}})
	user := uuid.New()
	for range 2 {
		_, err := s.Push(context.Background(), commands.PushSamples{UserID: user})
		require.NoError(t, err)
	}
	assert.Equal(t, 1, lookups, "an active user is cached")
	s.Forget(user)
	_, err := s.Push(context.Background(), commands.PushSamples{UserID: user})
	require.NoError(t, err)
	assert.Equal(t, 2, lookups, "after Forget (erasure) the account is checked again")
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	_, err := ingestion.New(ingestion.Deps{Accounts: everyoneExists()})
	assert.ErrorContains(t, err, "Log")
	_, err = ingestion.New(ingestion.Deps{Log: &commandstest.Log{}})
	assert.ErrorContains(t, err, "Accounts")
}
