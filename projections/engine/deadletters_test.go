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

func seen(t *testing.T, s *projectiontest.Stack, user uuid.UUID) []string {
	rows, err := s.Pool.Query(context.Background(), `SELECT body FROM seen WHERE user_id = $1 ORDER BY log_offset`, user)
	require.NoError(t, err)
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
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`); err != nil {
		t.Fatal(err)
	}
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
	if got := seen(t, s, bob); len(got) != 3 {
		t.Fatalf("bob saw %v; other users must keep flowing", got)
	}
	if got := seen(t, s, alice); len(got) != 1 || got[0] != `"a1"` {
		t.Fatalf("alice saw %v; want only a1 (the rest parked behind the poison)", got)
	}
	dl := engine.DeadLetters{Pool: s.Pool}
	list, err := dl.List(ctx, "picky")
	if err != nil || len(list) != 2 || list[0].State != "failed" || list[0].Error == "" || list[1].State != "parked" {
		t.Fatalf("dead letters = %+v, %v", list, err)
	}
	// New events of a parked user are parked too, in order.
	say(alice, "a4")
	s.WaitCaughtUp(t, p)
	if got := seen(t, s, alice); len(got) != 1 {
		t.Fatalf("alice saw %v while parked", got)
	}

	p.cured.Store(true)
	if n, err := dl.Retry(ctx, "picky", alice); err != nil || n != 3 {
		t.Fatalf("retry marked %d, %v", n, err)
	}
	projectiontest.Eventually(t, "alice's parked events are re-applied", func() bool { return len(seen(t, s, alice)) == 4 })
	got := seen(t, s, alice)
	if got[1] != `"poison"` || got[2] != `"a3"` || got[3] != `"a4"` {
		t.Fatalf("alice's events after retry = %v; order must be kept", got)
	}
	say(alice, "a5")
	projectiontest.Eventually(t, "alice flows again", func() bool { return len(seen(t, s, alice)) == 5 })
	if list, _ := dl.List(ctx, "picky"); len(list) != 0 {
		t.Fatalf("dead letters left after a successful retry: %+v", list)
	}
}

// TestALongRetryGoesInChunksAndKeepsTheUsersOrder: with a chunk of 2, a
// user with 7 held-back events is re-applied over several turns of the
// worker; an event that arrives meanwhile queues behind them; another user
// on the same partition keeps flowing throughout.
func TestALongRetryGoesInChunksAndKeepsTheUsersOrder(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`); err != nil {
		t.Fatal(err)
	}
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
	if n, err := dl.Retry(ctx, "picky", alice); err != nil || n != 7 {
		t.Fatalf("retry marked %d, %v", n, err)
	}
	say(alice, "a7")
	say(bob, "b1")
	projectiontest.Eventually(t, "alice's held-back events are re-applied", func() bool { return len(seen(t, s, alice)) == 8 })
	want := []string{`"poison"`, `"a1"`, `"a2"`, `"a3"`, `"a4"`, `"a5"`, `"a6"`, `"a7"`}
	if got := seen(t, s, alice); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alice's events = %v; want %v (log order)", got, want)
	}
	projectiontest.Eventually(t, "bob flows", func() bool { return len(seen(t, s, bob)) == 1 })
	if list, _ := dl.List(ctx, "picky"); len(list) != 0 {
		t.Fatalf("dead letters left: %+v", list)
	}
}

func TestSkippingAPoisonEventReleasesTheEventsBehindIt(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`); err != nil {
		t.Fatal(err)
	}
	u := uuid.New()
	s.Append(t, eventstore.Event{Type: "test.said", UserID: u, Payload: []byte(`"poison"`)})
	s.Append(t, eventstore.Event{Type: "test.said", UserID: u, Payload: []byte(`"after"`)})
	p := &picky{}
	go func() { _ = s.Runtime(p, 100).Run(ctx) }()
	s.WaitCaughtUp(t, p)
	dl := engine.DeadLetters{Pool: s.Pool}
	list, _ := dl.List(ctx, "picky")
	if len(list) != 2 {
		t.Fatalf("dead letters = %+v", list)
	}
	if _, err := dl.Skip(ctx, list[0].EventID); err != nil {
		t.Fatal(err)
	}
	projectiontest.Eventually(t, "the event behind the skipped one is applied", func() bool {
		got := seen(t, s, u)
		return len(got) == 1 && got[0] == `"after"`
	})
}

func TestARebuildingGenerationFailsLoudlyOnPoison(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Pool.Exec(ctx, `CREATE TABLE seen (user_id uuid, log_offset bigint, body text, PRIMARY KEY (user_id, log_offset))`); err != nil {
		t.Fatal(err)
	}
	s.Append(t, eventstore.Event{Type: "test.said", UserID: uuid.New(), Payload: []byte(`"poison"`)})
	rt := s.Runtime(&picky{}, 100)
	rt.FailOnPoison = true
	rt.Versions = &engine.Versions{Pool: s.Pool} // "picky" has no live generation registered
	var fatal *engine.FatalError
	if err := rt.Run(ctx); !errors.As(err, &fatal) {
		t.Fatalf("a rebuild must halt on a poison event, got %v", err)
	}
}
