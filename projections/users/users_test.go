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
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
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

	r := &users.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}
	for user, want := range map[uuid.UUID]string{sameBatch: "Asia/Tokyo", later: "America/Chicago"} {
		u, err := r.Me(ctx, user)
		require.NoError(t, err)
		assert.Equal(t, want, u.Timezone)
	}
}

// runUsers projects the whole log into generation gen and waits for it.
func runUsers(t *testing.T, s *projectiontest.Stack, gen int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = s.Runtime(users.Projector{Gen: gen}, 500).Run(ctx) }()
	s.WaitCaughtUp(t, users.Projector{Gen: gen})
}

// storedAddress is the users row's address as it lies in the table.
func storedAddress(t *testing.T, s *projectiontest.Stack, table string, user uuid.UUID) []byte {
	t.Helper()
	var sealed []byte
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT email_sealed FROM `+table+` WHERE user_id = $1`, user).Scan(&sealed))
	return sealed
}

// The profile keeps the address sealed with the user's data key: the row
// does not hold it, GET /v1/me's query still answers it, and once the key
// is destroyed (erasure's first step, before any row is purged) the stored
// value opens for nobody and the profile is gone, while another user's
// stays.
func TestTheProfileKeepsTheAddressSealedUntilTheKeyIsDestroyed(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada, bob := uuid.New(), uuid.New()
	address := ada.String() + "@example.com" // what projectiontest registers
	s.Register(t, ada, "Europe/London", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Register(t, bob, "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	runUsers(t, s, 1)

	sealed := storedAddress(t, s, "users_g1", ada)
	assert.NotContains(t, string(sealed), address, "the users table holds the address in plain text")
	assert.NotContains(t, string(sealed), ada.String(), "the users table holds the address in plain text")
	r := &users.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}
	me, err := r.Me(ctx, ada)
	require.NoError(t, err)
	assert.Equal(t, address, me.Email, "GET /v1/me's address")
	assert.Equal(t, "Europe/London", me.Timezone)

	require.NoError(t, s.Codec.Keys().Destroy(ctx, ada))
	_, err = s.Codec.Keys().OpenField(ctx, ada, users.EmailField, sealed)
	assert.ErrorIs(t, err, eventstore.ErrErased, "the erased user's stored address still opens")
	_, err = r.Me(ctx, ada)
	assert.ErrorIs(t, err, domain.ErrNotFound, "the erased user's profile before the purge")
	me, err = r.Me(ctx, bob)
	require.NoError(t, err, "another user's profile")
	assert.Equal(t, bob.String()+"@example.com", me.Email, "another user's address")
}

// A rebuild is a new generation projected from the log: it stores the
// address in the same sealed form, byte for byte (the nonce derives from
// the value), never in plain text, and it opens to the same address.
func TestARebuiltProfileHoldsTheAddressInTheSameSealedForm(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada := uuid.New()
	s.Register(t, ada, "Europe/London", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.ChangeSettings(t, ada, settings.Profile{Timezone: "Asia/Tokyo", Units: metric.Metric}, 1, time.Now().UTC())
	runUsers(t, s, 1)
	_, err := s.Pool.Exec(ctx, `CREATE TABLE users_g2 (LIKE users_g1 INCLUDING ALL)`) // as a rebuild makes it
	require.NoError(t, err)
	runUsers(t, s, 2)

	live, rebuilt := storedAddress(t, s, "users_g1", ada), storedAddress(t, s, "users_g2", ada)
	assert.Equal(t, live, rebuilt, "the rebuilt generation's sealed address differs from the live one's")
	for gen, sealed := range map[string][]byte{"live": live, "rebuilt": rebuilt} {
		assert.NotContains(t, string(sealed), ada.String(), "the %s generation holds the address in plain text", gen)
		opened, err := s.Codec.Keys().OpenField(ctx, ada, users.EmailField, sealed)
		require.NoError(t, err, "the %s generation's address", gen)
		assert.Equal(t, ada.String()+"@example.com", string(opened), "the %s generation's address", gen)
	}
}
