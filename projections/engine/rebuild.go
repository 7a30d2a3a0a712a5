package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/biosync/biosync/eventstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Rebuilder drives blue/green rebuilds: Start registers a new generation
// (its tables built beside the live ones; any running Supervisor starts
// projecting it from offset 0), Await waits until it has caught up with the
// head of the log and switches reads to it in one transaction.
type Rebuilder struct {
	Pool     *pgxpool.Pool
	Versions *Versions
	// Catalog knows the projectors' tables (copied for a new generation,
	// dropped with an old one).
	Catalog Catalog
	// Log is the event log whose head a rebuild catches up with.
	Log eventstore.Log
	// Poll is how often progress is checked (default 1s).
	Poll time.Duration
}

// Heads snapshots the log's high-water mark of every partition.
func (b *Rebuilder) Heads(ctx context.Context) (map[int32]int64, error) {
	parts, err := b.Log.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64, len(parts))
	for _, part := range parts {
		if out[part], err = b.Log.HighWater(ctx, part); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Status is one projector generation and its progress.
type Status struct {
	Version
	// Checkpoint is the sum of the generation's next offsets over all
	// partitions; Head the sum of the log's high-water marks. Head minus
	// Checkpoint is the lag.
	Checkpoint, Head int64
}

// Statuses lists every registered generation with its progress against
// one snapshot of the head (what `projections list` and the admin API show).
func (b *Rebuilder) Statuses(ctx context.Context) ([]Status, error) {
	versions, err := b.Versions.List(ctx)
	if err != nil {
		return nil, err
	}
	heads, err := b.Heads(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(versions))
	for _, v := range versions {
		done, head, err := Progress(ctx, b.Pool, heads, v.Name, v.Generation)
		if err != nil {
			return nil, err
		}
		out = append(out, Status{Version: v, Checkpoint: done, Head: head})
	}
	return out, nil
}

// Start registers the next generation of the named projector as building.
func (b *Rebuilder) Start(ctx context.Context, name string) (Version, error) {
	template, err := b.Catalog.New(name, 1)
	if err != nil {
		return Version{}, err
	}
	gen, err := b.Versions.Create(ctx, template)
	if err != nil {
		return Version{}, err
	}
	return Version{Name: name, Generation: gen, State: StateBuilding, CreatedAt: time.Now().UTC()}, nil
}

// Await waits until generation gen has caught up with the head (twice in a
// row, so a burst of appends is absorbed), reporting progress, then switches
// reads to it when promote is set. halted, when it yields, aborts the wait
// (the projector of that generation stopped).
func (b *Rebuilder) Await(ctx context.Context, name string, gen int, promote bool, progress func(done, head int64), halted <-chan error) error {
	poll := b.Poll
	if poll == 0 {
		poll = time.Second
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	caughtUp := 0
	for caughtUp < 2 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("rebuild of %s@%d interrupted; it stays registered as building: %w", name, gen, ctx.Err())
		case err := <-halted:
			return fmt.Errorf("rebuild of %s@%d failed (the live generation is untouched): %w", name, gen, err)
		case <-tick.C:
		}
		var state, halt string
		if err := b.Pool.QueryRow(ctx, `SELECT state, COALESCE(error, '') FROM projection_versions WHERE name = $1 AND generation = $2`, name, gen).Scan(&state, &halt); err == nil {
			if state == "dropped" {
				return fmt.Errorf("rebuild of %s@%d: the generation was dropped", name, gen)
			}
			if halt != "" {
				return fmt.Errorf("rebuild of %s@%d failed (the live generation is untouched): %s", name, gen, halt)
			}
		}
		heads, err := b.Heads(ctx)
		if err != nil {
			continue
		}
		done, head, err := Progress(ctx, b.Pool, heads, name, gen)
		if err != nil {
			continue
		}
		if progress != nil {
			progress(done, head)
		}
		if done >= head {
			caughtUp++
		} else {
			caughtUp = 0
		}
	}
	if !promote {
		return nil
	}
	return b.Versions.Promote(ctx, name, gen)
}

// Build projects generation v (just registered by Start) in this process
// with sup limited to it (a running server shares the work through
// partition locks), waits until it has caught up and, with switchReads,
// switches reads to it. A halt of the generation ends the wait with its
// error; the supervisor is stopped before Build returns.
func (b *Rebuilder) Build(ctx context.Context, v Version, switchReads bool, sup Supervisor, progress func(done, head int64)) error {
	rctx, cancel := context.WithCancel(ctx)
	halted := make(chan error, 1)
	stopped := make(chan struct{})
	defer func() { cancel(); <-stopped }() // before the caller closes the pool and the log
	sup.Only = map[string]bool{v.Key(): true}
	go func() {
		defer close(stopped)
		err := sup.Run(rctx)
		if err == nil && rctx.Err() == nil {
			err = errors.New("projector stopped")
		}
		if err != nil {
			halted <- err
		}
	}()
	return b.Await(ctx, v.Name, v.Generation, switchReads, progress, halted)
}

// AwaitSwitch waits until a rebuilt generation has caught up and, when
// switchReads is set, makes it live (only if its switch is still pending:
// an operator may have rolled back or dropped it meanwhile). It logs the
// outcome: it runs in the background of a server.
func (b *Rebuilder) AwaitSwitch(ctx context.Context, log *slog.Logger, v Version, switchReads bool) {
	if err := b.Await(ctx, v.Name, v.Generation, false, nil, nil); err != nil {
		log.Error("rebuild did not complete", "projector", v.Key(), "err", err)
		return
	}
	if switchReads {
		if err := b.Versions.PromotePending(ctx, v.Name, v.Generation); err != nil {
			log.Error("rebuild caught up but reads did not switch", "projector", v.Key(), "err", err)
			return
		}
	}
	log.Info("rebuild caught up", "projector", v.Key(), "switched", switchReads)
}

// ResumeSwitches finishes, in the background of ctx, the switches that
// admin-API rebuilds left pending when the server that accepted them
// stopped.
func (b *Rebuilder) ResumeSwitches(ctx context.Context, log *slog.Logger) {
	pending, err := b.Versions.PendingSwitches(ctx)
	if err != nil {
		log.Warn("could not read pending rebuild switches", "err", err)
		return
	}
	for _, v := range pending {
		log.Info("resuming a rebuild whose switch is pending", "projector", v.Key())
		go b.AwaitSwitch(ctx, log, v, true)
	}
}
