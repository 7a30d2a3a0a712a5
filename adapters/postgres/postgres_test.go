package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

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
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	pool, err := postgres.Open(ctx, dsn, 30)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	for run := 1; run <= 2; run++ {
		if err := postgres.Migrate(ctx, dsn); err != nil {
			t.Fatalf("Migrate, run %d: %v", run, err)
		}
	}
	pool, err := postgres.Open(ctx, dsn, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var applied int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id = 1 AND is_applied`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Errorf("migration 1 recorded %d times, want once", applied)
	}
	for _, table := range []string{"data_keys", "accounts", "projection_checkpoints", "samples_g1", "daily_rollups_g1"} {
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("table %s missing after Migrate", table)
		}
	}
}

func TestKeyStore(t *testing.T) {
	pool := migrated(t)
	keys := postgres.NewKeyStore(pool)
	ctx := context.Background()

	t.Run("the first created key wins", func(t *testing.T) {
		user := uuid.New()
		first, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k1", Wrapped: []byte("first wrapped key")})
		if err != nil {
			t.Fatal(err)
		}
		// A second writer racing on the first event of this user.
		second, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k2", Wrapped: []byte("second wrapped key")})
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]eventstore.WrappedKey{"first CreateKey": first, "second CreateKey": second} {
			if got.UserID != user || got.KEKID != "k1" || string(got.Wrapped) != "first wrapped key" || got.Destroyed {
				t.Errorf("%s returned %+v, want the first key", name, got)
			}
		}
		loaded, err := keys.LoadKey(ctx, user)
		if err != nil || loaded.KEKID != "k1" || string(loaded.Wrapped) != "first wrapped key" {
			t.Errorf("LoadKey = %+v, %v; want the first key", loaded, err)
		}
	})

	t.Run("a user without a key", func(t *testing.T) {
		if _, err := keys.LoadKey(ctx, uuid.New()); !errors.Is(err, eventstore.ErrNoKey) {
			t.Errorf("LoadKey = %v, want ErrNoKey", err)
		}
	})

	t.Run("destroying a key erases the wrapped bytes, twice is fine", func(t *testing.T) {
		user := uuid.New()
		if _, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k1", Wrapped: []byte("wrapped")}); err != nil {
			t.Fatal(err)
		}
		if err := keys.DestroyKey(ctx, user); err != nil {
			t.Fatalf("DestroyKey: %v", err)
		}
		first := destroyedAt(t, pool, user)
		if err := keys.DestroyKey(ctx, user); err != nil {
			t.Fatalf("DestroyKey again: %v", err)
		}
		if again := destroyedAt(t, pool, user); !again.Equal(first) {
			t.Errorf("second DestroyKey moved destroyed_at from %v to %v", first, again)
		}
		w, err := keys.LoadKey(ctx, user)
		if err != nil {
			t.Fatalf("LoadKey: %v", err)
		}
		if !w.Destroyed || len(w.Wrapped) != 0 {
			t.Errorf("LoadKey = %+v, want Destroyed without wrapped bytes", w)
		}
		if !wrappedIsNull(t, pool, user) {
			t.Error("data_keys.wrapped still holds bytes after DestroyKey")
		}
	})

	t.Run("a destroyed key is never created again", func(t *testing.T) {
		user := uuid.New()
		// Erasure can come before the user's first event (it raced ahead).
		if err := keys.DestroyKey(ctx, user); err != nil {
			t.Fatalf("DestroyKey of a user without a key: %v", err)
		}
		w, err := keys.CreateKey(ctx, eventstore.WrappedKey{UserID: user, KEKID: "k1", Wrapped: []byte("new key")})
		if err != nil {
			t.Fatal(err)
		}
		if !w.Destroyed || len(w.Wrapped) != 0 {
			t.Errorf("CreateKey after DestroyKey = %+v, want the destroyed key", w)
		}
		if !wrappedIsNull(t, pool, user) {
			t.Error("CreateKey wrote bytes over a destroyed key")
		}
	})
}

func destroyedAt(t *testing.T, pool *pgxpool.Pool, user uuid.UUID) time.Time {
	t.Helper()
	var at *time.Time
	if err := pool.QueryRow(context.Background(), `SELECT destroyed_at FROM data_keys WHERE user_id = $1`, user).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if at == nil {
		t.Fatal("destroyed_at is NULL after DestroyKey")
	}
	return *at
}

func wrappedIsNull(t *testing.T, pool *pgxpool.Pool, user uuid.UUID) bool {
	t.Helper()
	var null bool
	if err := pool.QueryRow(context.Background(), `SELECT wrapped IS NULL FROM data_keys WHERE user_id = $1`, user).Scan(&null); err != nil {
		t.Fatal(err)
	}
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
		if err := accounts.Claim(ctx, first); err != nil {
			t.Fatalf("first Claim: %v", err)
		}
		if err := accounts.Claim(ctx, second); !errors.Is(err, domain.ErrConflict) {
			t.Errorf("second Claim = %v, want ErrConflict", err)
		}
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
			switch {
			case err == nil:
				won++
			case errors.Is(err, domain.ErrConflict):
				conflicts++
			default:
				t.Errorf("Claim = %v, want success or ErrConflict", err)
			}
		}
		if won != 1 || conflicts != n-1 {
			t.Errorf("%d claims won and %d conflicted, want 1 and %d", won, conflicts, n-1)
		}
	})

	t.Run("a pending account is invisible until complete", func(t *testing.T) {
		acc := account("barbara@example.com")
		if err := accounts.Claim(ctx, acc); err != nil {
			t.Fatal(err)
		}
		if _, err := accounts.ByEmailKey(ctx, acc.EmailKey); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("pending ByEmailKey = %v, want ErrNotFound", err)
		}
		if _, err := accounts.ByID(ctx, acc.UserID); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("pending ByID = %v, want ErrNotFound", err)
		}
		if err := accounts.Complete(ctx, acc.UserID); err != nil {
			t.Fatal(err)
		}
		byEmail, err := accounts.ByEmailKey(ctx, acc.EmailKey)
		if err != nil {
			t.Fatalf("ByEmailKey after Complete: %v", err)
		}
		byID, err := accounts.ByID(ctx, acc.UserID)
		if err != nil {
			t.Fatalf("ByID after Complete: %v", err)
		}
		for name, got := range map[string]postgres.Account{"ByEmailKey": byEmail, "ByID": byID} {
			if got.UserID != acc.UserID || !bytes.Equal(got.EmailKey, acc.EmailKey) || got.PasswordHash != acc.PasswordHash || got.Role != "user" || !got.Active {
				t.Errorf("%s = %+v, want the active account %+v with role user", name, got, acc)
			}
		}
	})

	t.Run("unknown accounts are not found", func(t *testing.T) {
		if _, err := accounts.ByEmailKey(ctx, []byte("hmac:nobody@example.com")); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("ByEmailKey = %v, want ErrNotFound", err)
		}
		if _, err := accounts.ByID(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("ByID = %v, want ErrNotFound", err)
		}
	})

	t.Run("release frees a pending claim", func(t *testing.T) {
		failed := account("edsger@example.com")
		if err := accounts.Claim(ctx, failed); err != nil {
			t.Fatal(err)
		}
		// The user.registered event could not be appended.
		if err := accounts.Release(ctx, failed.UserID); err != nil {
			t.Fatalf("Release: %v", err)
		}
		retry := account("edsger@example.com")
		if err := accounts.Claim(ctx, retry); err != nil {
			t.Errorf("Claim after Release = %v, want the address free again", err)
		}
	})

	t.Run("release keeps an active account", func(t *testing.T) {
		acc := account("margaret@example.com")
		if err := accounts.Claim(ctx, acc); err != nil {
			t.Fatal(err)
		}
		if err := accounts.Complete(ctx, acc.UserID); err != nil {
			t.Fatal(err)
		}
		if err := accounts.Release(ctx, acc.UserID); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if _, err := accounts.ByID(ctx, acc.UserID); err != nil {
			t.Errorf("ByID after Release of an active account = %v, want it kept", err)
		}
		if err := accounts.Claim(ctx, account("margaret@example.com")); !errors.Is(err, domain.ErrConflict) {
			t.Errorf("Claim of a released active address = %v, want ErrConflict", err)
		}
	})
}

func TestToolsRefuseASchemaThatIsBehind(t *testing.T) {
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	if err := postgres.CheckCurrent(ctx, dsn); err == nil {
		t.Fatal("an unmigrated database must be reported as behind")
	}
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if err := postgres.CheckCurrent(ctx, dsn); err != nil {
		t.Fatalf("after migrating: %v", err)
	}
}

// TestARehashNeverUndoesAPasswordChange: a login that verified the old
// password and rehashes it (Argon2 parameters changed) loses against a
// password change or reset that committed meanwhile.
func TestARehashNeverUndoesAPasswordChange(t *testing.T) {
	ctx := context.Background()
	accounts := postgres.NewAccounts(migrated(t))
	user := uuid.New()
	if err := accounts.Claim(ctx, postgres.Account{UserID: user, EmailKey: []byte("rehash-" + user.String()), PasswordHash: "old-params(old password)"}); err != nil {
		t.Fatal(err)
	}
	if err := accounts.Complete(ctx, user); err != nil {
		t.Fatal(err)
	}
	// The reset lands first ...
	if err := accounts.UpdatePasswordHash(ctx, user, "old-params(old password)", "new password"); err != nil {
		t.Fatal(err)
	}
	// ... then the login's rehash of the old password, which must not win.
	if err := accounts.UpdatePasswordHash(ctx, user, "old-params(old password)", "new-params(old password)"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale rehash = %v, want ErrConflict", err)
	}
	if acc, err := accounts.ByID(ctx, user); err != nil || acc.PasswordHash != "new password" {
		t.Fatalf("password hash = %q, %v; the reset must stand", acc.PasswordHash, err)
	}
}
