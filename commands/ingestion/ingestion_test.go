package ingestion_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
)

func TestPushNeedsAnExistingUserAndRedeliveryIsRecognised(t *testing.T) {
	w := commandworld.New(t, true)
	ctx := context.Background()
	rc, err := redis.Open(testbackend.Redis(t))
	require.NoError(t, err)
	w.H.Dedup = redis.NewDedup(rc, 0)
	w.Rebuild(t)
	batch := ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{{Type: "steps", Start: "2026-11-20T08:00:00Z", End: "2026-11-20T08:15:00Z", Value: 10, Unit: "count"}}}

	_, err = w.H.Push(ctx, commands.PushSamples{UserID: uuid.New(), Batch: batch, DeliveryID: "msg_1", Channel: "webhook"})
	var v *domain.ValidationError
	require.Falsef(t, !errors.As(err, &v) || v.Problems[0].Field != "/user_id", "push for an unknown user = %v, want 422 naming /user_id", err)

	reg, err := w.H.Register(ctx, commands.RegisterUser{Email: "pusher@example.com", Password: "correct horse battery", Timezone: "UTC"})
	require.NoError(t, err)
	first, err := w.H.Push(ctx, commands.PushSamples{UserID: reg.UserID, Batch: batch, DeliveryID: "msg_1", Channel: "webhook"})
	require.NoError(t, err)
	again, err := w.H.Push(ctx, commands.PushSamples{UserID: reg.UserID, Batch: batch, DeliveryID: "msg_1", Channel: "webhook"})
	require.NoError(t, err)
	require.Falsef(t, !again.Duplicate || again.EventID != first.EventID || again.Token.String() != first.Token.String(), "redelivery = %+v, want the original event id and token marked duplicate (first %+v)", again, first)
	// The same Idempotency-Key from another user is another delivery.
	other, _ := w.H.Register(ctx, commands.RegisterUser{Email: "other@example.com", Password: "correct horse battery", Timezone: "UTC"})
	a, _ := w.H.Push(ctx, commands.PushSamples{UserID: reg.UserID, Batch: batch, DeliveryID: "key-1", Channel: "app"})
	b, _ := w.H.Push(ctx, commands.PushSamples{UserID: other.UserID, Batch: batch, DeliveryID: "key-1", Channel: "app"})
	require.False(t, a.EventID == b.EventID || b.Duplicate, "Idempotency-Keys must be scoped to the caller")
}

// The durable record in PostgreSQL, raced: many deliveries of one id,
// half with another batch, arriving at once (nothing in any fast store).
// Exactly one batch gets in; the other is refused every time. Copies of
// the winner that arrive while its first append is unconfirmed append it
// again (the record cannot tell "still running" from "crashed"), which
// the projectors skip as copies of an applied event.
func TestConcurrentDeliveriesOfOneIDAppendOneBatch(t *testing.T) {
	w := commandworld.New(t, true)
	ctx := context.Background()
	reg, err := w.H.Register(ctx, commands.RegisterUser{Email: "racer@example.com", Password: "correct horse battery", Timezone: "UTC"})
	require.NoError(t, err)
	batch := func(v float64) ingest.Batch {
		return ingest.Batch{Source: ingest.Source{Provider: "bridge"}, Samples: []ingest.Sample{{Type: "steps", Start: "2026-11-20T08:00:00Z", End: "2026-11-20T08:15:00Z", Value: v, Unit: "count"}}}
	}
	type answer struct {
		value float64
		acc   commands.Accepted
		err   error
	}
	answers := make(chan answer, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		v := float64(10 + i%2)
		wg.Go(func() {
			acc, err := w.H.Push(ctx, commands.PushSamples{UserID: reg.UserID, Batch: batch(v), DeliveryID: "race", Channel: "webhook"})
			answers <- answer{v, acc, err}
		})
	}
	wg.Wait()
	close(answers)
	winners := map[float64]bool{}
	var all []answer
	for a := range answers {
		all = append(all, a)
		if a.err == nil {
			winners[a.value] = true
		}
	}
	require.Len(t, winners, 1, "exactly one batch gets in: %+v", all)
	var winner float64
	for v := range winners {
		winner = v
	}
	for _, a := range all {
		if a.value == winner {
			assert.NoError(t, a.err, "the winning batch's other deliveries are duplicates")
		} else {
			assert.ErrorIs(t, a.err, ingest.ErrDeliveryReused, "the other batch is refused")
		}
	}
}
