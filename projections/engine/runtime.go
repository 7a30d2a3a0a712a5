package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// Projector builds one read model. Apply writes the rows for a batch of one
// partition's events, in log order, inside tx; the runtime commits them
// together with the checkpoint. Apply must be idempotent by natural keys:
// after a crash the uncommitted batch is applied again.
type Projector interface {
	Name() string
	Generation() int
	// Tables lists the base names of the tables the projector owns; each
	// generation has its own copies (base_g<N>).
	Tables() []string
	Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error
}

// Selective is implemented by projectors that read only some event types.
// A batch with none of them does not cost a transaction: the checkpoint
// advances in memory and is written with the next applied batch, or after
// a second at the latest (a crash then only re-reads irrelevant events).
type Selective interface {
	Wants(eventType string) bool
}

// AfterCommitter is implemented by projectors with work to do once a batch
// is durable (refreshing Redis). Losing it loses nothing: caches are rebuilt
// from PostgreSQL on a miss.
type AfterCommitter interface {
	AfterCommit(ctx context.Context, events []eventstore.Stored, partition int32, nextOffset int64, catchingUp bool)
}

// Observer receives runtime measurements (Prometheus in production).
type Observer interface {
	Batch(projector string, partition int32, size int, d time.Duration)
	Lag(projector string, partition int32, lag int64)
}

// Key names a projector version, e.g. "metrics@1"; checkpoints are keyed by
// (name, generation, partition) so a rebuild is a new generation.
func Key(p Projector) string { return fmt.Sprintf("%s@%d", p.Name(), p.Generation()) }

// Runtime runs one projector over every partition of the log. Partitions
// are owned through PostgreSQL advisory locks (one lock connection per
// runtime), so several processes can share a projector and a crashed
// owner's partitions are taken over within seconds. Each batch is applied in
// one transaction that also advances the checkpoint with
// `WHERE next_offset = expected`, which fences out a stale owner.
type Runtime struct {
	Pool      *pgxpool.Pool
	Log       eventstore.Log
	Codec     *eventstore.Codec
	Projector Projector
	Logger    *slog.Logger
	Observer  Observer
	// Versions, when set, limits after-commit side effects (cache refresh)
	// to the live generation: a rebuilding generation must not touch what
	// readers see.
	Versions *Versions
	// Tuning holds the batch and retry knobs (zero values: the defaults).
	Tuning
	// Scope says how a runtime that is not the live projector differs
	// from it (an as-of build, a building generation); zero for live.
	Scope

	// applier is Projector as Run applies it: given the codec's key ring
	// when it keeps sealed fields (Sealing).
	applier Projector
}

// Tuning are a Runtime's batch and retry knobs; a zero field takes its
// default.
type Tuning struct {
	BatchSize int // max events per transaction (default 2000)
	// BatchWait is the longest a batch waits to fill after its first record
	// (default 50ms). The broker already gathers records for up to 50 ms
	// per fetch (adapters/kafka), so 50 here keeps batches large under load
	// while freshness p99 fell from 218-276 to 140-178 ms (make bench).
	BatchWait time.Duration
	// Retry is how long to wait before retrying after a failure
	// (PostgreSQL or Kafka unavailable). Default 500ms.
	Retry time.Duration
	// RetryChunk bounds how many held-back events of one user a retry
	// re-applies per turn of the partition's worker (default 200), so a
	// user parked for days does not stall the partition: live batches run
	// between chunks, and the user's new events stay parked behind the
	// rest, in order.
	RetryChunk int
}

// Scope is what sets a runtime that is not the live projector apart from
// it: a building generation halts on poison, an as-of build stops at
// offsets and locks its partitions in a space of its own.
type Scope struct {
	// LockSpace separates the partition locks of runtimes that project the
	// same projector into different schemas (an as-of build beside the
	// live one).
	LockSpace string
	// StopAt, when set, ends each partition at an offset (exclusive): a
	// projection "as of" a point in time (see AsOf).
	StopAt map[int32]int64
	// FailOnPoison halts instead of parking a user's events behind a dead
	// letter while the generation is building (not live, not standby): a
	// rebuild must fail loudly rather than build a generation with holes.
	FailOnPoison bool
}

