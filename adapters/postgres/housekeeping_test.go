package postgres_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/postgres"
)

func TestPruneDeletesOnlySessionsAndTokensThatEndedLongAgo(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	user := uuid.New()
	old, recent, live := uuid.New(), uuid.New(), uuid.New()
	for _, f := range []struct {
		id      uuid.UUID
		revoked string
		expires string
	}{
		{old, "now() - interval '8 days'", "now() + interval '20 days'"},
		{recent, "now() - interval '1 hour'", "now() + interval '20 days'"},
		{live, "NULL", "now() + interval '20 days'"},
	} {
		reason := "'logout'"
		if f.revoked == "NULL" {
			reason = "NULL"
		}
		_, err := pool.Exec(ctx, `INSERT INTO refresh_families (id, user_id, expires_at, revoked_at, revoke_reason) VALUES ($1, $2, `+f.expires+`, `+f.revoked+`, `+reason+`)`, f.id, user)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id) VALUES ($1, $2)`, f.id[:], f.id)
		require.NoError(t, err)
	}
	_, err := pool.Exec(ctx, `INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at) VALUES ('\x01', $1, 'verify_email', now() - interval '9 days'), ('\x02', $1, 'verify_email', now() + interval '1 day')`, user)
	require.NoError(t, err)
	n, err := postgres.Prune(ctx, pool, postgres.PruneRetention)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "pruned %d rows, want the old session and the old mailed token", n)
	var families, tokens, mailed int
	_ = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM refresh_families), (SELECT count(*) FROM refresh_tokens), (SELECT count(*) FROM email_tokens)`).Scan(&families, &tokens, &mailed)
	assert.Equal(t, 2, families, "sessions left")
	assert.Equal(t, 2, tokens, "refresh tokens left")
	assert.Equal(t, 1, mailed, "mailed tokens left")
}

// Housekeep prunes at once and then on every tick, logging what it
// deleted, until its context ends.
func TestHousekeepPrunesAtOnceAndOnEveryTickUntilCancelled(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	user := uuid.New()
	insertOld := func(hash byte) {
		t.Helper()
		_, err := pool.Exec(ctx, `INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, 'verify_email', now() - interval '9 days')`, []byte{hash}, user)
		require.NoError(t, err)
	}
	left := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM email_tokens WHERE user_id = $1`, user).Scan(&n))
		return n
	}
	insertOld(0x11)
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil)) // read only after Housekeep returned
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); postgres.Housekeep(hctx, pool, 50*time.Millisecond, log) }()

	require.Eventually(t, func() bool { return left() == 0 }, 10*time.Second, 10*time.Millisecond, "the first round runs at once")
	insertOld(0x12)
	require.Eventually(t, func() bool { return left() == 0 }, 10*time.Second, 10*time.Millisecond, "later rounds run on the ticker")
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Housekeep did not return after its context ended")
	}
	assert.Contains(t, logged.String(), "pruned ended sessions and spent mailed tokens")
}
