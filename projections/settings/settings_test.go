package settings_test

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
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	settingsrm "github.com/biosync/biosync/projections/settings"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

func changeNotifications(t *testing.T, s *projectiontest.Stack, user uuid.UUID, n settings.Notifications, version int64) eventstore.Position {
	body, err := json.Marshal(settings.NotificationsChanged{Notifications: n, Version: version})
	require.NoError(t, err)
	return s.Append(t, eventstore.Event{Type: settings.EventNotificationsChanged, UserID: user, Payload: body})
}

func runSettings(t *testing.T, s *projectiontest.Stack) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rt := s.Runtime(settingsrm.Projector{}, 500)
	go func() { _ = rt.Run(ctx) }()
	s.WaitCaughtUp(t, settingsrm.Projector{})
}

func TestSettingsStartAsDefaultsAndEndAtTheLastEventInLogOrder(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada, bob := uuid.New(), uuid.New()
	s.Register(t, ada, "Europe/London", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Register(t, bob, "Asia/Tokyo", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	first := settings.Profile{DisplayName: "Ada", Timezone: "Europe/Paris", Units: metric.Imperial}
	second := settings.Profile{DisplayName: "Ada L.", Timezone: "Europe/London", Units: metric.Metric}
	s.ChangeSettings(t, ada, first, 1, time.Now().UTC())
	// An append whose outcome was unknown can leave two events with one
	// version; the later one in the log is what readers see.
	s.ChangeSettings(t, ada, second, 1, time.Now().UTC())
	quiet := settings.Notifications{DailySummary: settings.DailySummary{Enabled: true, Time: "07:15"}, Channels: settings.Channels{Email: true}}
	changeNotifications(t, s, ada, quiet, 1)
	runSettings(t, s)
	r := &settingsrm.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}

	p, err := r.Profile(ctx, ada)
	require.NoError(t, err)
	assert.Equal(t, second, p.Profile, "ada's settings are the later document")
	assert.EqualValues(t, 1, p.Version)
	n, err := r.Notifications(ctx, ada)
	require.NoError(t, err)
	assert.Equal(t, quiet.DailySummary, n.DailySummary)
	assert.Equal(t, quiet.Channels, n.Channels)
	assert.Nil(t, n.QuietHours)
	assert.EqualValues(t, 1, n.Version)

	p, err = r.Profile(ctx, bob)
	require.NoError(t, err)
	assert.Equal(t, settings.DefaultProfile("Asia/Tokyo"), p.Profile, "the defaults with the registration's zone")
	assert.EqualValues(t, 0, p.Version)
	n, err = r.Notifications(ctx, bob)
	require.NoError(t, err)
	d := settings.DefaultNotifications()
	assert.Equal(t, d.DailySummary, n.DailySummary)
	require.NotNil(t, n.QuietHours)
	assert.Equal(t, *d.QuietHours, *n.QuietHours)
	assert.Equal(t, d.Channels, n.Channels)
	assert.EqualValues(t, 0, n.Version)

	u, err := r.Units(ctx, uuid.New(), true)
	require.NoError(t, err)
	assert.Equal(t, metric.Metric, u, "an unknown user reads metric")
	// The command side learns the highest version in the log.
	var v int64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT version FROM document_versions WHERE user_id = $1 AND document = 'settings'`, ada).Scan(&v))
	assert.EqualValues(t, 1, v, "command-side version")
}

// The settings document keeps the display name sealed with the user's data
// key: the row does not hold it, GET /v1/me/settings's query still answers
// it (and the defaults' empty name), and once the key is destroyed the
// stored value opens for nobody and the document is gone, while the unit
// system metric reads need stays readable until the purge.
func TestTheDisplayNameIsSealedUntilTheKeyIsDestroyed(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada, bob := uuid.New(), uuid.New()
	s.Register(t, ada, "Europe/London", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Register(t, bob, "Asia/Tokyo", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	named := settings.Profile{DisplayName: "Augusta Ada King", Timezone: "Europe/London", Units: metric.Imperial}
	s.ChangeSettings(t, ada, named, 1, time.Now().UTC())
	runSettings(t, s)

	var sealed []byte
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT display_name_sealed FROM settings_g1 WHERE user_id = $1`, ada).Scan(&sealed))
	assert.NotContains(t, string(sealed), "Augusta", "the settings table holds the display name in plain text")
	r := &settingsrm.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}
	p, err := r.Profile(ctx, ada)
	require.NoError(t, err)
	assert.Equal(t, named, p.Profile, "GET /v1/me/settings's document")
	p, err = r.Profile(ctx, bob)
	require.NoError(t, err)
	assert.Empty(t, p.DisplayName, "the defaults have no display name")

	require.NoError(t, s.Codec.Keys().Destroy(ctx, ada))
	_, err = s.Codec.Keys().OpenField(ctx, ada, settingsrm.DisplayNameField, sealed)
	assert.ErrorIs(t, err, eventstore.ErrErased, "the erased user's stored display name still opens")
	_, err = r.Profile(ctx, ada)
	assert.ErrorIs(t, err, domain.ErrNotFound, "the erased user's settings before the purge")
	u, err := r.Units(ctx, ada, true)
	require.NoError(t, err, "units need no key")
	assert.Equal(t, metric.Imperial, u)
	p, err = r.Profile(ctx, bob)
	require.NoError(t, err, "another user's settings")
	assert.Equal(t, settings.DefaultProfile("Asia/Tokyo"), p.Profile, "another user's settings")
}
