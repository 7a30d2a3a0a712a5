package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/users"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

// counter is deliberately NOT idempotent (n = n + 1): it proves the runtime
// applies every event exactly once, because only the checkpoint written in
// the same transaction protects it.
type counter struct {
	failEvery int64 // fail every Nth Apply call after writing (0 = never)
	calls     atomic.Int64
}

func (c *counter) Name() string     { return "counter" }
func (c *counter) Generation() int  { return 1 }
func (c *counter) Tables() []string { return []string{"counts"} }
func (c *counter) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	for _, e := range events {
		if _, err := tx.Exec(ctx, `INSERT INTO counts (user_id, n) VALUES ($1, 1) ON CONFLICT (user_id) DO UPDATE SET n = counts.n + 1`, e.UserID); err != nil {
			return err
		}
	}
	if n := c.calls.Add(1); c.failEvery > 0 && n%c.failEvery == 0 {
		// A transient failure (as if PostgreSQL went away mid-transaction):
		// the batch must be retried, not parked.
		return fmt.Errorf("injected failure after writing (call %d): %w", n, domain.ErrUnavailable)
	}
	return nil
}

func counts(t *testing.T, pool *pgxpool.Pool) map[uuid.UUID]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT user_id, n FROM counts`)
	require.NoError(t, err)
	out := map[uuid.UUID]int{}
	for rows.Next() {
		var id uuid.UUID
		var n int
		_ = rows.Scan(&id, &n)
		out[id] = n
	}
	return out
}

func TestProjectorRuntimeContract(t *testing.T) {
	for _, target := range testbackend.KafkaTargets(t) {
		t.Run(target.Name, func(t *testing.T) {
			t.Run("CrashesBetweenAndInsideBatchesApplyEveryEventExactlyOnce", func(t *testing.T) { crashes(t, projectiontest.New(t, target.Brokers)) })
			t.Run("TwoInstancesShareAProjectorWithoutDoubleApplying", func(t *testing.T) { twoInstances(t, projectiontest.New(t, target.Brokers)) })
			t.Run("ErasedUsersAreSkippedOthersApplied", func(t *testing.T) { erasure(t, projectiontest.New(t, target.Brokers)) })
			t.Run("WrongMasterKeyHaltsTheProjector", func(t *testing.T) { wrongKey(t, projectiontest.New(t, target.Brokers)) })
		})
	}
}

func seed(t *testing.T, s *projectiontest.Stack, users, each int) map[uuid.UUID]int {
	want := map[uuid.UUID]int{}
	for u := 0; u < users; u++ {
		id := uuid.New()
		for i := 0; i < each; i++ {
			s.Append(t, eventstore.Event{Type: "test.counted", UserID: id, Payload: []byte(`{}`)})
		}
		want[id] = each
	}
	return want
}

func crashes(t *testing.T, s *projectiontest.Stack) {
	ctx := context.Background()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`)
	require.NoError(t, err)
	want := seed(t, s, 8, 40)
	p := &counter{failEvery: 3} // every third transaction fails after writing
	// Stop the runtime repeatedly at arbitrary moments (a crash between
	// batches), each time restarting from the stored checkpoint.
	for i := 0; i < 6; i++ {
		rctx, cancel := context.WithTimeout(ctx, time.Duration(30+i*20)*time.Millisecond)
		_ = s.Runtime(p, 7).Run(rctx)
		cancel()
		if i == 2 {
			for id := range seed(t, s, 2, 15) {
				want[id] = 15
			}
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Runtime(p, 7).Run(rctx) }()
	s.WaitCaughtUp(t, p)
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, want, counts(t, s.Pool), "times each user was counted (lost or double-applied events)")
}

func twoInstances(t *testing.T, s *projectiontest.Stack) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`)
	require.NoError(t, err)
	p := &counter{}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Runtime(p, 5).Run(ctx) }()
	}
	want := seed(t, s, 6, 25)
	s.WaitCaughtUp(t, p)
	cancel()
	wg.Wait()
	got := counts(t, s.Pool)
	for id, n := range want {
		assert.Equal(t, n, got[id], "user %s counted", id)
	}
}

func erasure(t *testing.T, s *projectiontest.Stack) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`)
	require.NoError(t, err)
	want := seed(t, s, 3, 4)
	var gone uuid.UUID
	for id := range want {
		gone = id
		break
	}
	require.NoError(t, s.Codec.Keys().Destroy(ctx, gone))
	p := &counter{}
	go func() { _ = s.Runtime(p, 100).Run(ctx) }()
	s.WaitCaughtUp(t, p)
	got := counts(t, s.Pool)
	assert.NotContains(t, got, gone, "an erased user's events were projected")
	for id, n := range want {
		if id != gone {
			assert.Equal(t, n, got[id], "user %s counted", id)
		}
	}
}

