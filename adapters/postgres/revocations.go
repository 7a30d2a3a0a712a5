package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/domain"
)

// ListenerName is the application_name of the connection a Revocations
// view listens on.
const ListenerName = "biosync-revocations"

// Revocations is an instance's in-memory view of the revoked sessions
// whose access tokens could still be unexpired, so checking a token costs a
// map lookup instead of a database round trip.
//
// PostgreSQL is the source of truth. The view listens on RevocationChannel
// over its own connection; after every (re)connect it LISTENs first and then
// reloads every recently revoked session, so nothing committed in between
// is missed. While the connection is down (or before the first load) the
// view is not live and Revoked asks PostgreSQL for every token: it fails
// closed (domain.ErrUnavailable, 503) rather than trust a stale view.
type Revocations struct {
	pool   *pgxpool.Pool
	window time.Duration
	log    *slog.Logger

	mu      sync.RWMutex
	revoked map[uuid.UUID]revocation
	heard   chan struct{} // closed and replaced whenever the feed delivers
	live    atomic.Bool

	// KeepAlive is how often an idle listening connection is checked with
	// a query, so a connection that died silently (a network partition)
	// stops the view being live within about this long.
	KeepAlive time.Duration
	// QueryTimeout bounds the per-request lookup while the view is not live.
	QueryTimeout time.Duration
	// BroadcastWait bounds how long Committed waits for the instance's own
	// notification to come back.
	BroadcastWait time.Duration
}

// revocation is one revoked session in the view.
type revocation struct {
	at time.Time
	// heard: the feed delivered it (or the reload loaded it), so
	// PostgreSQL has also sent it to every other listening instance.
	heard bool
}

// NewRevocations builds a view. window is how long a revoked session must
// be remembered: the access-token lifetime plus the verifier's clock skew
// allowance, after which every token of the session has expired anyway.
func NewRevocations(pool *pgxpool.Pool, window time.Duration, log *slog.Logger) *Revocations {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Revocations{pool: pool, window: window, log: log, revoked: map[uuid.UUID]revocation{}, heard: make(chan struct{}),
		KeepAlive: 5 * time.Second, QueryTimeout: time.Second, BroadcastWait: time.Second}
}

// Live reports whether the view is current (subscribed and loaded).
func (r *Revocations) Live() bool { return r.live.Load() }

// Revoked reports whether session sid was revoked. While the view is not
// live it reads PostgreSQL; a session it does not know is treated as
// revoked there (fail closed).
func (r *Revocations) Revoked(sid uuid.UUID) (bool, error) {
	if r.live.Load() {
		r.mu.RLock()
		_, ok := r.revoked[sid]
		r.mu.RUnlock()
		return ok, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.QueryTimeout)
	defer cancel()
	var revoked bool
	err := r.pool.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM refresh_families WHERE id = $1`, sid).Scan(&revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: revocation check: %v", domain.ErrUnavailable, err)
	}
	return revoked, nil
}

// Committed is told of every revocation this instance committed (wire it
// to Sessions.OnRevoke). The view applies it at once, then waits (at most
// BroadcastWait) until the revocation's notification came back through
// PostgreSQL: PostgreSQL sends it to every listening instance at the same
// moment, so when logout answers, the other instances have it too (in
// practice within a millisecond; see docs/architecture.md). A view that is
// not live does not wait: it checks PostgreSQL per request anyway.
func (r *Revocations) Committed(ids []uuid.UUID, at time.Time) {
	r.add(ids, at, false)
	ctx, cancel := context.WithTimeout(context.Background(), r.BroadcastWait)
	defer cancel()
	for {
		r.mu.RLock()
		all := true
		for _, id := range ids {
			all = all && r.revoked[id].heard
		}
		ch := r.heard
		r.mu.RUnlock()
		if all || !r.live.Load() {
			return
		}
		select {
		case <-ctx.Done():
			r.log.Warn("own session revocation not echoed by PostgreSQL in time", "sessions", len(ids))
			return
		case <-ch:
		}
	}
}

// add records revocations; heard says they came through the feed.
func (r *Revocations) add(ids []uuid.UUID, at time.Time, heard bool) {
	r.mu.Lock()
	for _, id := range ids {
		e := r.revoked[id]
		if e.at.IsZero() {
			e.at = at
		}
		e.heard = e.heard || heard
		r.revoked[id] = e
	}
	if heard {
		close(r.heard)
		r.heard = make(chan struct{})
	}
	r.mu.Unlock()
}

// Run keeps the view current until ctx ends: listen, reload, apply
// notifications; on any connection failure it marks the view not live and
// reconnects with backoff. It returns ctx's error.
func (r *Revocations) Run(ctx context.Context) error {
	go r.pruneLoop(ctx)
	backoff := 100 * time.Millisecond
	for {
		err := r.listen(ctx)
		r.live.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("session revocation feed down; checking every token against PostgreSQL until it is back", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listen runs one subscription: LISTEN, full reload, then notifications.
func (r *Revocations) listen(ctx context.Context) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // a dedicated connection: it stays in LISTEN mode
	defer conn.Close(context.Background())
	// Named, so operators (and tests) can find the listener in pg_stat_activity.
	if _, err := conn.Exec(ctx, `SET application_name = '`+ListenerName+`'`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+RevocationChannel); err != nil {
		return err
	}
	if err := r.reload(ctx, conn); err != nil {
		return err
	}
	r.live.Store(true)
	r.log.Info("session revocation feed live")
	for {
		wctx, cancel := context.WithTimeout(ctx, r.KeepAlive)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			r.apply(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle: prove the connection still works.
			pctx, pcancel := context.WithTimeout(ctx, r.KeepAlive)
			_, perr := conn.Exec(pctx, `SELECT 1`)
			pcancel()
			if perr != nil {
				return perr
			}
		default:
			return err
		}
	}
}

// reload replaces the view with every session revoked within the window.
func (r *Revocations) reload(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT id, revoked_at FROM refresh_families
		WHERE revoked_at IS NOT NULL AND revoked_at > now() - $1::interval`, r.window.String())
	if err != nil {
		return err
	}
	fresh := map[uuid.UUID]revocation{}
	for rows.Next() {
		var id uuid.UUID
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return err
		}
		fresh[id] = revocation{at: at, heard: true}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	r.revoked = fresh
	close(r.heard)
	r.heard = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// apply adds the ids of one notification.
func (r *Revocations) apply(payload string) {
	now := time.Now()
	var ids []uuid.UUID
	for _, s := range strings.Split(payload, ",") {
		if id, err := uuid.Parse(s); err == nil {
			ids = append(ids, id)
		}
	}
	r.add(ids, now, true)
}

// pruneLoop forgets sessions revoked longer than the window ago: their
// tokens have all expired.
func (r *Revocations) pruneLoop(ctx context.Context) {
	t := time.NewTicker(max(r.window/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cutoff := time.Now().Add(-r.window)
			r.mu.Lock()
			for id, e := range r.revoked {
				if e.at.Before(cutoff) {
					delete(r.revoked, id)
				}
			}
			r.mu.Unlock()
		}
	}
}
