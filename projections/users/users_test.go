package users_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/projections/users"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

func TestTheProfileTimezoneFollowsSettingsChanges(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	sameBatch, later := uuid.New(), uuid.New()
	s.Register(t, sameBatch, "Europe/Berlin", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.ChangeSettings(t, sameBatch, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Metric}, 1, time.Now().UTC())
	s.Register(t, later, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx2, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	rt := s.Runtime(users.Projector{}, 500)
	go func() { _ = rt.Run(ctx2) }()
	s.WaitCaughtUp(t, users.Projector{})
	s.ChangeSettings(t, later, settings.Profile{Timezone: "America/Chicago", Units: metric.Metric}, 1, time.Now().UTC())
	s.WaitCaughtUp(t, users.Projector{})

	r := &users.Reader{Pool: s.Pool}
	for user, want := range map[uuid.UUID]string{sameBatch: "Asia/Tokyo", later: "America/Chicago"} {
		u, err := r.Me(ctx, user)
		require.NoError(t, err)
		assert.Equal(t, want, u.Timezone)
	}
}