func wrongKey(t *testing.T, s *projectiontest.Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seed(t, s, 1, 1)
	mk, _ := eventstore.ParseMasterKeys("k1:ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=")
	kr, _ := eventstore.NewKeyring(postgres.NewKeyStore(s.Pool), mk)
	_, err := s.Pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`)
	require.NoError(t, err)
	rt := s.Runtime(&counter{}, 10)
	rt.Codec = eventstore.NewCodec(kr)
	err = rt.Run(ctx)
	assert.ErrorIs(t, err, eventstore.ErrKeyUnwrap, "a wrong master key must halt the projector")
}

func TestBatchSpansLinkToTheRequestThatWroteTheEvent(t *testing.T) {
	// The trace context a command copied into the envelope becomes a link
	// on the projector's batch span.
	ev := eventstore.Stored{Event: eventstore.Event{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	got := engine.TraceLinks([]eventstore.Stored{ev, {}})
	require.Len(t, got, 1, "links = %+v", got)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", got[0].SpanContext.TraceID().String(), "the link's trace")
}

// TestAStaleOwnerIsFencedByTheCheckpoint: another owner advanced the
// checkpoint while this worker held an older view; the worker's next
// transaction must abort (0 rows on `WHERE next_offset = expected`) and
// resume from the stored checkpoint instead of applying those events again.
func TestAStaleOwnerIsFencedByTheCheckpoint(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`)
	require.NoError(t, err)
	user := uuid.New()
	first := s.Append(t, eventstore.Event{Type: "test.counted", UserID: user, Payload: []byte(`{}`)})
	p := &counter{}
	go func() { _ = s.Runtime(p, 100).Run(ctx) }()
	s.WaitCaughtUp(t, p)
	// "Another owner" applied three events this worker has not seen.
	_, err = s.Pool.Exec(ctx, `UPDATE projection_checkpoints SET next_offset = next_offset + 3 WHERE name = 'counter' AND partition = $1`, first.Partition)
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		s.Append(t, eventstore.Event{Type: "test.counted", UserID: user, Payload: []byte(`{}`)})
	}
	s.WaitCaughtUp(t, p)
	assert.Equal(t, 1+2, counts(t, s.Pool)[user], "times the user was counted: 1 before, then only the 2 events after the other owner's checkpoint")
}

// TestASelectiveProjectorNeverDecryptsWhatItIgnores: the users projector
// reads registrations only; the pushes that fill most of the log pass by
// undecrypted (most of its CPU used to go into decrypting and decoding
// them). Proof: with a master key that opens nothing it still moves past a
// log of pushes, and halts at the first registration it must read.
func TestASelectiveProjectorNeverDecryptsWhatItIgnores(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	mk, _ := eventstore.ParseMasterKeys("k1:ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=")
	kr, _ := eventstore.NewKeyring(postgres.NewKeyStore(s.Pool), mk)
	rt := s.Runtime(users.Projector{}, 10)
	rt.Codec = eventstore.NewCodec(kr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- rt.Run(ctx) }()
	// Idle for over a second first: then the pushes' batch is not merely
	// skipped as irrelevant but applied, to persist the checkpoint.
	time.Sleep(1500 * time.Millisecond)
	user := uuid.New()
	for i := range 20 {
		s.Push(t, user, ingest.Batch{Source: ingest.Source{Provider: "oura"}, Samples: []ingest.Sample{
			projectiontest.Sample("steps", fmt.Sprintf("2026-11-20T08:%02d:00Z", i), fmt.Sprintf("2026-11-20T08:%02d:30Z", i), 10, "count"),
		}})
	}
	s.WaitCaughtUp(t, users.Projector{})
	select {
	case err := <-errc:
		require.Failf(t, "the users projector stopped on pushes it ignores", "%v", err)
	default:
	}
	s.Register(t, uuid.New(), "UTC", time.Now())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, eventstore.ErrKeyUnwrap, "a registration it cannot decrypt must halt it")
	case <-ctx.Done():
		require.FailNow(t, "the users projector did not read the registration")
	}
}
