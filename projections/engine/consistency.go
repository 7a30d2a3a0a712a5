package engine

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// Consistency answers "has this read model caught up with my write?": a
// read carrying a consistency token waits until every projector it reads
// has passed the token's positions in its live generation.
type Consistency struct {
	Pool *pgxpool.Pool
	// Versions tells which generation of each projector is live; nil
	// means generation 1.
	Versions *Versions
	// Progress, when followed (Checkpoints.Follow), ends consistency waits
	// at the projector's commit instead of the next poll.
	Progress *Checkpoints
	// LiveRecheck is how often a consistency wait re-checks on its own
	// while Progress is live, in case the feed died without an error
	// (default 250ms).
	LiveRecheck time.Duration
}

// WaitFor blocks until every projector behind readModels has applied every
// position in token (bounded by ctx; domain.ErrTimeout when it runs out).
func (r *Consistency) WaitFor(ctx context.Context, token eventstore.Token, readModels ...string) error {
	if len(token) == 0 {
		return nil
	}
	delay := 5 * time.Millisecond
	for {
		var woken <-chan struct{}
		wait := delay
		if r.Progress != nil {
			var live bool
			if woken, live = r.Progress.Changed(); live {
				// Announcements end the wait; the timer only guards
				// against a feed that died without an error.
				wait = r.LiveRecheck
				if wait <= 0 {
					wait = 250 * time.Millisecond
				}
			}
		}
		ok, err := r.reached(ctx, token, readModels)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for consistency token: %w", domain.ErrTimeout)
		case <-woken:
		case <-time.After(wait):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

func (r *Consistency) reached(ctx context.Context, token eventstore.Token, readModels []string) (bool, error) {
	parts := make([]int32, len(token))
	for i, p := range token {
		parts[i] = p.Partition
	}
	for _, name := range readModels {
		gen, err := r.Versions.Live(ctx, name)
		if err != nil {
			return false, err
		}
		rows, err := r.Pool.Query(ctx, `SELECT partition, next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2 AND partition = ANY($3)`, name, gen, parts)
		if err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("waiting for consistency token: %w", domain.ErrTimeout)
			}
			return false, unavailable(err)
		}
		next := map[int32]int64{}
		for rows.Next() {
			var p int32
			var o int64
			if err := rows.Scan(&p, &o); err != nil {
				rows.Close()
				return false, err
			}
			next[p] = o
		}
		rows.Close()
		if !passed(next, token) {
			return false, nil
		}
	}
	return true, nil
}

// passed reports whether checkpoints next (partition -> next offset) are
// beyond every position of token.
func passed(next map[int32]int64, token eventstore.Token) bool {
	for _, pos := range token {
		if next[pos.Partition] <= pos.Offset {
			return false
		}
	}
	return true
}

// PartitionOf returns the partition holding a user's events: sarama's
// default hash partitioner (FNV-1a 32 of the key, the user id string).
func PartitionOf(userID uuid.UUID, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(userID.String()))
	p := int32(h.Sum32()) % partitions
	if p < 0 {
		p = -p
	}
	return p
}
