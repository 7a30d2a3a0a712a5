// Package operators holds the use cases an operator runs from the console
// (`biosync users`, `biosync audit`): granting the admin role, turning MFA
// off for a user who lost both the device and the recovery codes, and
// checking and reading the audit chain. They are commands like any other
// (an account lookup by email key, a state change, an audit entry), so
// they live here over ports that adapters/postgres implements, and the CLI
// only parses flags, calls one method and prints. The operator at the
// console has no account: entries written here have a subject and no
// actor.
package operators

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// RoleAdmin is the role that opens the operator API (in access tokens
// from the account's next login on).
const RoleAdmin = "admin"

// ErrNoAccount is the answer for an address without an active account.
var ErrNoAccount = errors.New("no active account for that email address")

// Accounts finds accounts by email key and changes their role. It is a
// port so the SQL stays in adapters/postgres.
type Accounts interface {
	// ByEmailKey returns the active account; domain.ErrNotFound otherwise.
	ByEmailKey(ctx context.Context, key []byte) (commands.Account, error)
	// SetRole replaces the account's role.
	SetRole(ctx context.Context, userID uuid.UUID, role string) error
}

// MFA resets a user's second factor: the TOTP enrolment (pending or on)
// and the recovery codes go, and unused password-reset links mailed
// before stop working, as when the user turns MFA off.
type MFA interface {
	ResetTOTP(ctx context.Context, userID uuid.UUID) error
}

// Sessions ends every session of a user (commands/sessions, which also
// waits until every instance has seen the revocation).
type Sessions interface {
	RevokeAll(ctx context.Context, userID uuid.UUID, reason string) error
}

// AuditChain is the audit log as the operator sees it: entries to read and
// a chain to verify.
type AuditChain interface {
	commands.AuditTrail
	// Verify walks the whole chain; it returns the number of entries that
	// verified and, if the chain is broken, where.
	Verify(ctx context.Context) (int64, *commands.AuditBreak, error)
}

// Deps are what the operator use cases need; all are required.
type Deps struct {
	// EmailIndex keys the account lookup by address.
	EmailIndex commands.EmailIndex
	Accounts   Accounts
	MFA        MFA
	Sessions   Sessions
	// Audit records the operator's changes and serves verify and list.
	Audit AuditChain
}

// Service runs the operator use cases.
type Service struct{ d Deps }

// New checks d and returns the service; a missing dependency is an error
// naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("operators", "EmailIndex", d.EmailIndex, "Accounts", d.Accounts,
		"MFA", d.MFA, "Sessions", d.Sessions, "Audit", d.Audit); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// user returns the id of the active account of email (ErrNoAccount).
func (s *Service) user(ctx context.Context, email string) (uuid.UUID, error) {
	a, err := s.d.Accounts.ByEmailKey(ctx, s.d.EmailIndex.Key(email))
	if errors.Is(err, domain.ErrNotFound) {
		return uuid.Nil, ErrNoAccount
	}
	if err != nil {
		return uuid.Nil, err
	}
	return a.UserID, nil
}

// GrantAdmin gives the account of email the admin role and records it.
// The role change stands even when the audit entry fails; the error says
// so.
func (s *Service) GrantAdmin(ctx context.Context, email string) error {
	user, err := s.user(ctx, email)
	if err != nil {
		return err
	}
	if err := s.d.Accounts.SetRole(ctx, user, RoleAdmin); err != nil {
		return err
	}
	if err := s.d.Audit.Record(ctx, commands.AuditEntry{Action: commands.AuditRoleChange, Subject: user,
		Detail: map[string]string{"role": RoleAdmin, "via": "biosync users grant-admin"}}); err != nil {
		return fmt.Errorf("admin role granted, but the audit entry was not written: %w", err)
	}
	return nil
}

// ResetMFA turns MFA off for the account of email (the operator verified
// the user's identity out of band), then ends every session, as when the
// user turns MFA off, and records it. An error after the reset says what
// did not happen.
func (s *Service) ResetMFA(ctx context.Context, email string) error {
	user, err := s.user(ctx, email)
	if err != nil {
		return err
	}
	if err := s.d.MFA.ResetTOTP(ctx, user); err != nil {
		return err
	}
	if err := s.d.Sessions.RevokeAll(ctx, user, commands.RevokeMFAChange); err != nil {
		return fmt.Errorf("MFA reset, but sessions were not ended: %w", err)
	}
	if err := s.d.Audit.Record(ctx, commands.AuditEntry{Action: commands.AuditMFADisabled, Subject: user,
		Detail: map[string]string{"via": "biosync users reset-mfa"}}); err != nil {
		return fmt.Errorf("MFA reset, but the audit entry was not written: %w", err)
	}
	return nil
}

// AuditCheck is the outcome of VerifyAudit.
type AuditCheck struct {
	// Entries is how many entries verified, in chain order.
	Entries int64
	// Head is the hash of the last entry when the chain is intact and not
	// empty: kept elsewhere, it lets a later check prove nothing was cut
	// off the end.
	Head []byte
	// Break is where the chain does not hold; nil when it is intact.
	Break *commands.AuditBreak
}

// VerifyAudit walks the whole audit chain and, when it holds, returns its
// head.
func (s *Service) VerifyAudit(ctx context.Context) (AuditCheck, error) {
	n, brk, err := s.d.Audit.Verify(ctx)
	if err != nil || brk != nil {
		return AuditCheck{Entries: n, Break: brk}, err
	}
	c := AuditCheck{Entries: n}
	if n > 0 {
		last, err := s.d.Audit.List(ctx, commands.AuditFilter{After: n - 1, Limit: 1})
		if err != nil {
			return c, err
		}
		if len(last) == 0 {
			return c, fmt.Errorf("audit entry %d verified but is no longer listed", n)
		}
		c.Head = last[0].Hash
	}
	return c, nil
}

// ListAudit returns the entries matching f in chain order.
func (s *Service) ListAudit(ctx context.Context, f commands.AuditFilter) ([]commands.AuditRecord, error) {
	return s.d.Audit.List(ctx, f)
}
