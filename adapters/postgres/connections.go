package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/provider"
)

// Connections stores provider authorizations and connections
// (provider_states, provider_connections): command-side state, backed up
// like accounts.
type Connections struct{ pool *pgxpool.Pool }

// NewConnections returns the store over pool.
func NewConnections(pool *pgxpool.Pool) *Connections { return &Connections{pool: pool} }

var _ connections.Store = (*Connections)(nil)

// SaveState stores a pending authorization.
func (c *Connections) SaveState(ctx context.Context, s connections.State) error {
	_, err := c.pool.Exec(ctx, `INSERT INTO provider_states (state_hash, user_id, provider, verifier, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		s.Hash, s.UserID, string(s.Provider), s.Verifier, s.ExpiresAt)
	return classify("save state", err)
}

// TakeState spends a state: one DELETE ... RETURNING, so of two callbacks
// with the same state at most one gets it; an expired one is spent too
// and refused.
func (c *Connections) TakeState(ctx context.Context, hash []byte, now time.Time) (connections.State, error) {
	s := connections.State{Hash: hash}
	var p string
	err := c.pool.QueryRow(ctx, `DELETE FROM provider_states WHERE state_hash = $1 RETURNING user_id, provider, verifier, expires_at`, hash).
		Scan(&s.UserID, &p, &s.Verifier, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, connections.ErrStateInvalid
	}
	if err != nil {
		return s, classify("take state", err)
	}
	if !now.Before(s.ExpiresAt) {
		return s, connections.ErrStateInvalid
	}
	s.Provider, s.ExpiresAt = provider.Name(p), s.ExpiresAt.UTC()
	return s, nil
}

const connectionColumns = `user_id, provider, provider_user_id, status, sealed_tokens, connected_at, last_sync_at, last_data_at,
	backfill_from, backfill_to, done_until, cursor, page, last_error, failures`

// Save inserts a connection or updates its status and progress: the
// sealed tokens are written only on insert (SaveTokens replaces them), and
// a revoked row is updated only by a new connection (another
// connected_at), so a worker's stale copy cannot revive it.
func (c *Connections) Save(ctx context.Context, x connections.Connection) error {
	_, err := c.pool.Exec(ctx, `INSERT INTO provider_connections (`+connectionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (user_id, provider) DO UPDATE SET provider_user_id = EXCLUDED.provider_user_id, status = EXCLUDED.status,
			connected_at = EXCLUDED.connected_at, last_sync_at = EXCLUDED.last_sync_at,
			last_data_at = EXCLUDED.last_data_at, backfill_from = EXCLUDED.backfill_from, backfill_to = EXCLUDED.backfill_to,
			done_until = EXCLUDED.done_until, cursor = EXCLUDED.cursor, page = EXCLUDED.page, last_error = EXCLUDED.last_error,
			failures = EXCLUDED.failures
		WHERE provider_connections.status <> 'revoked' OR provider_connections.connected_at <> EXCLUDED.connected_at`,
		x.UserID, string(x.Provider), x.ProviderUserID, string(x.Status), x.SealedTokens, x.ConnectedAt, nullTime(x.LastSyncAt), nullTime(x.LastDataAt),
		x.BackfillFrom, x.BackfillTo, x.DoneUntil, x.Cursor, x.Page, x.LastError, x.Failures)
	return classify("save connection", err)
}

// SaveTokens replaces the sealed tokens of a connection (nil destroys
// them).
func (c *Connections) SaveTokens(ctx context.Context, user uuid.UUID, p provider.Name, sealed []byte) error {
	_, err := c.pool.Exec(ctx, `UPDATE provider_connections SET sealed_tokens = $3 WHERE user_id = $1 AND provider = $2`, user, string(p), sealed)
	return classify("save tokens", err)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func scanConnection(row pgx.Row) (connections.Connection, error) {
	var (
		x            connections.Connection
		p, st        string
		sync, latest *time.Time
	)
	err := row.Scan(&x.UserID, &p, &x.ProviderUserID, &st, &x.SealedTokens, &x.ConnectedAt, &sync, &latest,
		&x.BackfillFrom, &x.BackfillTo, &x.DoneUntil, &x.Cursor, &x.Page, &x.LastError, &x.Failures)
	if errors.Is(err, pgx.ErrNoRows) {
		return x, domain.ErrNotFound
	}
	if err != nil {
		return x, err
	}
	x.Provider, x.Status = provider.Name(p), provider.Status(st)
	if sync != nil {
		x.LastSyncAt = sync.UTC()
	}
	if latest != nil {
		x.LastDataAt = latest.UTC()
	}
	x.ConnectedAt, x.BackfillFrom, x.BackfillTo, x.DoneUntil = x.ConnectedAt.UTC(), x.BackfillFrom.UTC(), x.BackfillTo.UTC(), x.DoneUntil.UTC()
	return x, nil
}

// Get returns the user's connection to p.
func (c *Connections) Get(ctx context.Context, user uuid.UUID, p provider.Name) (connections.Connection, error) {
	x, err := scanConnection(c.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM provider_connections WHERE user_id = $1 AND provider = $2`, user, string(p)))
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return x, classify("connection", err)
	}
	return x, err
}

// ByProviderUser finds the live connection of a provider's user id (a
// revoked one only when there is no live one).
func (c *Connections) ByProviderUser(ctx context.Context, p provider.Name, providerUserID string) (connections.Connection, error) {
	x, err := scanConnection(c.pool.QueryRow(ctx, `SELECT `+connectionColumns+` FROM provider_connections
		WHERE provider = $1 AND provider_user_id = $2 ORDER BY (status = 'revoked'), connected_at DESC LIMIT 1`, string(p), providerUserID))
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return x, classify("connection", err)
	}
	return x, err
}

// List returns the user's connections by provider name.
func (c *Connections) List(ctx context.Context, user uuid.UUID) ([]connections.Connection, error) {
	return c.query(ctx, `SELECT `+connectionColumns+` FROM provider_connections WHERE user_id = $1 ORDER BY provider`, user)
}

// Backfilling lists the connections whose backfill has not reached its end.
func (c *Connections) Backfilling(ctx context.Context) ([]connections.Connection, error) {
	return c.query(ctx, `SELECT `+connectionColumns+` FROM provider_connections
		WHERE status <> 'revoked' AND sealed_tokens IS NOT NULL AND done_until < backfill_to ORDER BY connected_at LIMIT 1000`)
}

func (c *Connections) query(ctx context.Context, sql string, args ...any) ([]connections.Connection, error) {
	rows, err := c.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, classify("connections", err)
	}
	defer rows.Close()
	var out []connections.Connection
	for rows.Next() {
		x, err := scanConnection(rows)
		if err != nil {
			return nil, classify("connections", err)
		}
		out = append(out, x)
	}
	return out, classify("connections", rows.Err())
}

// classify names the step and classifies err (an unreachable database is
// domain.ErrUnavailable).
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, pgerr.Classify(err))
}

// ProcessOffsets stores how far process managers consumed the event log
// (process_offsets), for adapters/logbus.
type ProcessOffsets struct {
	pool *pgxpool.Pool

	mu    sync.Mutex
	lock  *pgx.Conn       // the connection holding this process's claims
	alive context.Context // ends when lock failed
}

// NewProcessOffsets returns the store over pool.
func NewProcessOffsets(pool *pgxpool.Pool) *ProcessOffsets { return &ProcessOffsets{pool: pool} }

// Load returns the next offset of consumer in partition (0 when none).
func (o *ProcessOffsets) Load(ctx context.Context, consumer string, partition int32) (int64, error) {
	var next int64
	err := o.pool.QueryRow(ctx, `SELECT next_offset FROM process_offsets WHERE consumer = $1 AND partition = $2`, consumer, partition).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return next, classify("process offset", err)
}

// Store records next; an offset never moves back.
func (o *ProcessOffsets) Store(ctx context.Context, consumer string, partition int32, next int64) error {
	_, err := o.pool.Exec(ctx, `INSERT INTO process_offsets (consumer, partition, next_offset) VALUES ($1, $2, $3)
		ON CONFLICT (consumer, partition) DO UPDATE SET next_offset = GREATEST(process_offsets.next_offset, EXCLUDED.next_offset)`, consumer, partition, next)
	return classify("store process offset", err)
}

// Claim takes partition for consumer with a session advisory lock. All
// claims of this store share one connection of their own (outside the
// pool, so claims never starve requests), probed every 5 s: when it fails
// its locks are gone, every held context ends so the callers stop
// reading, and the next Claim connects again.
func (o *ProcessOffsets) Claim(ctx context.Context, consumer string, partition int32) (context.Context, func(), bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lock == nil {
		conn, err := pgx.ConnectConfig(ctx, o.pool.Config().ConnConfig.Copy())
		if err != nil {
			return nil, nil, false, classify("claim partition", err)
		}
		alive, lost := context.WithCancel(context.Background())
		o.lock, o.alive = conn, alive
		go o.probe(conn, alive, lost)
	}
	conn, alive := o.lock, o.alive
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1), $2)`, "process:"+consumer, partition).Scan(&got); err != nil {
		return nil, nil, false, classify("claim partition", err)
	}
	if !got {
		return nil, nil, false, nil
	}
	held, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(alive, cancel)
	release := func() {
		stop()
		cancel()
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.lock == conn && alive.Err() == nil {
			uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ucancel()
			_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext($1), $2)`, "process:"+consumer, partition)
		}
	}
	return held, release, true, nil
}

// probe pings the lock connection every 5 s; on failure it ends alive and
// forgets the connection (its session, and so its locks, are gone).
func (o *ProcessOffsets) probe(conn *pgx.Conn, alive context.Context, lost context.CancelFunc) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for range t.C {
		o.mu.Lock()
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			lost()
			_ = conn.Close(context.Background())
			if o.lock == conn {
				o.lock, o.alive = nil, nil
			}
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()
	}
}

// Close ends the lock connection (and so every claim).
func (o *ProcessOffsets) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lock == nil {
		return nil
	}
	err := o.lock.Close(context.Background())
	o.lock, o.alive = nil, nil
	return err
}
