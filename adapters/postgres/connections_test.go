package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/provider"
)

func TestAStateIsSpentOnceAndAnExpiredOneIsRefused(t *testing.T) {
	ctx := context.Background()
	store := postgres.NewConnections(migrated(t))
	now := time.Now().UTC().Truncate(time.Microsecond)
	user := uuid.New()
	require.NoError(t, store.SaveState(ctx, connections.State{Hash: []byte("h1"), UserID: user, Provider: provider.Oura, ExpiresAt: now.Add(time.Minute)}))
	require.NoError(t, store.SaveState(ctx, connections.State{Hash: []byte("h2"), UserID: user, Provider: provider.Oura, ExpiresAt: now.Add(-time.Second)}))
	st, err := store.TakeState(ctx, []byte("h1"), now)
	require.NoError(t, err)
	assert.Equal(t, user, st.UserID)
	assert.Equal(t, provider.Oura, st.Provider)
	_, err = store.TakeState(ctx, []byte("h1"), now)
	assert.ErrorIs(t, err, connections.ErrStateInvalid, "spent")
	_, err = store.TakeState(ctx, []byte("h2"), now)
	assert.ErrorIs(t, err, connections.ErrStateInvalid, "expired")
}

func TestAConnectionRoundTripsAndIsFoundByItsProviderUser(t *testing.T) {
	ctx := context.Background()
	store := postgres.NewConnections(migrated(t))
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := connections.Connection{UserID: uuid.New(), Provider: provider.Oura, ProviderUserID: "oura-1", Status: provider.StatusSyncing,
		SealedTokens: []byte{1, 2, 3}, ConnectedAt: now, BackfillFrom: now.Add(-time.Hour), BackfillTo: now, DoneUntil: now.Add(-time.Hour),
		Cursor: "sleep", Page: "p2", LastError: "x", Failures: 2}
	require.NoError(t, store.Save(ctx, c))
	got, err := store.Get(ctx, c.UserID, provider.Oura)
	require.NoError(t, err)
	assert.Equal(t, c, got)
	byPUID, err := store.ByProviderUser(ctx, provider.Oura, "oura-1")
	require.NoError(t, err)
	assert.Equal(t, c.UserID, byPUID.UserID)
	due, err := store.Backfilling(ctx)
	require.NoError(t, err)
	assert.Len(t, due, 1)
	c.DoneUntil, c.LastSyncAt, c.LastDataAt = c.BackfillTo, now, now
	require.NoError(t, store.Save(ctx, c))
	due, err = store.Backfilling(ctx)
	require.NoError(t, err)
	assert.Empty(t, due)
	_, err = store.Get(ctx, uuid.New(), provider.Oura)
	assert.ErrorIs(t, err, domain.ErrNotFound)
}

func TestOneProcessAtATimeHoldsAPartition(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	a, b := postgres.NewProcessOffsets(pool), postgres.NewProcessOffsets(pool)
	defer a.Close()
	defer b.Close()
	held, release, ok, err := a.Claim(ctx, "fetch", 3)
	require.NoError(t, err)
	require.True(t, ok)
	_, _, ok, err = b.Claim(ctx, "fetch", 3)
	require.NoError(t, err)
	assert.False(t, ok, "held by a")
	_, releaseOther, ok, err := b.Claim(ctx, "fetch", 4)
	require.NoError(t, err)
	assert.True(t, ok, "another partition is free")
	releaseOther()
	release()
	assert.Error(t, held.Err(), "released")
	_, release, ok, err = b.Claim(ctx, "fetch", 3)
	require.NoError(t, err)
	assert.True(t, ok, "free again")
	release()

	require.NoError(t, a.Store(ctx, "fetch", 3, 10))
	require.NoError(t, a.Store(ctx, "fetch", 3, 7))
	next, err := b.Load(ctx, "fetch", 3)
	require.NoError(t, err)
	assert.EqualValues(t, 10, next, "an offset never moves back")
}

func TestSaveKeepsTheTokensAndARevokedConnection(t *testing.T) {
	ctx := context.Background()
	store := postgres.NewConnections(migrated(t))
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := connections.Connection{UserID: uuid.New(), Provider: provider.Oura, ProviderUserID: "oura-1", Status: provider.StatusSyncing,
		SealedTokens: []byte("first"), ConnectedAt: now, BackfillFrom: now, BackfillTo: now, DoneUntil: now}
	require.NoError(t, store.Save(ctx, c))
	require.NoError(t, store.SaveTokens(ctx, c.UserID, provider.Oura, []byte("rotated")))
	stale := c // still holds the first tokens
	stale.Cursor = "sleep"
	require.NoError(t, store.Save(ctx, stale))
	got, err := store.Get(ctx, c.UserID, provider.Oura)
	require.NoError(t, err)
	assert.Equal(t, []byte("rotated"), got.SealedTokens, "a stale copy does not put back a spent token")
	assert.Equal(t, "sleep", got.Cursor)

	revoked := got
	revoked.Status = provider.StatusRevoked
	require.NoError(t, store.Save(ctx, revoked))
	require.NoError(t, store.SaveTokens(ctx, c.UserID, provider.Oura, nil))
	require.NoError(t, store.Save(ctx, stale))
	got, err = store.Get(ctx, c.UserID, provider.Oura)
	require.NoError(t, err)
	assert.Equal(t, provider.StatusRevoked, got.Status, "a stale copy does not revive a revoked connection")
	assert.Nil(t, got.SealedTokens)

	again := c
	again.ConnectedAt = now.Add(time.Minute)
	require.NoError(t, store.Save(ctx, again))
	require.NoError(t, store.SaveTokens(ctx, c.UserID, provider.Oura, []byte("new")))
	got, err = store.Get(ctx, c.UserID, provider.Oura)
	require.NoError(t, err)
	assert.Equal(t, provider.StatusSyncing, got.Status, "connecting again is a new connection")
	assert.Equal(t, []byte("new"), got.SealedTokens)
}
