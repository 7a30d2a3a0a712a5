package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Rebuilder drives blue/green rebuilds: Start registers a new generation
// (its tables built beside the live ones; any running Supervisor starts
// projecting it from offset 0), Await waits until it has caught up with the
// head of the log and switches reads to it in one transaction.
type Rebuilder struct {
	Pool     *pgxpool.Pool
	Versions *Versions
	// Heads snapshots the log's high-water mark per partition.
	Heads func(ctx context.Context) (map[int32]int64, error)
	// Poll is how often progress is checked (default 1s).
	Poll time.Duration
}

// Start registers the next generation of the named projector as building.
func (b *Rebuilder) Start(ctx context.Context, name string) (Version, error) {
	template, err := New(name, 1, nil)
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
