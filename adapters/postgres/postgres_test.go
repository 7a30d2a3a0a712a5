package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

// migrated returns a pool on a fresh, migrated database of this test.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	require.NoError(t, postgres.Migrate(ctx, dsn), "Migrate")
	pool, err := postgres.Open(ctx, dsn, 30)
	require.NoError(t, err, "Open")
	t.Cleanup(pool.Close)
	return pool
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	for run := 1; run <= 2; run++ {
		require.NoError(t, postgres.Migrate(ctx, dsn), "Migrate, run %d", run)
	}
	pool, err := postgres.Open(ctx, dsn, 0)
	require.NoError(t, err)
	defer pool.Close()
	var applied int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id = 1 AND is_applied`).Scan(&applied))
	assert.EqualValues(t, 1, applied, "migration 1 recorded %d times, want once", applied)
	for _, table := range []string{"data_keys", "accounts", "projection_checkpoints", "samples_g1", "daily_rollups_g1"} {
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists))
		assert.True(t, exists, "table %s missing after Migrate", table)
	}
}

func TestKeyStore(t *testing.T) {
	pool := migrated(t)
	keys := postgres.NewKeyStore(pool)
	ctx := context.Background()

	t.Run("the first created key wins", func(t *testing.T) {
		user := uuid.New()
		first, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k1", Wrapped: []byte("first wrapped key")})
		require.NoError(t, err)
		// A second writer racing on the first event of this user.
		second, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k2", Wrapped: []byte("second wrapped key")})
		require.NoError(t, err)
		want := eventstore.WrappedKey{UserID: user, KEKID: "k1", Wrapped: []byte("first wrapped key")}
		assert.Equal(t, want, first, "first CreateKey returns the first key")
		assert.Equal(t, want, second, "second CreateKey returns the first key")
		loaded, err := keys.LoadKey(ctx, user)
		require.NoError(t, err, "LoadKey")
		assert.Equal(t, "k1", loaded.KEKID, "LoadKey returns the first key")
		assert.Equal(t, "first wrapped key", string(loaded.Wrapped), "LoadKey returns the first key")
	})

	t.Run("a user without a key", func(t *testing.T) {
		_, err := keys.LoadKey(ctx, uuid.New())
		assert.ErrorIs(t, err, eventstore.ErrNoKey, "LoadKey = %v, want ErrNoKey", err)
	})

	t.Run("destroying a key erases the wrapped bytes, twice is fine", func(t *testing.T) {
		user := uuid.New()
		_, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k1", Wrapped: []byte("wrapped")})
		require.NoError(t, err)
		require.NoError(t, keys.DestroyKey(ctx, user), "DestroyKey")
		first := destroyedAt(t, pool, user)
		require.NoError(t, keys.DestroyKey(ctx, user), "DestroyKey again")
		again := destroyedAt(t, pool, user)
		assert.True(t, again.Equal(first), "second DestroyKey moved destroyed_at from %v to %v", first, again)
		w, err := keys.LoadKey(ctx, user)
		require.NoError(t, err, "LoadKey")
		assert.True(t, w.Destroyed, "LoadKey = %+v, want Destroyed", w)
		assert.Empty(t, w.Wrapped, "LoadKey of a destroyed key returns wrapped bytes")
		assert.True(t, wrappedIsNull(t, pool, user), "data_keys.wrapped still holds bytes after DestroyKey")
	})

	t.Run("a destroyed key is never created again", func(t *testing.T) {
		user := uuid.New()
		// Erasure can come before the user's first event (it raced ahead).
		require.NoError(t, keys.DestroyKey(ctx, user), "DestroyKey of a user without a key")
		w, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k1", Wrapped: []byte("new key")})
		require.NoError(t, err)
		assert.True(t, w.Destroyed, "CreateKey after DestroyKey = %+v, want the destroyed key", w)
		assert.Empty(t, w.Wrapped, "CreateKey after DestroyKey returns wrapped bytes")
		assert.True(t, wrappedIsNull(t, pool, user), "CreateKey wrote bytes over a destroyed key")
	})
}

func destroyedAt(t *testing.T, pool *pgxpool.Pool, user uuid.UUID) time.Time {
	t.Helper()
	var at *time.Time
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT destroyed_at FROM data_keys WHERE user_id = $1`, user).Scan(&at))
	require.NotNil(t, at, "destroyed_at is NULL after DestroyKey")
	return *at
}

