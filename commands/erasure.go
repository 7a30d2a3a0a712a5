package commands

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
)

// Erasure request states (DeletionRequest.Status).
const (
	ErasureScheduled = "scheduled" // waiting out the grace period; cancellable
	ErasureCancelled = "cancelled"
	ErasurePurging   = "purging" // key destroyed, data purged; a second purge is pending
	ErasureCompleted = "completed"
)

// DefaultErasureGracePeriod is how long an erasure waits for the user to
// change their mind (BIOSYNC_ERASURE_GRACE_PERIOD).
const DefaultErasureGracePeriod = 168 * time.Hour

// DeletionRequest is one erasure request (GDPR art. 17) and its progress.
type DeletionRequest struct {
	ID, UserID   uuid.UUID
	Status       string
	RequestedAt  time.Time
	ExecuteAfter time.Time
	CancelledAt  *time.Time
	CompletedAt  *time.Time
	// EmailKey is the keyed hash of the account's address, taken when the
	// request was made (the account row goes with the first purge): caches
	// key anonymous requests, such as a stored registration, by it. It is
	// cleared when the erasure completes.
	EmailKey []byte
}

// ErasureStore keeps deletion requests and purges a user's rows. It is a
// port so the workflow (grace period, order of steps) is decided here and
// the SQL stays in adapters/postgres.
type ErasureStore interface {
	// Create schedules d; domain.ErrConflict when one is already open.
	Create(ctx context.Context, d DeletionRequest) (DeletionRequest, error)
	// Get returns the user's request; domain.ErrNotFound otherwise.
	Get(ctx context.Context, user, id uuid.UUID) (DeletionRequest, error)
	// Cancel cancels a scheduled request; domain.ErrConflict once started.
	Cancel(ctx context.Context, user, id uuid.UUID) (DeletionRequest, error)
	// Due runs step on one request that is due, with the request locked,
	// and advances it (scheduled -> purging, purging -> completed) when
	// step succeeds; domain.ErrNotFound when none is due.
	Due(ctx context.Context, repurgeAfter time.Duration, step func(DeletionRequest) error) error
	// PurgeUser deletes every row of the user from the read models and the
	// command-side tables, keeping the key tombstone and the request.
	PurgeUser(ctx context.Context, user uuid.UUID) (int64, error)
}

// SessionRevoker ends every session of a user (refresh tokens, and access
// tokens issued before now, on every instance). It is a port so the
// erasure workflow ends sessions without knowing how they are kept;
// Handlers.RevokeAll implements it.
type SessionRevoker interface {
	RevokeAll(ctx context.Context, user uuid.UUID, reason string) error
}

// KeyShredder destroys a user's data key (crypto-shredding): every event
// of the user in the immutable log becomes unreadable.
type KeyShredder interface {
	Destroy(ctx context.Context, user uuid.UUID) error
}

// CachePurger removes a user's entries from shared caches (Redis).
type CachePurger interface {
	// PurgeUser deletes every entry whose key names the user's id or one
	// of aliases (other strings that stand for the user in keys, such as
	// the hex of the email key).
	PurgeUser(ctx context.Context, user uuid.UUID, aliases ...string) error
}

// ErasureBroadcaster tells every instance that a user was erased, so each
// drops what it holds in memory (the data key, the active-account cache,
// session views). Delivery is best effort; in-memory key caches also
// expire on their own (eventstore.KeyCacheMaxAge), and the second purge
// runs after that.
type ErasureBroadcaster interface {
	Broadcast(ctx context.Context, user uuid.UUID) error
}

