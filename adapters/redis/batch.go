package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// batcher sends the commands of concurrent callers to Redis in shared
// round trips (group commit). Every webhook delivery asks Redis twice
// (was it seen, remember it); one round trip each was a fifth of the
// server's CPU at ingest saturation, mostly system calls on both ends.
// A caller queues its command and waits for it; whenever fewer than
// maxSenders sends are in flight, a sender goroutine takes everything
// queued (up to maxBatch) and pipelines it. An idle server therefore sends
// at once (no timer, no added latency); a busy one sends fewer, fuller
// round trips. go-redis has no automatic pipelining (rueidis has; one
// client library is enough).
type batcher struct {
	c *goredis.Client

	mu      sync.Mutex
	queue   []*batched
	senders int
}

// batched is one queued command and the signal that it has an answer.
type batched struct {
	ctx  context.Context
	cmd  goredis.Cmder
	done chan struct{}
}

const (
	// maxSenders bounds the pipelines in flight. Redis runs commands one
	// at a time anyway, and one pipeline in flight lets the next one fill
	// with everything that arrives meanwhile: with 4 the batcher and the
	// embedded Redis took 15.7 % of the server's CPU at ingest saturation,
	// with 1 13.2 % (make bench --cpuprofile).
	maxSenders = 1
	// maxBatch bounds one pipeline (and so the latency of its first caller).
	maxBatch = 256
)

// do runs cmd in the next pipeline and waits for its answer (or ctx). The
// command of a caller that gave up before its pipeline left is dropped.
func (b *batcher) do(ctx context.Context, cmd goredis.Cmder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q := &batched{ctx: ctx, cmd: cmd, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	if b.senders < maxSenders {
		b.senders++
		go b.send()
	}
	b.mu.Unlock()
	select {
	case <-q.done:
		return cmd.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send pipelines whatever is queued until the queue is empty.
func (b *batcher) send() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.senders--
			b.mu.Unlock()
			return
		}
		batch := make([]*batched, 0, n)
		for _, q := range b.queue[:n] {
			if q.ctx.Err() != nil {
				// Its caller gave up: do not send it (a slow Redis must not
				// build a backlog).
				q.cmd.SetErr(q.ctx.Err())
				close(q.done)
				continue
			}
			batch = append(batch, q)
		}
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.mu.Unlock()
		if len(batch) == 0 {
			continue
		}

		// The pipeline belongs to every caller in it: it runs without any
		// one caller's cancellation (go-redis's own timeouts bound it) and
		// with the first caller's values (trace context).
		ctx := context.WithoutCancel(batch[0].ctx)
		p := b.c.Pipeline()
		for _, q := range batch {
			_ = p.Process(ctx, q.cmd)
		}
		_, _ = p.Exec(ctx) // every command carries its own error
		for _, q := range batch {
			close(q.done)
		}
	}
}
