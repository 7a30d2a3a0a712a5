package ingestion_test

import (
	"context"
	"errors"
	"testing"

	"github.com/biosync/biosync/deploy/commandworld"

	"github.com/google/uuid"
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
