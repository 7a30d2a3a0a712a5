package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// Of concurrent first entries for one day exactly one is written; the
// others learn which entry holds the day, and a failed write leaves the
// day free.
func TestConcurrentEntriesForOneDayExactlyOneIsWritten(t *testing.T) {
	days := postgres.NewJournalDays(migrated(t))
	ctx := context.Background()
	ada := uuid.New()

	failed := errors.New("append failed")
	require.ErrorIs(t, days.Create(ctx, ada, "2026-11-19", uuid.New(), func(context.Context) error { return failed }), failed)

	const n = 8
	var wrote atomic.Int32
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = uuid.New()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = days.Create(ctx, ada, "2026-11-19", ids[i], func(context.Context) error { wrote.Add(1); return nil })
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, wrote.Load(), "entries written for one day")
	var winner uuid.UUID
	for i, err := range errs {
		if err == nil {
			winner = ids[i]
		}
	}
	require.NotEqual(t, uuid.Nil, winner)
	for i, err := range errs {
		if ids[i] == winner {
			continue
		}
		var taken *commands.DayTaken
		require.ErrorAs(t, err, &taken)
		assert.Equal(t, winner, taken.Existing, "the conflict names the entry that holds the day")
	}
	require.NoError(t, days.Create(ctx, uuid.New(), "2026-11-19", uuid.New(), func(context.Context) error { return nil }), "another user's day")
}

// Of concurrent edits based on one version exactly one is written; a
// deletion frees the day and the entry is gone for later edits.
func TestConcurrentJournalEditsWithOneIfMatchExactlyOneWins(t *testing.T) {
	days := postgres.NewJournalDays(migrated(t))
	ctx := context.Background()
	ada, entry, other := uuid.New(), uuid.New(), uuid.New()
	noop := func(context.Context) error { return nil }
	require.NoError(t, days.Create(ctx, ada, "2026-11-19", entry, noop))
	require.NoError(t, days.Create(ctx, ada, "2026-11-20", other, noop))

	const n = 8
	var wrote atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = days.Change(ctx, ada, entry, 1, "2026-11-19", func(_ context.Context, next int64) error {
				if next != 2 {
					return fmt.Errorf("next version %d", next)
				}
				wrote.Add(1)
				return nil
			})
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, wrote.Load())
	stale := 0
	for _, err := range errs {
		var sv *commands.StaleVersion
		if errors.As(err, &sv) {
			stale++
			assert.EqualValues(t, 2, sv.Current)
		}
	}
	assert.Equal(t, n-1, stale)

	err := days.Change(ctx, ada, entry, 2, "2026-11-20", func(context.Context, int64) error { return nil })
	var taken *commands.DayTaken
	require.ErrorAs(t, err, &taken, "moving onto another entry's day")
	assert.Equal(t, other, taken.Existing)
	assert.ErrorIs(t, days.Change(ctx, uuid.New(), entry, 2, "2026-11-19", func(context.Context, int64) error { return nil }), domain.ErrNotFound, "another user")

	var gone string
	require.NoError(t, days.Delete(ctx, ada, entry, 2, func(_ context.Context, next int64, date string) error {
		gone = date
		assert.EqualValues(t, 3, next)
		return nil
	}))
	assert.Equal(t, "2026-11-19", gone)
	assert.ErrorIs(t, days.Delete(ctx, ada, entry, 3, func(context.Context, int64, string) error { return nil }), domain.ErrNotFound)
	require.NoError(t, days.Create(ctx, ada, "2026-11-19", uuid.New(), noop), "the day is free again")
	require.NoError(t, days.Change(ctx, ada, other, 1, "2026-11-21", func(context.Context, int64) error { return nil }), "a move to a free day")
	require.NoError(t, days.Create(ctx, ada, "2026-11-20", uuid.New(), noop), "the day it left is free")
}
