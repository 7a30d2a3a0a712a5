// Package projectiontest is the integration test stack of the projection
// packages (engine and each read model): a fresh topic and database with
// the real Kafka and PostgreSQL adapters on top, and helpers to append
// events and wait for projectors. It lives outside projections/ because it
// wires adapters, which the projection packages must not import; only
// their tests use it (which testbackend skips under -short).
package projectiontest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Stack is a fresh topic and database with the real adapters on top.
type Stack struct {
	T        *testing.T
	Pool     *pgxpool.Pool
	Codec    *eventstore.Codec
	Appender *kafka.Appender
	Log      *kafka.Log
	Cfg      kafka.Config
}

// New builds a stack on brokers (testbackend.Kafka) with a 4-partition
// topic of its own and a migrated database of its own.
func New(t *testing.T, brokers []string) *Stack {
	t.Helper()
	pool, codec := testbackend.Store(t, 16)
	s := &Stack{T: t, Pool: pool, Codec: codec}
	s.Cfg = kafka.Config{Brokers: brokers, Topic: testbackend.UniqueName(t, "events"), Partitions: 4}
	require.NoError(t, kafka.EnsureTopic(s.Cfg))
	s.Appender = kafka.NewAppender(s.Cfg, s.Codec)
	t.Cleanup(func() { s.Appender.Close() })
	var err error
	s.Log, err = kafka.NewLog(s.Cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Log.Close() })
	return s
}

// Append appends e, filling an id, schema version 1 and times when unset.
func (s *Stack) Append(t *testing.T, e eventstore.Event) eventstore.Position {
	t.Helper()
	if e.ID == uuid.Nil {
		e.ID = uuid.New()
	}
	if e.SchemaVersion == 0 {
		e.SchemaVersion = 1
	}
	if e.RecordedAt.IsZero() {
		e.RecordedAt, e.OccurredAt = time.Now().UTC(), time.Now().UTC()
	}
	p, err := s.Appender.Append(context.Background(), e)
	require.NoError(t, err)
	return p
}

// WaitCaughtUp waits until the projector's checkpoints reach the head of
// every partition.
func (s *Stack) WaitCaughtUp(t *testing.T, p engine.Projector) {
	t.Helper()
	ctx := context.Background()
	parts, err := s.Log.Partitions(ctx)
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		behind := 0
		for _, part := range parts {
			hw, err := s.Log.HighWater(ctx, part)
			require.NoError(t, err)
			var next int64
			err = s.Pool.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name=$1 AND generation=$2 AND partition=$3`, p.Name(), p.Generation(), part).Scan(&next)
			if !errors.Is(err, pgx.ErrNoRows) {
				require.NoError(t, err)
			}
			if next < hw {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		require.Falsef(t, time.Now().After(deadline), "projector %s did not catch up: %d partitions behind", engine.Key(p), behind)
		time.Sleep(20 * time.Millisecond)
	}
}

// Runtime builds a runtime with its own log reader, as production gives
// every projector its own (see kafka.Log.Subscribe).
func (s *Stack) Runtime(p engine.Projector, batch int) *engine.Runtime {
	l, err := kafka.NewLog(s.Cfg)
	require.NoError(s.T, err)
	s.T.Cleanup(func() { l.Close() })
	return &engine.Runtime{Pool: s.Pool, Log: l, Codec: s.Codec, Projector: p, Tuning: engine.Tuning{BatchSize: batch, BatchWait: 5 * time.Millisecond, Retry: 20 * time.Millisecond}}
}

// Register appends a user.registered event.
func (s *Stack) Register(t *testing.T, user uuid.UUID, tz string, at time.Time) eventstore.Position {
	t.Helper()
	body, err := json.Marshal(identity.Registered{Email: user.String() + "@example.com", Timezone: tz, RegisteredAt: at})
	require.NoError(t, err)
	return s.Append(t, eventstore.Event{Type: identity.EventRegistered, UserID: user, Payload: body})
}

// Push appends a samples.pushed event of a valid batch.
func (s *Stack) Push(t *testing.T, user uuid.UUID, b ingest.Batch) eventstore.Position {
	t.Helper()
	require.NoError(t, b.Validate(false, time.Time{}), "test batch invalid")
	body, err := json.Marshal(ingest.Pushed{Channel: "app", ReceivedAt: time.Now().UTC(), Batch: b})
	require.NoError(t, err)
	return s.Append(t, eventstore.Event{Type: ingest.EventPushed, UserID: user, Payload: body})
}

// Sample is one sample of a push batch.
func Sample(typ, start, end string, v float64, unit string) ingest.Sample {
	return ingest.Sample{Type: typ, Start: start, End: end, Value: v, Unit: unit}
}

// Eventually waits up to 20 s until ok, failing the test with what.
func Eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	require.Eventually(t, ok, 20*time.Second, 50*time.Millisecond, "timed out waiting until %s", what)
}

// ChangeSettings appends a user.settings_changed event stamped at (the
// moment a timezone change applies from).
func (s *Stack) ChangeSettings(t *testing.T, user uuid.UUID, p settings.Profile, version int64, at time.Time) eventstore.Position {
	t.Helper()
	body, err := json.Marshal(settings.ProfileChanged{Profile: p, Version: version})
	require.NoError(t, err)
	return s.Append(t, eventstore.Event{Type: settings.EventProfileChanged, UserID: user, Payload: body, OccurredAt: at, RecordedAt: at})
}