// ErrFenced means another owner advanced the checkpoint: this worker's view
// is stale and it must re-read the checkpoint.
var ErrFenced = errors.New("checkpoint moved underneath this worker (fenced)")

func (r *Runtime) defaults() {
	if r.BatchSize == 0 {
		r.BatchSize = 2000
	}
	if r.BatchWait == 0 {
		r.BatchWait = 50 * time.Millisecond
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Retry == 0 {
		r.Retry = 500 * time.Millisecond
	}
	if r.RetryChunk == 0 {
		r.RetryChunk = 200
	}
}

func (r *Runtime) lockKey() int32 {
	h := fnv.New32a()
	h.Write([]byte(r.LockSpace + Key(r.Projector)))
	return int32(h.Sum32())
}

// Run projects until ctx ends. It returns a non-nil error only for faults
// that must stop the process loudly (an undecryptable event, a corrupt
// record): retrying those would only repeat them.
func (r *Runtime) Run(ctx context.Context) error {
	r.defaults()
	log := r.Logger.With("projector", Key(r.Projector))
	r.applier = r.Projector
	if s, ok := r.Projector.(Sealing); ok {
		if r.Codec == nil {
			return &FatalError{Err: fmt.Errorf("%s seals personal fields with the users' keys: the runtime needs the codec", Key(r.Projector))}
		}
		r.applier = s.WithFields(r.Codec.Keys())
	}
	if r.Observer != nil {
		go r.lagLoop(ctx)
	}
	for {
		err := r.runOwned(ctx, log)
		var fatal *FatalError
		if errors.As(err, &fatal) {
			log.Error("projector halted", "err", err)
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("projector interrupted, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.Retry):
		}
	}
}

// FatalError wraps faults that halt a projector (see Run).
type FatalError struct{ Err error }

// Error marks the cause as fatal.
func (e *FatalError) Error() string { return "fatal: " + e.Err.Error() }

// Unwrap exposes the cause to errors.Is/As.
func (e *FatalError) Unwrap() error { return e.Err }

// runOwned holds the lock connection; losing it cancels every worker.
func (r *Runtime) runOwned(ctx context.Context, log *slog.Logger) error {
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	// The session-level advisory locks die with this connection: never
	// return it to the pool.
	defer conn.Release()
	defer conn.Conn().Close(context.Background())
	var connMu sync.Mutex // a pgx connection is not safe for concurrent use
	// If this process is paused or cut off, the server ends the idle
	// session (we ping every 2s) and with it the locks, so another owner
	// takes the partitions over within seconds instead of after TCP
	// keepalive (hours). A resumed stale owner is fenced by the checkpoint.
	if _, err := conn.Exec(ctx, `SET idle_session_timeout = '15s'`); err != nil {
		log.Debug("idle_session_timeout not supported", "err", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		owned = map[int32]bool{}
		wg    sync.WaitGroup
		errc  = make(chan error, 1)
	)
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: stop the workers, then wait for them
	ticker := time.NewTicker(2 * time.Second)
	defer ticker.Stop()
	for {
		parts, err := r.Log.Partitions(ctx)
		if err != nil {
			return err
		}
		for _, p := range parts {
			mu.Lock()
			have := owned[p]
			mu.Unlock()
			if have {
				continue
			}
			var got bool
			connMu.Lock()
			err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, r.lockKey(), p).Scan(&got)
			connMu.Unlock()
			if err != nil {
				return fmt.Errorf("advisory lock: %w", err)
			}
			if !got {
				continue
			}
			mu.Lock()
			owned[p] = true
			mu.Unlock()
			wg.Add(1)
			go func(p int32) {
				defer wg.Done()
				err := r.worker(ctx, log.With("partition", p), p)
				if ctx.Err() != nil {
					return
				}
				var fatal *FatalError
				if errors.As(err, &fatal) {
					select {
					case errc <- err:
					default:
					}
					return
				}
				// Non-fatal: give the partition up; the loop retakes it.
				log.Warn("partition worker stopped, will retry", "partition", p, "err", err)
				time.Sleep(r.Retry)
				connMu.Lock()
				_, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, r.lockKey(), p)
				connMu.Unlock()
				if uerr != nil {
					cancel()
				}
				mu.Lock()
				delete(owned, p)
				mu.Unlock()
			}(p)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-ticker.C:
			connMu.Lock()
			err := conn.Ping(ctx)
			connMu.Unlock()
			if err != nil {
				return fmt.Errorf("lock connection lost: %w", err)
			}
		}
	}
}

// checkpoint reads (creating at 0) the partition's next offset.
func (r *Runtime) checkpoint(ctx context.Context, p int32) (int64, error) {
	name, gen := r.Projector.Name(), r.Projector.Generation()
	if r.Versions != nil {
		// A dropped generation must not come back through a worker that
		// restarts before its supervisor stops it.
		if st, err := r.Versions.State(ctx, name, gen); err == nil && st == "dropped" {
			return 0, &FatalError{Err: fmt.Errorf("%s was dropped", Key(r.Projector))}
		}
	}
	if _, err := r.Pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, generation, partition, next_offset) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING`, name, gen, p); err != nil {
		return 0, err
	}
	var next int64
	err := r.Pool.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2 AND partition = $3`, name, gen, p).Scan(&next)
	return next, err
}

