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
// view listens on; Committed counts these connections to know how many
// acknowledgements to wait for.
const ListenerName = "biosync-revocations"

// AckChannel is where every view acknowledges a revocation notification
// once it has applied it (the payload is the notification's own).
const AckChannel = "biosync_session_revoked_ack"

// ackMemory is how long acknowledgements are counted for: far longer than
// any wait in Committed.
const ackMemory = time.Minute

// Revocations is an instance's in-memory view of the revoked sessions
// whose access tokens could still be unexpired, so checking a token costs a
// map lookup instead of a database round trip. It also binds a token to its
// session: a session id that does not exist, or whose session belongs to
// another user, counts as revoked. The owner of each session is read once
// per instance (a session never changes hands) and kept beside the view.
//
// PostgreSQL is the source of truth. The view listens on RevocationChannel
// over its own connection; after every (re)connect it LISTENs first and then
// reloads every recently revoked session, so nothing committed in between
// is missed. While the connection is down (or before the first load) the
// view is not live and Revoked asks PostgreSQL for every token: it fails
// closed (domain.ErrUnavailable, 503) rather than trust a stale view.
//
// A revocation is effective on every instance before the revoking request
// answers: each view acknowledges what it applied (AckChannel), and
// Committed waits until every view that was listening when the revocation
// committed has done so.
type Revocations struct {
	pool   *pgxpool.Pool
	window time.Duration
	log    *slog.Logger

	mu      sync.RWMutex
	revoked map[uuid.UUID]time.Time // session id -> when this view learnt it
	owners  map[uuid.UUID]uuid.UUID // session id -> its user, for sessions seen live
	acks    map[uuid.UUID]ackCount
	changed chan struct{} // closed and replaced whenever acks arrive
	live    atomic.Bool

	// KeepAlive is how often an idle listening connection is checked with
	// a query, so a connection that died silently (a network partition)
	// stops the view being live within about this long.
	KeepAlive time.Duration
	// QueryTimeout bounds the per-request lookup while the view is not live.
	QueryTimeout time.Duration
	// BroadcastWait bounds how long Committed waits for acknowledgements
	// (a listener that died silently never sends one).
	BroadcastWait time.Duration
}

// ackCount is how many views acknowledged one revoked session.
type ackCount struct {
	n    int
	seen time.Time
}

// NewRevocations builds a view. window is how long a revoked session must
// be remembered: the access-token lifetime plus the verifier's clock skew
// allowance, after which every token of the session has expired anyway.
func NewRevocations(pool *pgxpool.Pool, window time.Duration, log *slog.Logger) *Revocations {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Revocations{pool: pool, window: window, log: log,
		revoked: map[uuid.UUID]time.Time{}, owners: map[uuid.UUID]uuid.UUID{}, acks: map[uuid.UUID]ackCount{}, changed: make(chan struct{}),
		KeepAlive: 5 * time.Second, QueryTimeout: time.Second, BroadcastWait: time.Second}
}

// Live reports whether the view is current (subscribed and loaded).
func (r *Revocations) Live() bool { return r.live.Load() }

// maxOwners bounds the remembered session owners; when full the memory
// starts over (each live session then costs one more query).
const maxOwners = 100_000

