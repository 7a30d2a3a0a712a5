package testbackend

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/eventstore"
)

// MasterKey is the master key (BIOSYNC_MASTER_KEY format) of test stacks.
const MasterKey = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// Store gives a test a fresh, migrated database (pool closed at cleanup)
// and an event codec whose per-user keys live in it: the pieces every
// event-store, projector and command test starts from.
func Store(t testing.TB, maxConns int32) (*pgxpool.Pool, *eventstore.Codec) {
	t.Helper()
	ctx := context.Background()
	dsn := Postgres(t)
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, dsn, maxConns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	mk, err := eventstore.ParseMasterKeys(MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := eventstore.NewKeyring(postgres.NewKeyStore(pool), mk)
	if err != nil {
		t.Fatal(err)
	}
	return pool, eventstore.NewCodec(kr)
}