// fatalDecode tells configuration or data faults (which retrying would
// only repeat) from a dependency that is briefly unavailable.
func fatalDecode(err error) bool {
	return errors.Is(err, eventstore.ErrKeyUnwrap) || errors.Is(err, eventstore.ErrDecrypt) ||
		errors.Is(err, eventstore.ErrCorrupt) || errors.Is(err, eventstore.ErrNoKey)
}

func (r *Runtime) worker(ctx context.Context, log *slog.Logger, p int32) error {
	next, err := r.checkpoint(ctx, p)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	// A checkpoint beyond the end of the log means the log lost records (or
	// points at another cluster): continuing would silently skip whatever
	// is written at those offsets next.
	hw, err := r.Log.HighWater(ctx, p)
	if err != nil {
		return err
	}
	if next > hw {
		return &FatalError{Err: fmt.Errorf("%w: %s partition %d checkpoint %d is beyond the end of the log (%d)", eventstore.ErrOffsetOutOfRange, Key(r.Projector), p, next, hw)}
	}
	sub, err := r.Log.Subscribe(ctx, p, next)
	if errors.Is(err, eventstore.ErrOffsetOutOfRange) {
		return &FatalError{Err: err}
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	log.Debug("partition owned", "from", next)
	parked, err := r.parkedUsers(ctx, p)
	if err != nil {
		return err
	}
	retryTick := time.NewTicker(time.Second)
	defer retryTick.Stop()
	stored := next // the checkpoint in PostgreSQL; next may run ahead over irrelevant events
	lastWrite := time.Now()
	sel, selective := r.Projector.(Selective)
	batch := make([]eventstore.Record, 0, r.BatchSize)
	for {
		batch = batch[:0]
		// Wait for the first record.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-retryTick.C:
			if next > stored { // persist progress over irrelevant events
				if _, err := r.applyWithRetry(ctx, log, p, stored, nil, parked, next); err != nil {
					return err
				}
				stored, lastWrite = next, time.Now()
			}
			if len(parked) > 0 {
				// The table is the truth (an operator may have skipped the
				// last failed event of a user): reload, then retry.
				if reloaded, err := r.parkedUsers(ctx, p); err == nil {
					parked = reloaded
				}
				if err := r.processRetries(ctx, log, p, parked, stored); err != nil {
					return err
				}
			}
			continue
		case err := <-sub.Errors():
			return fmt.Errorf("read partition: %w", err)
		case rec, ok := <-sub.Records():
			if !ok {
				return errors.New("partition stream closed")
			}
			batch = append(batch, rec)
		}
		// Fill the batch for at most BatchWait.
		deadline := time.NewTimer(r.BatchWait)
	fill:
		for len(batch) < r.BatchSize {
			select {
			case rec, ok := <-sub.Records():
				if !ok {
					break fill
				}
				batch = append(batch, rec)
			case <-deadline.C:
				break fill
			}
		}
		deadline.Stop()
		if batch[0].Position.Offset < next {
			// Already applied (a redelivery after a resubscribe): drop them.
			batch = dropBefore(batch, next)
			if len(batch) == 0 {
				continue
			}
		}
		if stop, ok := r.StopAt[p]; ok {
			batch = keepBefore(batch, stop)
			if len(batch) == 0 {
				<-ctx.Done() // reached the point in time: idle until stopped
				return ctx.Err()
			}
		}
		if selective && r.StopAt == nil && time.Since(lastWrite) < time.Second && !wanted(sel, batch) {
			next = batch[len(batch)-1].Position.Offset + 1
			continue
		}
		newNext, err := r.applyWithRetry(ctx, log, p, stored, batch, parked, 0)
		if err != nil {
			return err
		}
		next, stored, lastWrite = newNext, newNext, time.Now()
	}
}

