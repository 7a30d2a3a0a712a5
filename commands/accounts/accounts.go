// Package accounts runs the lifecycle of an account's credentials:
// registration (a synchronous email claim in PostgreSQL, then exactly one
// user.registered event), email verification (one user.email_verified
// event), and the synchronous password commands: change, and reset by a
// mailed link. It also sends the account mail these need.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/eventstore"
)

// PasswordChanger replaces a password hash and ends every session of the
// user in one transaction, retiring reset links mailed before
// (adapters/postgres.Sessions.ChangePassword); domain.ErrConflict when the
// stored hash is no longer oldHash (a concurrent change won).
type PasswordChanger interface {
	ChangePassword(ctx context.Context, userID uuid.UUID, oldHash, newHash string) error
}

// Deps are what account commands need. Log, Accounts, Passwords,
// EmailIndex and Credentials are required.
type Deps struct {
	// Log is where user.registered and user.email_verified are appended.
	Log eventstore.Appender
	// Accounts holds the email claims and credentials.
	Accounts commands.Accounts
	// Passwords hashes and verifies passwords.
	Passwords commands.PasswordHasher
	// PasswordPolicy enforces the password policy; nil accepts any.
	PasswordPolicy func(string) error
	// EmailIndex keys the hash under which addresses are claimed.
	EmailIndex commands.EmailIndex
	// Credentials stores a new password and ends every session.
	Credentials PasswordChanger
	// Mail is account mail; its zero value is mail off.
	Mail MailDeps
	// Audit records password changes; nil means auditing is not configured.
	Audit commands.Audit
	// Logger reports what cannot be returned (a claim not released, mail
	// not sent); nil discards.
	Logger *slog.Logger
	// Envelope stamps the appended events and tells the time.
	Envelope commands.Envelope
}

// Service runs the account commands.
type Service struct{ d Deps }

// New checks d and returns the service; a missing required dependency is
// an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("accounts", "Log", d.Log, "Accounts", d.Accounts, "Passwords", d.Passwords,
		"EmailIndex", d.EmailIndex, "Credentials", d.Credentials); err != nil {
		return nil, err
	}
	if d.Mail.Sender != nil && d.Mail.Tokens == nil {
		return nil, errors.New("accounts: Mail.Tokens is required with Mail.Sender")
	}
	return &Service{d: d}, nil
}

// audit records a security event (see commands.RecordAudit).
func (s *Service) audit(ctx context.Context, e commands.AuditEntry) {
	commands.RecordAudit(ctx, s.d.Audit, s.d.Logger, s.d.Envelope.Now.Now(), e)
}

// Register creates an account: validate, claim the email synchronously,
// append user.registered, then mark the claim complete. If the append fails
// the claim is released and the caller gets domain.ErrUnavailable.
func (s *Service) Register(ctx context.Context, cmd commands.RegisterUser) (commands.Registered, error) {
	v := &domain.ValidationError{}
	identity.ValidateRegistration(cmd.Email, cmd.Timezone, v)
	if s.d.PasswordPolicy != nil {
		var pv *domain.ValidationError
		if err := s.d.PasswordPolicy(cmd.Password); errors.As(err, &pv) {
			v.Problems = append(v.Problems, pv.Problems...)
		} else if err != nil {
			v.Add("/password", "%v", err)
		}
	}
	if err := v.Err(); err != nil {
		return commands.Registered{}, err
	}
	hash, err := s.d.Passwords.Hash(cmd.Password)
	if err != nil {
		return commands.Registered{}, err
	}
	email := identity.NormalizeEmail(cmd.Email)
	userID := uuid.New()
	if err := s.d.Accounts.Claim(ctx, commands.Account{UserID: userID, EmailKey: s.d.EmailIndex.Key(email), PasswordHash: hash}); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			s.noticeRegistrationAttempt(email)
		}
		return commands.Registered{}, err
	}
	e, err := s.d.Envelope.Event(ctx, uuid.New(), userID, identity.EventRegistered, identity.Registered{Email: email, Timezone: cmd.Timezone, RegisteredAt: s.d.Envelope.Now.Now().UTC()})
	if err != nil {
		return commands.Registered{}, err
	}
	pos, err := s.d.Log.Append(ctx, e)
	// Settle the claim with a context that outlives the request.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	switch {
	case errors.Is(err, eventstore.ErrNotAppended):
		// Certainly not in the log: free the address again.
		if rerr := s.d.Accounts.Release(sctx, userID); rerr != nil && s.d.Logger != nil {
			s.d.Logger.Error("could not release email claim", "user_id", userID, "err", rerr)
		}
		return commands.Registered{}, err
	case err != nil:
		// Outcome unknown: the record may still land. The claim stays
		// pending; the users projector activates it if the event arrives,
		// and a pending claim older than the takeover window can be claimed
		// again (see Accounts.Claim).
		return commands.Registered{}, err
	}
	registration := eventstore.Token{pos}
	for attempt := 0; ; attempt++ {
		cerr := s.d.Accounts.Complete(sctx, userID, registration)
		if cerr == nil {
			break
		}
		if attempt == 2 {
			// The event is in the log: the users projector will activate
			// the account; the caller may retry login shortly.
			return commands.Registered{}, cerr
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.sendVerification(sctx, userID, email); err != nil && s.d.Logger != nil {
		// The account exists; the user can ask for a new link later.
		s.d.Logger.Error("verification mail not prepared", "user_id", userID, "err", err)
	}
	return commands.Registered{UserID: userID, Email: email, Timezone: cmd.Timezone, Token: registration}, nil
}

// Registration returns where the user's registration landed in the log, so
// a read of their profile can wait until it is projected (a frontend asks
// for it right after login, before the users read model may have caught
// up). It is empty for accounts registered before it was recorded, and
// domain.ErrNotFound for unknown or pending accounts.
func (s *Service) Registration(ctx context.Context, userID uuid.UUID) (eventstore.Token, error) {
	acc, err := s.d.Accounts.ByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	return acc.Registration, nil
}

// ChangePassword re-checks the current password, applies the password
// policy to the new one, stores its hash, revokes every session (this one
// included: the client logs in again with the new password) and retires
// reset links mailed before (SessionStore.ChangePassword). A wrong
// current password is a *domain.ValidationError on /current_password: the
// caller is authenticated, so 401 would wrongly say the token is bad.
func (s *Service) ChangePassword(ctx context.Context, cmd commands.ChangePassword) error {
	acc, err := s.d.Accounts.ByID(ctx, cmd.UserID)
	if errors.Is(err, domain.ErrNotFound) {
		return fmt.Errorf("account: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return err
	}
	ok, _, err := s.d.Passwords.Verify(cmd.CurrentPassword, acc.PasswordHash)
	if err != nil || !ok {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/current_password", Detail: "does not match the current password"}}}
	}
	v := &domain.ValidationError{}
	if s.d.PasswordPolicy != nil {
		var pv *domain.ValidationError
		if err := s.d.PasswordPolicy(cmd.NewPassword); errors.As(err, &pv) {
			for _, p := range pv.Problems {
				if p.Field == "/password" {
					p.Field = "/new_password"
				}
				v.Problems = append(v.Problems, p)
			}
		} else if err != nil {
			v.Add("/new_password", "%v", err)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	hash, err := s.d.Passwords.Hash(cmd.NewPassword)
	if err != nil {
		return err
	}
	if err := s.d.Credentials.ChangePassword(ctx, cmd.UserID, acc.PasswordHash, hash); err != nil {
		return err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditPasswordChange, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return nil
}
