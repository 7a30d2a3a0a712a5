package postgres_test

import (
	"context"
	"testing"

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