// wanted reports whether any record of b is wanted by sel.
func wanted(sel Selective, b []eventstore.Record) bool {
	for _, rec := range b {
		if wantedRecord(sel, rec) {
			return true
		}
	}
	return false
}

// wantedRecord reports whether rec's type header names a type sel wants.
// A record without one is wanted: only Decode can tell what it is (and
// halt on it if it is corrupt).
func wantedRecord(sel Selective, rec eventstore.Record) bool {
	for _, h := range rec.Headers {
		if h.Key == eventstore.HeaderEventType {
			return sel.Wants(string(h.Value))
		}
	}
	return true
}

func keepBefore(b []eventstore.Record, stop int64) []eventstore.Record {
	i := 0
	for i < len(b) && b[i].Position.Offset < stop {
		i++
	}
	return b[:i]
}

func dropBefore(b []eventstore.Record, next int64) []eventstore.Record {
	i := 0
	for i < len(b) && b[i].Position.Offset < next {
		i++
	}
	return b[i:]
}

// lagLoop reports head minus stored checkpoint for every partition every
// few seconds, independent of the workers, so lag keeps rising on a stuck
// partition instead of freezing with it.
func (r *Runtime) lagLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		parts, err := r.Log.Partitions(ctx)
		if err != nil {
			continue
		}
		for _, p := range parts {
			hw, err1 := r.Log.HighWater(ctx, p)
			var next int64
			err2 := r.Pool.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2 AND partition = $3`, r.Projector.Name(), r.Projector.Generation(), p).Scan(&next)
			if err1 == nil && (err2 == nil || errors.Is(err2, pgx.ErrNoRows)) {
				r.Observer.Lag(Key(r.Projector), p, max(hw-next, 0))
			}
		}
	}
}

// applyWithRetry decodes a batch and applies it; PostgreSQL failures are
// retried with the same batch (nothing is skipped), decode failures halt.
// applyWithRetry applies recs with the checkpoint moving from next (the
// stored one) past them; with no records it only moves the checkpoint to
// advanceTo.
func (r *Runtime) applyWithRetry(ctx context.Context, log *slog.Logger, p int32, next int64, recs []eventstore.Record, parked map[uuid.UUID]bool, advanceTo int64) (int64, error) {
	events := make([]eventstore.Stored, 0, len(recs))
	sel, selective := r.Projector.(Selective)
	for _, rec := range recs {
		if selective && !wantedRecord(sel, rec) {
			// Apply would ignore it: skip the decryption and decoding (most
			// of a selective projector's CPU, since pushes dominate the log).
			continue
		}
		s, err := r.Codec.Decode(ctx, rec)
		if err != nil {
			if fatalDecode(err) {
				return 0, &FatalError{Err: err}
			}
			return 0, err // e.g. the key store is unreachable: retry later
		}
		if !s.Erased { // only an erasure tombstone (destroyed key) skips
			events = append(events, s)
		}
	}
	newNext := advanceTo
	if len(recs) > 0 {
		newNext = recs[len(recs)-1].Position.Offset + 1
	}
	// One span per batch, linked to the request spans that produced its
	// events (trace context travels in the envelope), so a trace shows the
	// HTTP request, the append and the projection that made it visible.
	ctx, span := tracer.Start(ctx, "project "+Key(r.Projector), trace.WithLinks(links(events)...),
		trace.WithAttributes(attribute.Int("biosync.partition", int(p)), attribute.Int("biosync.batch_size", len(recs))))
	defer span.End()
	for attempt := 0; ; attempt++ {
		start := time.Now()
		applied, err := r.apply(ctx, p, next, newNext, events, parked, false)
		if permanent(err) {
			if r.FailOnPoison && r.rebuilding(ctx) {
				return 0, &FatalError{Err: fmt.Errorf("%s cannot apply a batch of partition %d at %d..%d: %w", Key(r.Projector), p, next, newNext-1, err)}
			}
			// A poison event: apply user by user, park the users whose
			// events fail, keep everyone else flowing.
			log.Warn("batch failed with a permanent error; isolating per user", "err", err, "from", next, "to", newNext)
			applied, err = r.apply(ctx, p, next, newNext, events, parked, true)
		}
		if err == nil {
			events = applied
			if r.Observer != nil {
				r.Observer.Batch(Key(r.Projector), p, len(recs), time.Since(start))
			}
			if ac, ok := r.Projector.(AfterCommitter); ok && r.live(ctx) {
				ac.AfterCommit(ctx, events, p, newNext, len(recs) >= r.BatchSize)
			}
			return newNext, nil
		}
		if errors.Is(err, ErrFenced) || ctx.Err() != nil {
			return 0, err
		}
		log.Warn("apply failed, retrying the same batch", "err", err, "attempt", attempt+1, "from", next, "to", newNext)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(r.Retry):
		}
	}
}

// rebuilding reports whether this generation is being built (or is not
// registered at all): neither live nor standby, so a poison event must fail
// the build instead of leaving a hole.
func (r *Runtime) rebuilding(ctx context.Context) bool {
	if r.Versions == nil {
		return true
	}
	st, err := r.Versions.State(ctx, r.Projector.Name(), r.Projector.Generation())
	return err == nil && st != StateLive && st != StateStandby
}

// live reports whether this runtime's generation is the one readers see.
func (r *Runtime) live(ctx context.Context) bool {
	if r.Versions == nil {
		return true
	}
	g, err := r.Versions.Live(ctx, r.Projector.Name())
	return err == nil && g == r.Projector.Generation()
}

var tracer = otel.Tracer("github.com/biosync/biosync/projections")

// maxLinks bounds the span links per batch (a rebuild batch holds thousands).
const maxLinks = 32

func links(events []eventstore.Stored) []trace.Link {
	var out []trace.Link
	prop := propagation.TraceContext{}
	for _, e := range events {
		if e.TraceParent == "" {
			continue
		}
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": e.TraceParent, "tracestate": e.TraceState}))
		if sc.IsValid() {
			out = append(out, trace.Link{SpanContext: sc})
		}
		if len(out) == maxLinks {
			break
		}
	}
	return out
}

// apply writes one batch and advances the checkpoint in one transaction.
// Events of parked users are parked behind their failed event instead of
// applied. With isolate, each user's events are applied under a savepoint
// and a failing event is recorded as a dead letter (parking that user);
// parked is updated only when the transaction commits. It returns the
// events that were applied.
func (r *Runtime) apply(ctx context.Context, p int32, expected, next int64, events []eventstore.Stored, parked map[uuid.UUID]bool, isolate bool) ([]eventstore.Stored, error) {
	var applied []eventstore.Stored
	newlyParked := map[uuid.UUID]bool{}
	err := pgx.BeginFunc(ctx, r.Pool, func(tx pgx.Tx) error {
		applied, newlyParked = nil, map[uuid.UUID]bool{}
		// Read models are derived and the checkpoint commits with them: a
		// commit lost in a server crash is simply projected again, so the
		// transaction need not wait for its WAL flush.
		// Every statement is planned for the tables as they are now: a
		// cached generic plan, made while a table was nearly empty, keeps
		// sequential scans as the table grows (measured: 60 ms instead of
		// 1 ms per batch for primary key probes on a day of 3,000 samples);
		// JIT compilation (20-80 ms) never pays off for statements this
		// short. Both statements go in one round trip.
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true)`)
		b.Queue(`UPDATE projection_checkpoints SET next_offset = $5, updated_at = now()
			WHERE name = $1 AND generation = $2 AND partition = $3 AND next_offset = $4`,
			r.Projector.Name(), r.Projector.Generation(), p, expected, next)
		// Delivered at commit, to readers waiting for this progress.
		b.Queue(`SELECT pg_notify('`+CheckpointChannel+`', $1)`, r.Projector.Name())
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		tag, err := br.Exec()
		if err == nil {
			_, err = br.Exec()
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrFenced
		}
		live, held := splitParked(events, parked)
		for _, e := range held {
			if err := r.deadLetter(ctx, tx, e, "parked", ""); err != nil {
				return err
			}
		}
		if len(live) == 0 {
			return nil
		}
		if !isolate {
			applied = live
			return r.applier.Apply(ctx, tx, live)
		}
		groups := byUser(live)
		failedGroups := 0
		for _, group := range groups {
			poison, err := r.applyInSavepoint(ctx, tx, group)
			if err != nil {
				return err
			}
			if poison == nil {
				applied = append(applied, group...)
				continue
			}
			failedGroups++
			if everyUserFailed(failedGroups, len(groups)) {
				return errEveryUserFailed
			}
			for i, e := range group { // find the first event that fails
				poison, err := r.applyInSavepoint(ctx, tx, group[i:i+1])
				if err != nil {
					return err
				}
				if poison == nil {
					applied = append(applied, e)
					continue
				}
				if err := r.deadLetter(ctx, tx, e, "failed", poison.Error()); err != nil {
					return err
				}
				for _, later := range group[i+1:] {
					if err := r.deadLetter(ctx, tx, later, "parked", ""); err != nil {
						return err
					}
				}
				newlyParked[e.UserID] = true
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for u := range newlyParked {
		parked[u] = true
		r.Logger.Error("projector parked a user's events behind a dead letter", "projector", Key(r.Projector), "partition", p, "user_id", u)
	}
	return applied, nil
}

// applyInSavepoint applies events in a nested transaction (a savepoint).
// A permanent Apply failure is rolled back and returned as poison; any other
// failure (the database went away) is err and aborts the whole transaction.
func (r *Runtime) applyInSavepoint(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) (poison, err error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if aerr := r.applier.Apply(ctx, sp, events); aerr != nil {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return nil, rerr
		}
		if !permanent(aerr) {
			return nil, aerr
		}
		return aerr, nil
	}
	return nil, sp.Commit(ctx)
}

