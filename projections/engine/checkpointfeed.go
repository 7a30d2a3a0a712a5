package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CheckpointChannel is the PostgreSQL NOTIFY channel on which every
// projector transaction announces that it committed a checkpoint. A read
// waiting for a consistency token (Reader.WaitFor) re-checks on each
// announcement instead of on a timer: the wait ends within a round trip of
// the commit, in whichever process the projector runs. The payload is the
// projector's name.
const CheckpointChannel = "biosync_checkpoints"

// Checkpoints wakes everyone waiting for projector progress. It carries no
// positions (the checkpoints table is the truth); it only says "look
// again".
type Checkpoints struct {
	mu   sync.Mutex
	ch   chan struct{}
	live bool
}

// Changed returns a channel closed at the next announcement, and whether
// announcements are arriving at all (false: the caller must poll). Take it
// before checking, so an announcement between the check and the wait is
// not lost.
func (p *Checkpoints) Changed() (<-chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
	return p.ch, p.live
}

// announce wakes every waiter.
func (p *Checkpoints) announce() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		close(p.ch)
		p.ch = nil
	}
}

func (p *Checkpoints) setLive(v bool) {
	p.mu.Lock()
	p.live = v
	p.mu.Unlock()
	p.announce() // waiters re-read live
}

// Follow listens on CheckpointChannel until ctx ends, reconnecting with
// backoff; while it is not listening, Changed reports not live and
// waiters poll.
func (p *Checkpoints) Follow(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.listen(ctx, pool)
		p.setLive(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn("projector progress feed lost; consistency waits poll until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (p *Checkpoints) listen(ctx context.Context, pool *pgxpool.Pool) error {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // stays in LISTEN mode: never back to the pool
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+CheckpointChannel); err != nil {
		return err
	}
	p.setLive(true)
	for {
		// A commit announced before LISTEN took effect was seen by the
		// waiter's own check (it checks after taking Changed).
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		p.announce()
	}
}
