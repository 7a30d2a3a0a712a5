package engine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/users"
)

// TestAConsistencyWaitEndsAtTheProjectorsCommit: a dashboard read carrying
// a consistency token waits for the projector; with the checkpoint feed
// live, the wait ends when the projector commits, not at the next poll
// (which, with the feed live, comes only every LiveRecheck: 5 s here, so
// a wait that missed the commit cannot pass for one that heard it).
func TestAConsistencyWaitEndsAtTheProjectorsCommit(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := &engine.Checkpoints{}
	go feed.Follow(ctx, s.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Eventually(t, func() bool { _, live := feed.Changed(); return live },
		10*time.Second, 5*time.Millisecond, "the checkpoint feed did not start listening within 10s")
	r := &engine.Consistency{Pool: s.Pool, Progress: feed, LiveRecheck: 5 * time.Second}
	s.Register(t, uuid.New(), "UTC", time.Now())
	go func() { _ = s.Runtime(users.Projector{}, 100).Run(ctx) }()
	s.WaitCaughtUp(t, users.Projector{})

	for round := range 3 {
		user := uuid.New()
		pos := s.Register(t, user, "UTC", time.Now())
		type result struct {
			at  time.Time
			err error
		}
		returned := make(chan result, 1)
		go func() {
			err := r.WaitFor(ctx, eventstore.Token{pos}, users.Name)
			returned <- result{time.Now(), err}
		}()
		// Watch the checkpoint closely to learn when the commit happened.
		var committed time.Time
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var next int64 // no row yet: the partition's worker has not started
			err := s.Pool.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name = $1 AND generation = 1 AND partition = $2`,
				users.Name, pos.Partition).Scan(&next)
			if !errors.Is(err, pgx.ErrNoRows) {
				require.NoError(c, err)
			}
			require.Greater(c, next, pos.Offset, "checkpoint of partition %d", pos.Partition)
			committed = time.Now()
		}, 10*time.Second, time.Millisecond, "the projector did not apply the registration within 10s")
		select {
		case got := <-returned:
			require.NoError(t, got.err)
			assert.LessOrEqual(t, got.at.Sub(committed), time.Second,
				"round %d: the wait ended too long after the commit; want within a few ms of it", round)
		case <-time.After(5 * time.Second):
			require.FailNow(t, "the wait did not end within 5s of the commit")
		}
	}
}
