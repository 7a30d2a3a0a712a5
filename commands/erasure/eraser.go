package erasure

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// SessionRevoker ends every session of a user (refresh tokens, and access
// tokens issued before now, on every instance). It is a port so the
// erasure workflow ends sessions without knowing how they are kept;
// sessions.Service.RevokeAll implements it.
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

// Eraser carries out due erasures. Every instance may run one: requests
// are claimed with row locks, and every step is idempotent, so a crash
// midway is finished by the next run.
type Eraser struct{ d EraserDeps }

// EraserDeps are what the erasure worker needs; Store and Keys are
// required, the rest optional.
type EraserDeps struct {
	Store     Store
	Keys      KeyShredder
	Caches    CachePurger        // optional
	Sessions  SessionRevoker     // optional
	Broadcast ErasureBroadcaster // optional
	Audit     commands.Audit     // optional
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

// NewEraser checks d and returns the worker; a missing required
// dependency is an error naming it.
func NewEraser(d EraserDeps) (*Eraser, error) {
	if err := commands.Required("erasure worker", "Store", d.Store, "Keys", d.Keys); err != nil {
		return nil, err
	}
	return &Eraser{d: d}, nil
}

// RunOnce carries out every step that is due and returns how many ran.
func (e *Eraser) RunOnce(ctx context.Context) (int, error) {
	n := 0
	for {
		err := e.d.Store.Due(ctx, e.d.RepurgeAfter, func(d commands.DeletionRequest) error { return e.step(ctx, d) })
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
	every := e.d.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.RunOnce(ctx); err != nil && ctx.Err() == nil && e.d.Logger != nil {
			e.d.Logger.Error("erasure step failed; retrying", "err", err)
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
func (e *Eraser) step(ctx context.Context, d commands.DeletionRequest) error {
	first := d.Status == commands.ErasureScheduled
	var aliases []string
	if len(d.EmailKey) > 0 {
		aliases = append(aliases, hex.EncodeToString(d.EmailKey))
	}
	if first {
		if err := e.d.Keys.Destroy(ctx, d.UserID); err != nil {
			return fmt.Errorf("destroy key: %w", err)
		}
		if e.d.Sessions != nil {
			if err := e.d.Sessions.RevokeAll(ctx, d.UserID, "erasure"); err != nil {
				return fmt.Errorf("revoke sessions: %w", err)
			}
		}
		if e.d.Forget != nil {
			e.d.Forget(d.UserID)
		}
		if e.d.Broadcast != nil {
			if err := e.d.Broadcast.Broadcast(ctx, d.UserID); err != nil && e.d.Logger != nil {
				e.d.Logger.Error("erasure broadcast failed; other instances drop the key when their cache expires", "err", err)
			}
		}
	}
	rows, err := e.d.Store.PurgeUser(ctx, d.UserID)
	if err != nil {
		return err
	}
	if e.d.Caches != nil {
		if err := e.d.Caches.PurgeUser(ctx, d.UserID, aliases...); err != nil {
			return fmt.Errorf("purge caches: %w", err)
		}
	}
	step := "purged"
	if !first {
		step = "completed"
	}
	if e.d.Audit != nil {
		if err := e.d.Audit.Record(ctx, commands.AuditEntry{Action: commands.AuditErasure, Subject: d.UserID, Detail: map[string]string{"step": step, "request": d.ID.String(), "rows": fmt.Sprint(rows)}}); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if e.d.Logger != nil {
		e.d.Logger.Info("erasure step done", "request", d.ID, "step", step, "rows", rows)
	}
	return nil
}
