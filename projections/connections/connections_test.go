package connections_test

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
	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/connections"
	"github.com/biosync/biosync/projections/engine"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

func appendBody(t *testing.T, s *projectiontest.Stack, user uuid.UUID, typ string, body any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	s.Append(t, eventstore.Event{Type: typ, UserID: user, Payload: raw})
}

func TestLinksFollowTheLogAndOurasScoresAreKeptApart(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada := uuid.New()
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	appendBody(t, s, ada, provider.EventConnectionEstablished, provider.ConnectionEstablished{Provider: provider.Oura, ProviderUserID: "o1", ConnectedAt: at})
	appendBody(t, s, ada, provider.EventRecordFetched, provider.RecordFetched{Provider: provider.Oura, DataType: "daily_readiness", RecordID: "r1", FetchedAt: at.Add(time.Minute),
		Record: json.RawMessage(`{"id":"r1","day":"2026-11-30","score":83,"temperature_deviation":-0.1,"timestamp":"2026-11-30T00:00:00+01:00"}`)})
	appendBody(t, s, ada, provider.EventRecordFetched, provider.RecordFetched{Provider: provider.Oura, DataType: "daily_readiness", RecordID: "r1", FetchedAt: at.Add(2 * time.Minute),
		Record: json.RawMessage(`{"id":"r1","day":"2026-11-30","score":85,"temperature_deviation":-0.1,"timestamp":"2026-11-30T00:00:00+01:00"}`)})
	appendBody(t, s, ada, provider.EventConnectionRevoked, provider.ConnectionRevoked{Provider: provider.Oura, Reason: provider.RevokedByUser, RevokedAt: at.Add(time.Hour)})

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rt := s.Runtime(connections.Projector{}, 500)
	go func() { _ = rt.Run(cctx) }()
	s.WaitCaughtUp(t, connections.Projector{})

	var status string
	var connected, revoked, lastData time.Time
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT status, connected_at, revoked_at, last_data_at FROM `+engine.Table("provider_links", 1)+` WHERE user_id = $1`, ada).
		Scan(&status, &connected, &revoked, &lastData))
	assert.Equal(t, "revoked", status)
	assert.True(t, connected.Equal(at))
	assert.True(t, revoked.Equal(at.Add(time.Hour)))
	assert.True(t, lastData.Equal(at.Add(2*time.Minute)))

	r := &connections.Reader{Pool: s.Pool, Versions: &engine.Versions{Pool: s.Pool}}
	scores, err := r.Scores(ctx, ada, at.AddDate(0, 0, -7), at)
	require.NoError(t, err)
	assert.Equal(t, []connections.ScoreView{{Provider: provider.Oura, Kind: "readiness", Day: "2026-11-30", Value: 85}}, scores, "the later record wins")
}
