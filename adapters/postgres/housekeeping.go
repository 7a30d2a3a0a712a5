package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
)

// PruneRetention is how long ended sessions and spent or expired mailed
// tokens are kept before Prune deletes them: long enough to investigate a
// reported incident with the session list and the audit log side by side,
// far longer than the revocation view needs (one access-token lifetime).
const PruneRetention = 7 * 24 * time.Hour

// Prune deletes sessions that ended (revoked or past their absolute
// expiry) and mailed tokens that were spent or expired more than
// retention ago; their refresh tokens go with them (ON DELETE CASCADE).
// It returns the rows deleted. Without it these tables only grow.
func Prune(ctx context.Context, pool *pgxpool.Pool, retention time.Duration) (int64, error) {
	var n int64
	for _, q := range []string{
		`DELETE FROM refresh_families WHERE COALESCE(revoked_at, expires_at) < now() - $1::interval`,
		`DELETE FROM email_tokens WHERE COALESCE(used_at, expires_at) < now() - $1::interval`,
	} {
		tag, err := pool.Exec(ctx, q, retention.String())
		if err != nil {
			return n, fmt.Errorf("prune: %w", pgerr.Classify(err))
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// Housekeep runs Prune with PruneRetention now and then every interval
// until ctx ends (every serve runs it; the deletes are idempotent, so
// instances need not take turns). A failed round is logged and retried at
// the next tick.
func Housekeep(ctx context.Context, pool *pgxpool.Pool, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := Prune(ctx, pool, PruneRetention); err != nil && ctx.Err() == nil {
			log.Warn("housekeeping failed; retrying later", "err", err)
		} else if n > 0 {
			log.Info("pruned ended sessions and spent mailed tokens", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