// splitParked separates the events of parked users (held behind their
// user's dead letter, in order) from those applied now. With nobody parked
// it returns events itself: the hot path allocates nothing.
func splitParked(events []eventstore.Stored, parked map[uuid.UUID]bool) (live, held []eventstore.Stored) {
	if len(parked) == 0 {
		return events, nil
	}
	for _, e := range events {
		if parked[e.UserID] {
			held = append(held, e)
			continue
		}
		live = append(live, e)
	}
	return live, held
}

// everyUserFailed reports whether failed of groups users failing means the
// system failed, not their events: every user of a batch with more than
// one user.
func everyUserFailed(failed, groups int) bool { return failed == groups && groups > 1 }

// byUser splits a batch into one group per user, users in order of first
// appearance and each group in log order, so a poison event can be
// isolated to its user.
func byUser(events []eventstore.Stored) [][]eventstore.Stored {
	idx := map[uuid.UUID]int{}
	var out [][]eventstore.Stored
	for _, e := range events {
		i, ok := idx[e.UserID]
		if !ok {
			i = len(out)
			idx[e.UserID] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], e)
	}
	return out
}

// permanent tells an apply error that retrying cannot fix (bad data, a
// constraint, a projector bug) from an unavailable database, a fence or a
// cancellation, which are retried. Only data exceptions and integrity
// violations are about the event; a missing table, a permission, a lock
// timeout or an I/O error is about the system and must not park anybody
// (see pgerr.Permanent).
func permanent(err error) bool {
	if err == nil || errors.Is(err, ErrFenced) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return pgerr.Permanent(err)
}

// errEveryUserFailed: when every user of a multi-user batch fails, the
// cause is the system, not their events: retry instead of parking them all.
var errEveryUserFailed = fmt.Errorf("every user's events in the batch failed: %w", domain.ErrUnavailable)
