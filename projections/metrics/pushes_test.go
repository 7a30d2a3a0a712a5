package metrics_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// pushAs appends a samples.pushed event under a given id, as a command
// side that lost its records (or an old log) could.
func pushAs(t *testing.T, s *projectiontest.Stack, id, user uuid.UUID, b ingest.Batch) {
	t.Helper()
	body, err := json.Marshal(ingest.Pushed{DeliveryID: "msg_1", Channel: "webhook", ReceivedAt: time.Now().UTC(), Batch: b})
	require.NoError(t, err)
	s.Append(t, eventstore.Event{ID: id, Type: ingest.EventPushed, UserID: user, Payload: body})
}

// Two different events under one id must not both count: the first stands,
// a copy of it changes nothing, and the different one is refused where
// operators see it (a 'refused' dead letter), without holding back the
// user's later pushes.
func TestASecondDifferentEventUnderAnAppliedIDIsRefusedAndTheFirstStands(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada := uuid.New()
	s.Register(t, ada, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	weight := func(kg float64) ingest.Batch {
		return ingest.Batch{UserID: ada.String(), Source: ingest.Source{Provider: "scale"}, Samples: []ingest.Sample{
			projectiontest.Sample("weight", "2026-11-20T07:00:00Z", "2026-11-20T07:00:00Z", kg, "kg")}}
	}
	id := eventstore.DeterministicID("push.webhook", ada.String(), "msg_1")
	pushAs(t, s, id, ada, weight(70))
	pushAs(t, s, id, ada, weight(70)) // a copy: skipped
	pushAs(t, s, id, ada, weight(99)) // another batch under the same id: refused
	s.Push(t, ada, ingest.Batch{Source: ingest.Source{Provider: "scale"}, Samples: []ingest.Sample{
		projectiontest.Sample("weight", "2026-11-21T07:00:00Z", "2026-11-21T07:00:00Z", 71, "kg")}})
	m := &metrics.Projector{}
	project(t, s, m)

	r := &metrics.Reader{Pool: s.Pool, Partitions: s.Cfg.Partitions}
	series, err := r.Metrics(ctx, metrics.MetricQuery{UserID: ada, Type: metricType("weight"),
		From: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Bucket: metrics.BucketRaw})
	require.NoError(t, err)
	require.Len(t, series.Points, 2, "the first event and the later push: %+v", series.Points)
	assert.InDelta(t, 70, series.Points[0].Value, 1e-9, "the first event under the id stands")
	assert.InDelta(t, 71, series.Points[1].Value, 1e-9, "the refused event parks nobody")

	letters, err := engine.DeadLetters{Pool: s.Pool}.List(ctx, metrics.Name)
	require.NoError(t, err)
	require.Len(t, letters, 1, "only the different event is a dead letter: %+v", letters)
	assert.Equal(t, "refused", letters[0].State)
	assert.Equal(t, id, letters[0].EventID)
	assert.Contains(t, letters[0].Error, "the first stands")
	var applied int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM pushes_applied_g1 WHERE user_id = $1`, ada).Scan(&applied))
	assert.Equal(t, 2, applied, "one row per applied event")
}