// RequestErasure schedules the erasure of the caller's account after the
// grace period. The password is asked again: a stolen access token alone
// must not be able to delete an account.
func (h *Handlers) RequestErasure(ctx context.Context, user uuid.UUID, password, ip string) (DeletionRequest, error) {
	if h.Erasure == nil {
		return DeletionRequest{}, fmt.Errorf("erasure not configured: %w", domain.ErrUnavailable)
	}
	acc, err := h.Accounts.ByID(ctx, user)
	if err != nil {
		return DeletionRequest{}, err
	}
	if ok, _, err := h.Passwords.Verify(password, acc.PasswordHash); err != nil || !ok {
		h.audit(ctx, AuditEntry{Action: AuditLoginFailed, Subject: user, IP: ip, Detail: map[string]string{"reason": "re-authentication for erasure failed"}})
		return DeletionRequest{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/password", Detail: "does not match the account's password"}}}
	}
	now := h.now().UTC()
	grace := h.ErasureGracePeriod
	if grace <= 0 {
		grace = DefaultErasureGracePeriod
	}
	d, err := h.Erasure.Create(ctx, DeletionRequest{ID: uuid.New(), UserID: user, RequestedAt: now, ExecuteAfter: now.Add(grace)})
	if err != nil {
		return d, err
	}
	h.audit(ctx, AuditEntry{Action: AuditErasure, Actor: user, Subject: user, IP: ip, Detail: map[string]string{"step": "requested", "request": d.ID.String(), "execute_after": d.ExecuteAfter.Format(time.RFC3339)}})
	return d, nil
}

// ErasureStatus returns one of the caller's requests.
func (h *Handlers) ErasureStatus(ctx context.Context, user, id uuid.UUID) (DeletionRequest, error) {
	if h.Erasure == nil {
		return DeletionRequest{}, fmt.Errorf("erasure not configured: %w", domain.ErrUnavailable)
	}
	return h.Erasure.Get(ctx, user, id)
}

// CancelErasure cancels a scheduled request during its grace period.
func (h *Handlers) CancelErasure(ctx context.Context, user, id uuid.UUID, ip string) (DeletionRequest, error) {
	if h.Erasure == nil {
		return DeletionRequest{}, fmt.Errorf("erasure not configured: %w", domain.ErrUnavailable)
	}
	d, err := h.Erasure.Cancel(ctx, user, id)
	if err != nil {
		return d, err
	}
	h.audit(ctx, AuditEntry{Action: AuditErasure, Actor: user, Subject: user, IP: ip, Detail: map[string]string{"step": "cancelled", "request": id.String()}})
	return d, nil
}

// Eraser carries out due erasures. Every instance may run one: requests
// are claimed with row locks, and every step is idempotent, so a crash
// midway is finished by the next run.
type Eraser struct {
	Store     ErasureStore
	Keys      KeyShredder
	Caches    CachePurger        // optional
	Sessions  SessionRevoker     // optional
	Broadcast ErasureBroadcaster // optional
	Audit     Audit              // optional
	// Forget drops the user from this instance's in-memory state at once
	// (the broadcast reaches the other instances).
	Forget func(uuid.UUID)
	// RepurgeAfter separates the two purges; it must exceed the longest
	// time an instance can keep a data key cached.
	RepurgeAfter time.Duration
	// Every is the polling interval of Run.
	Every  time.Duration
	Logger *slog.Logger // optional
}

// RunOnce carries out every step that is due and returns how many ran.
func (e *Eraser) RunOnce(ctx context.Context) (int, error) {
	n := 0
	for {
		err := e.Store.Due(ctx, e.RepurgeAfter, func(d DeletionRequest) error { return e.step(ctx, d) })
		if errors.Is(err, domain.ErrNotFound) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// Run polls for due erasures until ctx ends; errors are logged and retried.
func (e *Eraser) Run(ctx context.Context) {
	every := e.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.RunOnce(ctx); err != nil && ctx.Err() == nil && e.Logger != nil {
			e.Logger.Error("erasure step failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step: first pass destroys the key, ends sessions, tells every instance,
// purges rows and caches; the second pass purges again (rows a projector
// wrote with a key it still held in memory) and completes the request.
func (e *Eraser) step(ctx context.Context, d DeletionRequest) error {
	first := d.Status == ErasureScheduled
	var aliases []string
	if len(d.EmailKey) > 0 {
		aliases = append(aliases, hex.EncodeToString(d.EmailKey))
	}
	if first {
		if err := e.Keys.Destroy(ctx, d.UserID); err != nil {
			return fmt.Errorf("destroy key: %w", err)
		}
		if e.Sessions != nil {
			if err := e.Sessions.RevokeAll(ctx, d.UserID, "erasure"); err != nil {
				return fmt.Errorf("revoke sessions: %w", err)
			}
		}
		if e.Forget != nil {
			e.Forget(d.UserID)
		}
		if e.Broadcast != nil {
			if err := e.Broadcast.Broadcast(ctx, d.UserID); err != nil && e.Logger != nil {
				e.Logger.Error("erasure broadcast failed; other instances drop the key when their cache expires", "err", err)
			}
		}
	}
	rows, err := e.Store.PurgeUser(ctx, d.UserID)
	if err != nil {
		return err
	}
	if e.Caches != nil {
		if err := e.Caches.PurgeUser(ctx, d.UserID, aliases...); err != nil {
			return fmt.Errorf("purge caches: %w", err)
		}
	}
	step := "purged"
	if !first {
		step = "completed"
	}
	if e.Audit != nil {
		if err := e.Audit.Record(ctx, AuditEntry{Action: AuditErasure, Subject: d.UserID, Detail: map[string]string{"step": step, "request": d.ID.String(), "rows": fmt.Sprint(rows)}}); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if e.Logger != nil {
		e.Logger.Info("erasure step done", "request", d.ID, "step", step, "rows", rows)
	}
	return nil
}
