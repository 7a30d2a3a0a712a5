package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/biosync/biosync/domain/provider"
)

// Metadata keys of the messages the fetch worker consumes: the event
// log's envelope, as the subscriber over the log sets them (the payload is
// the decrypted event body).
const (
	MetaEventType = "event_type"
	MetaUserID    = "user_id"
)

// PoisonTopic receives the messages whose handling kept failing after
// every retry; the failure is also visible on the connection.
const PoisonTopic = "biosync.providers.poison"

// WorkerConfig tunes the fetch worker; zero values take the defaults.
type WorkerConfig struct {
	// Retries is how often a failing message is retried (default 5) with
	// exponential backoff from RetryInterval (default 500 ms, at most 30 s
	// apart).
	Retries       int
	RetryInterval time.Duration
	// PerSecond throttles the messages handled per second (default 20),
	// so a burst of notifications does not exceed providers' app limits.
	PerSecond int64
	// BackfillEvery is how often unfinished backfills are resumed
	// (default 30 s; also at start).
	BackfillEvery time.Duration
	// MaxRetryAfter bounds how long one 429 is waited out (default 1 min).
	MaxRetryAfter time.Duration
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.Retries <= 0 {
		c.Retries = 5
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 500 * time.Millisecond
	}
	if c.PerSecond <= 0 {
		c.PerSecond = 20
	}
	if c.BackfillEvery <= 0 {
		c.BackfillEvery = 30 * time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = time.Minute
	}
	return c
}

// Worker is the process manager of provider data: a watermill Router
// consuming the event log (provider.notified: follow the pointer;
// connection.established: run the backfill) with the correlation, poison
// queue, retry, throttle and recoverer middlewares, and a ticker resuming
// unfinished backfills (after a restart, or a manual sync).
type Worker struct {
	s      *Service
	router *message.Router
	cfg    WorkerConfig
}

// NewWorker builds the worker's Router over sub (messages of topic, one per
// event, acknowledged only once handled) with poison as the poison
// queue's publisher.
func (s *Service) NewWorker(sub message.Subscriber, topic string, poison message.Publisher, cfg WorkerConfig) (*Worker, error) {
	if sub == nil || poison == nil {
		return nil, errors.New("connections: the worker needs a subscriber and a poison publisher")
	}
	cfg = cfg.withDefaults()
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NewSlogLogger(s.d.Logger))
	if err != nil {
		return nil, err
	}
	pq, err := middleware.PoisonQueue(poison, PoisonTopic)
	if err != nil {
		return nil, err
	}
	w := &Worker{s: s, router: r, cfg: cfg}
	r.AddMiddleware(
		middleware.CorrelationID,
		pq,
		middleware.Retry{
			// No ShouldRetry: watermill v1.5.1 advances the backoff when it
			// asks, doubling every wait twice. A revoked grant is never an
			// error here (the handlers settle it and return nil).
			MaxRetries: cfg.Retries, InitialInterval: cfg.RetryInterval, MaxInterval: 30 * time.Second, Multiplier: 2,
		}.Middleware,
		middleware.NewThrottle(cfg.PerSecond, time.Second).Middleware,
		middleware.Recoverer,
	)
	r.AddConsumerHandler("provider-fetch", topic, sub, w.handle)
	return w, nil
}

// Run runs the Router and the backfill ticker until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	go func() {
		t := time.NewTicker(w.cfg.BackfillEvery)
		defer t.Stop()
		for {
			w.s.BackfillDue(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w.router.Run(ctx)
}

// Running is closed once the Router's handlers run.
func (w *Worker) Running() chan struct{} { return w.router.Running() }

// handle is the one handler: it reads the envelope from the metadata and
// dispatches on the event type; other events are acknowledged untouched.
func (w *Worker) handle(msg *message.Message) error {
	ctx := msg.Context()
	typ := msg.Metadata.Get(MetaEventType)
	if typ != provider.EventNotified && typ != provider.EventConnectionEstablished {
		return nil
	}
	user, err := uuid.Parse(msg.Metadata.Get(MetaUserID))
	if err != nil {
		return fmt.Errorf("message %s: user id: %w", msg.UUID, err)
	}
	switch typ {
	case provider.EventNotified:
		var n provider.Notified
		if err := json.Unmarshal(msg.Payload, &n); err != nil {
			return fmt.Errorf("message %s: %w", msg.UUID, err)
		}
		err = w.s.HandleNotified(ctx, user, n)
	case provider.EventConnectionEstablished:
		var c provider.ConnectionEstablished
		if err := json.Unmarshal(msg.Payload, &c); err != nil {
			return fmt.Errorf("message %s: %w", msg.UUID, err)
		}
		err = w.s.Backfill(ctx, user, c.Provider)
	}
	return w.waitOut(ctx, err)
}

// waitOut honours a 429's Retry-After (bounded) before the retry
// middleware tries again.
func (w *Worker) waitOut(ctx context.Context, err error) error {
	var rl *RateLimited
	if errors.As(err, &rl) {
		wait := min(max(rl.RetryAfter, time.Second), w.cfg.MaxRetryAfter)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return err
}
