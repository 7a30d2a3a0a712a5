package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
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
)

// picky records every event's body in order per user and refuses bodies
// containing "poison" until cured.
type picky struct{ cured atomic.Bool }

func (p *picky) Name() string     { return "picky" }
func (p *picky) Generation() int  { return 1 }
func (p *picky) Tables() []string { return []string{"seen"} }
func (p *picky) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	for _, e := range events {
		if bytes.Contains(e.Payload, []byte("poison")) && !p.cured.Load() {
			return errors.New("cannot make sense of this event")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO seen (user_id, log_offset, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, e.UserID, e.Offset, string(e.Payload)); err != nil {
			return err
		}
	}
	return nil
}

// seen asserts rather than requires: it also runs as the condition of
// Eventually, on a goroutine of its own, where FailNow must not be called.
func seen(t *testing.T, s *projectiontest.Stack, user uuid.UUID) []string {
	rows, err := s.Pool.Query(context.Background(), `SELECT body FROM seen WHERE user_id = $1 ORDER BY log_offset`, user)
	if !assert.NoError(t, err) {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		_ = rows.Scan(&b)
		out = append(out, b)
	}
	return out
}

// TestAPoisonEventParksOnlyItsUser: a poison event parks that user's later
// events (order kept) while another user on the same partition keeps
// flowing; retry re-applies them in order once the projector is fixed.
func TestAPoisonEventParksOnlyItsUser(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`)
	require.NoError(t, err)
	alice := uuid.New()
	bob := uuid.New()
	for engine.PartitionOf(bob, s.Cfg.Partitions) != engine.PartitionOf(alice, s.Cfg.Partitions) {
		bob = uuid.New()
	}
	say := func(u uuid.UUID, body string) {
		s.Append(t, eventstore.Event{Type: "test.said", UserID: u, Payload: []byte(`"` + body + `"`)})
	}
	say(alice, "a1")
	say(bob, "b1")
	say(alice, "poison")
	say(bob, "b2")
	say(alice, "a3")
	say(bob, "b3")

	p := &picky{}
	go func() { _ = s.Runtime(p, 100).Run(ctx) }()
	s.WaitCaughtUp(t, p)
	assert.Len(t, seen(t, s, bob), 3, "other users must keep flowing")
	assert.Equal(t, []string{`"a1"`}, seen(t, s, alice), "alice sees only a1 (the rest parked behind the poison)")
	dl := engine.DeadLetters{Pool: s.Pool}
	list, err := dl.List(ctx, "picky")
	require.NoError(t, err)
	require.Len(t, list, 2, "dead letters = %+v", list)
	assert.Equal(t, "failed", list[0].State, "the poison event")
	assert.NotEmpty(t, list[0].Error, "the poison event keeps its error")
	assert.Equal(t, "parked", list[1].State, "the event behind the poison")
	// New events of a parked user are parked too, in order.
	say(alice, "a4")
	s.WaitCaughtUp(t, p)
	assert.Len(t, seen(t, s, alice), 1, "alice's events while parked")

	p.cured.Store(true)
	n, err := dl.Retry(ctx, "picky", alice)
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "retry marked")
	projectiontest.Eventually(t, "alice's parked events are re-applied", func() bool { return len(seen(t, s, alice)) == 4 })
	assert.Equal(t, []string{`"a1"`, `"poison"`, `"a3"`, `"a4"`}, seen(t, s, alice), "alice's events after retry; order must be kept")
	say(alice, "a5")
	projectiontest.Eventually(t, "alice flows again", func() bool { return len(seen(t, s, alice)) == 5 })
	list, _ = dl.List(ctx, "picky")
	assert.Empty(t, list, "dead letters left after a successful retry")
}

// TestALongRetryGoesInChunksAndKeepsTheUsersOrder: with a chunk of 2, a
// user with 7 held-back events is re-applied over several turns of the
// worker; an event that arrives meanwhile queues behind them; another user
// on the same partition keeps flowing throughout.
func TestALongRetryGoesInChunksAndKeepsTheUsersOrder(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`)
	require.NoError(t, err)
	alice, bob := uuid.New(), uuid.New()
	for engine.PartitionOf(bob, s.Cfg.Partitions) != engine.PartitionOf(alice, s.Cfg.Partitions) {
		bob = uuid.New()
	}
	say := func(u uuid.UUID, body string) {
		s.Append(t, eventstore.Event{Type: "test.said", UserID: u, Payload: []byte(`"` + body + `"`)})
	}
	say(alice, "poison")
	for i := 1; i <= 6; i++ {
		say(alice, fmt.Sprintf("a%d", i))
	}
	p := &picky{}
	rt := s.Runtime(p, 100)
	rt.RetryChunk = 2
	go func() { _ = rt.Run(ctx) }()
	s.WaitCaughtUp(t, p)
	dl := engine.DeadLetters{Pool: s.Pool}
	p.cured.Store(true)
	n, err := dl.Retry(ctx, "picky", alice)
	require.NoError(t, err)
	require.EqualValues(t, 7, n, "retry marked")
	say(alice, "a7")
	say(bob, "b1")
	projectiontest.Eventually(t, "alice's held-back events are re-applied", func() bool { return len(seen(t, s, alice)) == 8 })
	want := []string{`"poison"`, `"a1"`, `"a2"`, `"a3"`, `"a4"`, `"a5"`, `"a6"`, `"a7"`}
	assert.Equal(t, want, seen(t, s, alice), "alice's events (log order)")
	projectiontest.Eventually(t, "bob flows", func() bool { return len(seen(t, s, bob)) == 1 })
	list, _ := dl.List(ctx, "picky")
	assert.Empty(t, list, "dead letters left")
}

func TestSkippingAPoisonEventReleasesTheEventsBehindIt(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`)
	require.NoError(t, err)
	u := uuid.New()
	s.Append(t, eventstore.Event{Type: "test.said", UserID: u, Payload: []byte(`"poison"`)})
	s.Append(t, eventstore.Event{Type: "test.said", UserID: u, Payload: []byte(`"after"`)})
	p := &picky{}
	go func() { _ = s.Runtime(p, 100).Run(ctx) }()
	s.WaitCaughtUp(t, p)
	dl := engine.DeadLetters{Pool: s.Pool}
	list, _ := dl.List(ctx, "picky")
	require.Len(t, list, 2, "dead letters = %+v", list)
	_, err = dl.Skip(ctx, list[0].EventID)
	require.NoError(t, err)
	projectiontest.Eventually(t, "the event behind the skipped one is applied", func() bool {
		got := seen(t, s, u)
		return len(got) == 1 && got[0] == `"after"`
	})
}

func TestARebuildingGenerationFailsLoudlyOnPoison(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`)
	require.NoError(t, err)
	s.Append(t, eventstore.Event{Type: "test.said", UserID: uuid.New(), Payload: []byte(`"poison"`)})
	rt := s.Runtime(&picky{}, 100)
	rt.FailOnPoison = true
	rt.Versions = &engine.Versions{Pool: s.Pool} // "picky" has no live generation registered
	var fatal *engine.FatalError
	assert.ErrorAs(t, rt.Run(ctx), &fatal, "a rebuild must halt on a poison event")
}
