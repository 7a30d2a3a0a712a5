// Package erasure runs account erasure (GDPR art. 17): the synchronous
// deletion-request commands (request after re-checking the password,
// status, cancel within the grace period) and Eraser, the background
// worker that destroys the user's data key, ends sessions, and purges the
// user's rows and cache entries twice. It appends no events: the log
// stays immutable and the destroyed key makes the user's events
// unreadable.
package erasure

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// DefaultErasureGracePeriod is how long an erasure waits for the user to
// change their mind (BIOSYNC_ERASURE_GRACE_PERIOD).
const DefaultErasureGracePeriod = 168 * time.Hour

// Store keeps deletion requests and purges a user's rows. It is a
// port so the workflow (grace period, order of steps) is decided here and
// the SQL stays in adapters/postgres.
type Store interface {
	// Create schedules d; domain.ErrConflict when one is already open.
	Create(ctx context.Context, d commands.DeletionRequest) (commands.DeletionRequest, error)
	// Get returns the user's request; domain.ErrNotFound otherwise.
	Get(ctx context.Context, user, id uuid.UUID) (commands.DeletionRequest, error)
	// Cancel cancels a scheduled request; domain.ErrConflict once started.
	Cancel(ctx context.Context, user, id uuid.UUID) (commands.DeletionRequest, error)
	// Due runs step on one request that is due, with the request locked,
	// and advances it (scheduled -> purging, purging -> completed) when
	// step succeeds; domain.ErrNotFound when none is due.
	Due(ctx context.Context, repurgeAfter time.Duration, step func(commands.DeletionRequest) error) error
	// PurgeUser deletes every row of the user from the read models and the
	// command-side tables, keeping the key tombstone and the request.
	PurgeUser(ctx context.Context, user uuid.UUID) (int64, error)
}

// Deps are what the deletion-request commands need; Store, Accounts and
// Passwords are required.
type Deps struct {
	// Store keeps deletion requests.
	Store Store
	// Accounts and Passwords re-check the password of a request.
	Accounts  commands.Accounts
	Passwords commands.PasswordHasher
	// GracePeriod is how long a request waits
	// (BIOSYNC_ERASURE_GRACE_PERIOD); zero means DefaultErasureGracePeriod.
	GracePeriod time.Duration
	// Audit records requests and cancellations; nil means auditing is not
	// configured.
	Audit commands.Audit
	// Logger reports audit entries that could not be stored; nil discards.
	Logger *slog.Logger
	// Now is the clock of the grace period.
	Now commands.Clock
}

// Service runs the deletion-request commands.
type Service struct{ d Deps }

// New checks d and returns the service; a missing required dependency is
// an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("erasure", "Store", d.Store, "Accounts", d.Accounts, "Passwords", d.Passwords); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// audit records a security event (see commands.RecordAudit).
func (s *Service) audit(ctx context.Context, e commands.AuditEntry) {
	commands.RecordAudit(ctx, s.d.Audit, s.d.Logger, s.d.Now.Now(), e)
}

// RequestErasure schedules the erasure of the caller's account after the
// grace period. The password is asked again: a stolen access token alone
// must not be able to delete an account.
func (s *Service) RequestErasure(ctx context.Context, user uuid.UUID, password, ip string) (commands.DeletionRequest, error) {
	acc, err := s.d.Accounts.ByID(ctx, user)
	if err != nil {
		return commands.DeletionRequest{}, err
	}
	if ok, _, err := s.d.Passwords.Verify(password, acc.PasswordHash); err != nil || !ok {
		s.audit(ctx, commands.AuditEntry{Action: commands.AuditLoginFailed, Subject: user, IP: ip, Detail: map[string]string{"reason": "re-authentication for erasure failed"}})
		return commands.DeletionRequest{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/password", Detail: "does not match the account's password"}}}
	}
	now := s.d.Now.Now().UTC()
	grace := s.d.GracePeriod
	if grace <= 0 {
		grace = DefaultErasureGracePeriod
	}
	d, err := s.d.Store.Create(ctx, commands.DeletionRequest{ID: uuid.New(), UserID: user, RequestedAt: now, ExecuteAfter: now.Add(grace)})
	if err != nil {
		return d, err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditErasure, Actor: user, Subject: user, IP: ip, Detail: map[string]string{"step": "requested", "request": d.ID.String(), "execute_after": d.ExecuteAfter.Format(time.RFC3339)}})
	return d, nil
}

// ErasureStatus returns one of the caller's requests.
func (s *Service) ErasureStatus(ctx context.Context, user, id uuid.UUID) (commands.DeletionRequest, error) {
	return s.d.Store.Get(ctx, user, id)
}

// CancelErasure cancels a scheduled request during its grace period.
func (s *Service) CancelErasure(ctx context.Context, user, id uuid.UUID, ip string) (commands.DeletionRequest, error) {
	d, err := s.d.Store.Cancel(ctx, user, id)
	if err != nil {
		return d, err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditErasure, Actor: user, Subject: user, IP: ip, Detail: map[string]string{"step": "cancelled", "request": id.String()}})
	return d, nil
}