func wrappedIsNull(t *testing.T, pool *pgxpool.Pool, user uuid.UUID) bool {
	t.Helper()
	var null bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT wrapped IS NULL FROM data_keys WHERE user_id = $1`, user).Scan(&null))
	return null
}

// account is a registration in progress: a fresh user and email key.
func account(email string) postgres.Account {
	return postgres.Account{UserID: uuid.New(), EmailKey: []byte("hmac:" + email), PasswordHash: "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"}
}

func TestAccounts(t *testing.T) {
	pool := migrated(t)
	accounts := postgres.NewAccounts(pool)
	ctx := context.Background()

	t.Run("an email address is claimed once", func(t *testing.T) {
		first, second := account("ada@example.com"), account("ada@example.com")
		require.NoError(t, accounts.Claim(ctx, first), "first Claim")
		err := accounts.Claim(ctx, second)
		assert.ErrorIs(t, err, domain.ErrConflict, "second Claim = %v, want ErrConflict", err)
	})

	t.Run("twenty registrations race for one address", func(t *testing.T) {
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = accounts.Claim(ctx, account("grace@example.com"))
			})
		}
		close(start)
		wg.Wait()
		won, conflicts := 0, 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			if assert.ErrorIs(t, err, domain.ErrConflict, "Claim: want success or ErrConflict") {
				conflicts++
			}
		}
		assert.Equal(t, 1, won, "claims won")
		assert.Equal(t, n-1, conflicts, "claims conflicted")
	})

	t.Run("a pending account is invisible until complete", func(t *testing.T) {
		acc := account("barbara@example.com")
		require.NoError(t, accounts.Claim(ctx, acc))
		_, err := accounts.ByEmailKey(ctx, acc.EmailKey)
		assert.ErrorIs(t, err, domain.ErrNotFound, "pending ByEmailKey = %v, want ErrNotFound", err)
		_, err = accounts.ByID(ctx, acc.UserID)
		assert.ErrorIs(t, err, domain.ErrNotFound, "pending ByID = %v, want ErrNotFound", err)
		registration := eventstore.Token{{Partition: 3, Offset: 41}}
		require.NoError(t, accounts.Complete(ctx, acc.UserID, registration))
		byEmail, err := accounts.ByEmailKey(ctx, acc.EmailKey)
		require.NoError(t, err, "ByEmailKey after Complete")
		byID, err := accounts.ByID(ctx, acc.UserID)
		require.NoError(t, err, "ByID after Complete")
		want := acc
		want.Role, want.Active, want.Registration = "user", true, registration
		assert.Equal(t, want, byEmail, "ByEmailKey: the active account with role user, and where its registration landed")
		assert.Equal(t, want, byID, "ByID: the active account with role user, and where its registration landed")
	})

	t.Run("unknown accounts are not found", func(t *testing.T) {
		_, err := accounts.ByEmailKey(ctx, []byte("hmac:nobody@example.com"))
		assert.ErrorIs(t, err, domain.ErrNotFound, "ByEmailKey = %v, want ErrNotFound", err)
		_, err = accounts.ByID(ctx, uuid.New())
		assert.ErrorIs(t, err, domain.ErrNotFound, "ByID = %v, want ErrNotFound", err)
	})

	t.Run("release frees a pending claim", func(t *testing.T) {
		failed := account("edsger@example.com")
		require.NoError(t, accounts.Claim(ctx, failed))
		// The user.registered event could not be appended.
		require.NoError(t, accounts.Release(ctx, failed.UserID), "Release")
		retry := account("edsger@example.com")
		assert.NoError(t, accounts.Claim(ctx, retry), "Claim after Release: want the address free again")
	})

	t.Run("release keeps an active account", func(t *testing.T) {
		acc := account("margaret@example.com")
		require.NoError(t, accounts.Claim(ctx, acc))
		require.NoError(t, accounts.Complete(ctx, acc.UserID, nil))
		require.NoError(t, accounts.Release(ctx, acc.UserID), "Release")
		_, err := accounts.ByID(ctx, acc.UserID)
		assert.NoError(t, err, "ByID after Release of an active account = %v, want it kept", err)
		err = accounts.Claim(ctx, account("margaret@example.com"))
		assert.ErrorIs(t, err, domain.ErrConflict, "Claim of a released active address = %v, want ErrConflict", err)
	})
}

func TestToolsRefuseASchemaThatIsBehind(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	require.Error(t, postgres.CheckCurrent(ctx, dsn), "an unmigrated database must be reported as behind")
	require.NoError(t, postgres.Migrate(ctx, dsn))
	require.NoError(t, postgres.CheckCurrent(ctx, dsn), "after migrating")
}

// TestARehashNeverUndoesAPasswordChange: a login that verified the old
// password and rehashes it (Argon2 parameters changed) loses against a
// password change or reset that committed meanwhile.
func TestARehashNeverUndoesAPasswordChange(t *testing.T) {
	ctx := context.Background()
	accounts := postgres.NewAccounts(migrated(t))
	user := uuid.New()
	require.NoError(t, accounts.Claim(ctx, postgres.Account{UserID: user, EmailKey: []byte("rehash-" + user.String()), PasswordHash: "old-params(old password)"}))
	require.NoError(t, accounts.Complete(ctx, user, nil))
	// The reset lands first ...
	require.NoError(t, accounts.UpdatePasswordHash(ctx, user, "old-params(old password)", "new password"))
	// ... then the login's rehash of the old password, which must not win.
	err := accounts.UpdatePasswordHash(ctx, user, "old-params(old password)", "new-params(old password)")
	require.ErrorIs(t, err, domain.ErrConflict, "stale rehash = %v, want ErrConflict", err)
	acc, err := accounts.ByID(ctx, user)
	require.NoError(t, err, "password hash = %q, %v; the reset must stand", acc.PasswordHash, err)
	require.Equal(t, "new password", acc.PasswordHash, "password hash = %q, %v; the reset must stand", acc.PasswordHash, err)
}
