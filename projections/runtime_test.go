package projections_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

// stack is a fresh topic and database with the real adapters on top.
type stack struct {
	t        *testing.T
	pool     *pgxpool.Pool
	codec    *eventstore.Codec
	appender *kafka.Appender
	log      *kafka.Log
	cfg      kafka.Config
}

func newStack(t *testing.T, brokers []string) *stack {
	t.Helper()
	pool, codec := testbackend.Store(t, 16)
	s := &stack{t: t, pool: pool, codec: codec}
	s.cfg = kafka.Config{Brokers: brokers, Topic: testbackend.UniqueName(t, "events"), Partitions: 4}
	if err := kafka.EnsureTopic(s.cfg); err != nil {
		t.Fatal(err)
	}
	s.appender = kafka.NewAppender(s.cfg, s.codec)
	t.Cleanup(func() { s.appender.Close() })
	var err error
	if s.log, err = kafka.NewLog(s.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.log.Close() })
	return s
}

func (s *stack) append(t *testing.T, e eventstore.Event) eventstore.Position {
	t.Helper()
	if e.ID == uuid.Nil {
		e.ID = uuid.New()
	}
	if e.SchemaVersion == 0 {
		e.SchemaVersion = 1
	}
	if e.RecordedAt.IsZero() {
		e.RecordedAt, e.OccurredAt = time.Now().UTC(), time.Now().UTC()
	}
	p, err := s.appender.Append(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitCaughtUp waits until the projector's checkpoints reach the head of
// every partition.
func (s *stack) waitCaughtUp(t *testing.T, p projections.Projector) {
	t.Helper()
	ctx := context.Background()
	parts, err := s.log.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		behind := 0
		for _, part := range parts {
			hw, err := s.log.HighWater(ctx, part)
			if err != nil {
				t.Fatal(err)
			}
			var next int64
			err = s.pool.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name=$1 AND generation=$2 AND partition=$3`, p.Name(), p.Generation(), part).Scan(&next)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				t.Fatal(err)
			}
			if next < hw {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector %s did not catch up: %d partitions behind", projections.Key(p), behind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
	if err != nil {
		t.Fatal(err)
	}
	out := map[uuid.UUID]int{}
	for rows.Next() {
		var id uuid.UUID
		var n int
		_ = rows.Scan(&id, &n)
		out[id] = n
	}
	return out
}

// runtime builds a runtime with its own log reader, as production gives
// every projector its own (see kafka.Log.Subscribe).
func runtime(s *stack, p projections.Projector, batch int) *projections.Runtime {
	l, err := kafka.NewLog(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { l.Close() })
	return &projections.Runtime{Pool: s.pool, Log: l, Codec: s.codec, Projector: p, BatchSize: batch, BatchWait: 5 * time.Millisecond, Retry: 20 * time.Millisecond}
}

func TestProjectorRuntimeContract(t *testing.T) {
	for _, target := range testbackend.KafkaTargets(t) {
		t.Run(target.Name, func(t *testing.T) {
			t.Run("CrashesBetweenAndInsideBatchesApplyEveryEventExactlyOnce", func(t *testing.T) { crashes(t, newStack(t, target.Brokers)) })
			t.Run("TwoInstancesShareAProjectorWithoutDoubleApplying", func(t *testing.T) { twoInstances(t, newStack(t, target.Brokers)) })
			t.Run("ErasedUsersAreSkippedOthersApplied", func(t *testing.T) { erasure(t, newStack(t, target.Brokers)) })
			t.Run("WrongMasterKeyHaltsTheProjector", func(t *testing.T) { wrongKey(t, newStack(t, target.Brokers)) })
		})
	}
}

func seed(t *testing.T, s *stack, users, each int) map[uuid.UUID]int {
	want := map[uuid.UUID]int{}
	for u := 0; u < users; u++ {
		id := uuid.New()
		for i := 0; i < each; i++ {
			s.append(t, eventstore.Event{Type: "test.counted", UserID: id, Payload: []byte(`{}`)})
		}
		want[id] = each
	}
	return want
}

func crashes(t *testing.T, s *stack) {
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	want := seed(t, s, 8, 40)
	p := &counter{failEvery: 3} // every third transaction fails after writing
	// Stop the runtime repeatedly at arbitrary moments (a crash between
	// batches), each time restarting from the stored checkpoint.
	for i := 0; i < 6; i++ {
		rctx, cancel := context.WithTimeout(ctx, time.Duration(30+i*20)*time.Millisecond)
		_ = runtime(s, p, 7).Run(rctx)
		cancel()
		if i == 2 {
			for id := range seed(t, s, 2, 15) {
				want[id] = 15
			}
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runtime(s, p, 7).Run(rctx) }()
	s.waitCaughtUp(t, p)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := counts(t, s.pool)
	if len(got) != len(want) {
		t.Fatalf("counted %d users, want %d", len(got), len(want))
	}
	for id, n := range want {
		if got[id] != n {
			t.Fatalf("user %s counted %d times, want %d (lost or double-applied events)", id, got[id], n)
		}
	}
}

func twoInstances(t *testing.T, s *stack) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	p := &counter{}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = runtime(s, p, 5).Run(ctx) }()
	}
	want := seed(t, s, 6, 25)
	s.waitCaughtUp(t, p)
	cancel()
	wg.Wait()
	for id, n := range want {
		if got := counts(t, s.pool)[id]; got != n {
			t.Fatalf("user %s counted %d, want %d", id, got, n)
		}
	}
}

func erasure(t *testing.T, s *stack) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	want := seed(t, s, 3, 4)
	var gone uuid.UUID
	for id := range want {
		gone = id
		break
	}
	if err := s.codec.Keys().Destroy(ctx, gone); err != nil {
		t.Fatal(err)
	}
	p := &counter{}
	go func() { _ = runtime(s, p, 100).Run(ctx) }()
	s.waitCaughtUp(t, p)
	got := counts(t, s.pool)
	if _, ok := got[gone]; ok {
		t.Fatal("an erased user's events were projected")
	}
	for id, n := range want {
		if id != gone && got[id] != n {
			t.Fatalf("user %s counted %d, want %d", id, got[id], n)
		}
	}
}

func wrongKey(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seed(t, s, 1, 1)
	mk, _ := eventstore.ParseMasterKeys("k1:ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=")
	kr, _ := eventstore.NewKeyring(postgres.NewKeyStore(s.pool), mk)
	if _, err := s.pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	rt := runtime(s, &counter{}, 10)
	rt.Codec = eventstore.NewCodec(kr)
	err := rt.Run(ctx)
	if !errors.Is(err, eventstore.ErrKeyUnwrap) {
		t.Fatalf("a wrong master key must halt the projector with ErrKeyUnwrap, got %v", err)
	}
}

func TestBatchSpansLinkToTheRequestThatWroteTheEvent(t *testing.T) {
	// The trace context a command copied into the envelope becomes a link
	// on the projector's batch span.
	ev := eventstore.Stored{Event: eventstore.Event{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	got := projections.TraceLinks([]eventstore.Stored{ev, {}})
	if len(got) != 1 || got[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("links = %+v", got)
	}
}

// TestAStaleOwnerIsFencedByTheCheckpoint: another owner advanced the
// checkpoint while this worker held an older view; the worker's next
// transaction must abort (0 rows on `WHERE next_offset = expected`) and
// resume from the stored checkpoint instead of applying those events again.
func TestAStaleOwnerIsFencedByTheCheckpoint(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.pool.Exec(ctx, `CREATE TABLE counts (user_id uuid PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	user := uuid.New()
	first := s.append(t, eventstore.Event{Type: "test.counted", UserID: user, Payload: []byte(`{}`)})
	p := &counter{}
	go func() { _ = runtime(s, p, 100).Run(ctx) }()
	s.waitCaughtUp(t, p)
	// "Another owner" applied three events this worker has not seen.
	if _, err := s.pool.Exec(ctx, `UPDATE projection_checkpoints SET next_offset = next_offset + 3 WHERE name = 'counter' AND partition = $1`, first.Partition); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		s.append(t, eventstore.Event{Type: "test.counted", UserID: user, Payload: []byte(`{}`)})
	}
	s.waitCaughtUp(t, p)
	if got := counts(t, s.pool)[user]; got != 1+2 {
		t.Fatalf("user counted %d times; want 3 (1 before, then only the 2 events after the other owner's checkpoint)", got)
	}
}

// TestASelectiveProjectorNeverDecryptsWhatItIgnores: the users projector
// reads registrations only; the pushes that fill most of the log pass by
// undecrypted (most of its CPU used to go into decrypting and decoding
// them). Proof: with a master key that opens nothing it still moves past a
// log of pushes, and halts at the first registration it must read.
func TestASelectiveProjectorNeverDecryptsWhatItIgnores(t *testing.T) {
	s := newStack(t, testbackend.Kafka(t))
	mk, _ := eventstore.ParseMasterKeys("k1:ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=")
	kr, _ := eventstore.NewKeyring(postgres.NewKeyStore(s.pool), mk)
	rt := runtime(s, projections.Users{}, 10)
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
		push(t, s, user, ingest.Batch{Source: ingest.Source{Provider: "oura"}, Samples: []ingest.Sample{
			sample("steps", fmt.Sprintf("2026-11-20T08:%02d:00Z", i), fmt.Sprintf("2026-11-20T08:%02d:30Z", i), 10, "count"),
		}})
	}
	s.waitCaughtUp(t, projections.Users{})
	select {
	case err := <-errc:
		t.Fatalf("the users projector stopped on pushes it ignores: %v", err)
	default:
	}
	register(t, s, uuid.New(), "UTC", time.Now())
	select {
	case err := <-errc:
		if !errors.Is(err, eventstore.ErrKeyUnwrap) {
			t.Fatalf("a registration it cannot decrypt must halt it with ErrKeyUnwrap, got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the users projector did not read the registration")
	}
}