// Revoked reports whether session sid cannot carry a token of user: it was
// revoked, it does not exist, or it is another user's (a token signed with
// the server's key but naming a foreign or made-up session). While the view
// is live a known session costs two map lookups and an unknown one a single
// query; while it is not live every check reads PostgreSQL, and a session
// it does not find counts as revoked (fail closed).
func (r *Revocations) Revoked(sid, user uuid.UUID) (bool, error) {
	live := r.live.Load()
	if live {
		r.mu.RLock()
		_, revoked := r.revoked[sid]
		owner, known := r.owners[sid]
		r.mu.RUnlock()
		if revoked {
			return true, nil
		}
		if known {
			return owner != user, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.QueryTimeout)
	defer cancel()
	var owner uuid.UUID
	var revoked bool
	err := r.pool.QueryRow(ctx, `SELECT user_id, revoked_at IS NOT NULL FROM refresh_families WHERE id = $1`, sid).Scan(&owner, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: revocation check: %v", domain.ErrUnavailable, err)
	}
	if !revoked && live {
		// A revocation that lands after this read still reaches the
		// revoked set, which is checked first; one that reached it while
		// the query ran is honoured here.
		r.mu.Lock()
		_, revoked = r.revoked[sid]
		if len(r.owners) >= maxOwners {
			r.owners = map[uuid.UUID]uuid.UUID{}
		}
		r.owners[sid] = owner
		r.mu.Unlock()
	}
	return revoked || owner != user, nil
}

// Committed is told of every revocation this instance committed (wire it
// to Sessions.OnRevoke; committedAt is the revoking transaction's time).
// The view applies it at once, then waits, at most BroadcastWait, until
// every view that was listening when the transaction started has
// acknowledged it, so when logout answers, no live instance accepts the
// session's tokens any more. Views that were not listening then reload (or
// check PostgreSQL per request) and need no acknowledgement.
func (r *Revocations) Committed(ids []uuid.UUID, committedAt time.Time) {
	r.add(ids)
	ctx, cancel := context.WithTimeout(context.Background(), r.BroadcastWait)
	defer cancel()
	var listeners int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database() AND backend_start < $2`,
		ListenerName, committedAt).Scan(&listeners); err != nil {
		r.log.Warn("cannot count revocation listeners; not waiting for acknowledgements", "err", err)
		return
	}
	for {
		r.mu.RLock()
		missing := 0
		for _, id := range ids {
			if r.acks[id].n < listeners {
				missing++
			}
		}
		ch := r.changed
		r.mu.RUnlock()
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			r.log.Warn("session revocation not acknowledged by every listening instance in time",
				"listeners", listeners, "sessions_unacknowledged", missing)
			return
		case <-ch:
		}
	}
}

// add records revoked sessions in the view.
func (r *Revocations) add(ids []uuid.UUID) {
	now := time.Now()
	r.mu.Lock()
	for _, id := range ids {
		if _, ok := r.revoked[id]; !ok {
			r.revoked[id] = now
		}
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
	// Named, so operators (and Committed) can find listeners in pg_stat_activity.
	if _, err := conn.Exec(ctx, `SET application_name = '`+ListenerName+`'`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+RevocationChannel+`; LISTEN `+AckChannel); err != nil {
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
		case err == nil && n.Channel == AckChannel:
			r.acked(n.Payload)
		case err == nil:
			r.add(parseIDs(n.Payload))
			// Acknowledge on the listening connection itself: it is ours
			// alone, and a failure here is a feed failure.
			actx, acancel := context.WithTimeout(ctx, r.KeepAlive)
			_, aerr := conn.Exec(actx, `SELECT pg_notify($1, $2)`, AckChannel, n.Payload)
			acancel()
			if aerr != nil {
				return aerr
			}
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
	rows, err := conn.Query(ctx, `SELECT id FROM refresh_families
		WHERE revoked_at IS NOT NULL AND revoked_at > now() - $1::interval`, r.window.String())
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return err
	}
	now := time.Now()
	fresh := make(map[uuid.UUID]time.Time, len(ids))
	for _, id := range ids {
		fresh[id] = now
	}
	r.mu.Lock()
	r.revoked = fresh
	r.mu.Unlock()
	return nil
}

// acked counts one view's acknowledgement of a notification.
func (r *Revocations) acked(payload string) {
	now := time.Now()
	r.mu.Lock()
	for _, id := range parseIDs(payload) {
		a := r.acks[id]
		a.n++
		a.seen = now
		r.acks[id] = a
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// parseIDs reads a notification payload: session ids separated by commas.
// Anything else is ignored (only the revoking transaction writes here).
func parseIDs(payload string) []uuid.UUID {
	var ids []uuid.UUID
	for _, s := range strings.Split(payload, ",") {
		if id, err := uuid.Parse(s); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// pruneLoop forgets sessions revoked longer than the window ago (their
// tokens have all expired) and old acknowledgement counts.
func (r *Revocations) pruneLoop(ctx context.Context) {
	t := time.NewTicker(max(min(r.window, ackMemory)/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			r.mu.Lock()
			for id, at := range r.revoked {
				if now.Sub(at) > r.window {
					delete(r.revoked, id)
				}
			}
			for id, a := range r.acks {
				if now.Sub(a.seen) > ackMemory {
					delete(r.acks, id)
				}
			}
			r.mu.Unlock()
		}
	}
}
