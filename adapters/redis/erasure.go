package redis

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/biosync/biosync/domain"
)

// Erasures purges an erased user's keys and tells every instance about the
// erasure (commands.CachePurger and commands.ErasureBroadcaster).
type Erasures struct{ C *goredis.Client }

// erasureChannel carries the ids of erased users to every instance.
const erasureChannel = "biosync:erasures:v1"

// PurgeUser deletes every key whose name contains the user's id or an
// alias (the hex email key of anonymous requests): the dashboard cache,
// stored idempotent responses, rate-limit counters, and whatever a later
// feature keys by user. Every BioSync key that belongs to a user carries
// one of them in its name for this reason.
func (e Erasures) PurgeUser(ctx context.Context, user uuid.UUID, aliases ...string) error {
	var keys []string
	for _, name := range append([]string{user.String()}, aliases...) {
		iter := e.C.Scan(ctx, 0, "*"+name+"*", 500).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("redis scan: %w: %v", domain.ErrUnavailable, err)
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := e.C.Del(ctx, keys[:n]...).Err(); err != nil {
			return fmt.Errorf("redis del: %w: %v", domain.ErrUnavailable, err)
		}
		keys = keys[n:]
	}
	return nil
}

// Broadcast publishes the erasure to every subscribed instance.
func (e Erasures) Broadcast(ctx context.Context, user uuid.UUID) error {
	return e.C.Publish(ctx, erasureChannel, user.String()).Err()
}

// Subscribe calls forget for every erasure published, on any instance,
// until ctx ends; it resubscribes after connection errors. Messages
// published while the connection was down are lost: the key cache's age
// bound and the erasure's second purge cover that.
func (e Erasures) Subscribe(ctx context.Context, forget func(uuid.UUID), log *slog.Logger) {
	for ctx.Err() == nil {
		sub := e.C.Subscribe(ctx, erasureChannel)
		for {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil {
				break
			}
			if id, err := uuid.Parse(msg.Payload); err == nil {
				forget(id)
			}
		}
		_ = sub.Close()
		if ctx.Err() == nil && log != nil {
			log.Warn("erasure subscription lost; resubscribing")
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
