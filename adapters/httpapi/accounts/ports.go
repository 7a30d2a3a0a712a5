package accounts

import (
	"context"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/projections/users"
)

// Deps are the ports of the account routes. Accounts is required; a nil
// Sessions, MFA or Recovery answers its routes 503.
type Deps struct {
	// Accounts serves register and password change.
	Accounts Accounts
	// Sessions serves login, refresh, logout and the session list.
	Sessions Sessions
	// MFA serves /v1/auth/mfa.
	MFA MFA
	// Recovery serves email verification and password reset (the
	// accounts commands that need account mail); nil while mail is off.
	Recovery Recovery
	// Profiles tells the address a new verification link goes to.
	Profiles Profiles
}

// Accounts is the command side of an account's credentials
// (commands/accounts). It is a port so the HTTP layer never touches
// password hashing or the email claim directly.
//
// Register returns domain.ErrConflict (409) when the email is taken, a
// *domain.ValidationError (422) for bad input and domain.ErrUnavailable (503)
// when the log or database is down. ChangePassword returns a
// *domain.ValidationError naming /current_password or /new_password (422)
// and domain.ErrConflict (409) when a concurrent change won.
type Accounts interface {
	// Register creates an account and returns its consistency token.
	Register(ctx context.Context, cmd commands.RegisterUser) (commands.Registered, error)
	// ChangePassword re-checks the password, stores the new one and
	// revokes every session.
	ChangePassword(ctx context.Context, cmd commands.ChangePassword) error
}

// Sessions is the command side of sessions (commands/sessions): login,
// refresh-token rotation, logout and the session list. It is a port so the
// HTTP layer never sees credentials checks or refresh-token storage.
//
// Login returns domain.ErrUnauthorized (401) for unknown email or wrong
// password alike. Refresh returns domain.ErrUnauthorized for unknown,
// expired, revoked and reused tokens alike (answered with one 401 problem,
// no oracle). Every method returns domain.ErrUnavailable (503) while the
// database is down.
type Sessions interface {
	// Login checks credentials and issues an access token.
	Login(ctx context.Context, cmd commands.Login) (commands.Session, error)
	// Refresh rotates a refresh token and issues a new pair.
	Refresh(ctx context.Context, cmd commands.Refresh) (commands.Session, error)
	// Logout revokes one session of userID.
	Logout(ctx context.Context, userID, sessionID uuid.UUID) error
	// LogoutAll revokes every session of userID.
	LogoutAll(ctx context.Context, userID uuid.UUID, ip string) error
	// ListSessions returns the live sessions, current marked.
	ListSessions(ctx context.Context, userID, current uuid.UUID) ([]commands.SessionInfo, error)
}

// MFA is the command side of TOTP multi-factor authentication. It is a
// port so the HTTP layer never sees secrets at rest or code checking.
//
// StartTOTP and ConfirmTOTP return domain.ErrConflict (409) when MFA is
// already on; ConfirmTOTP, DisableTOTP and RenewRecoveryCodes re-check the
// password and return a *domain.ValidationError naming /code or /password
// (422); DisableTOTP and
// RenewRecoveryCodes return domain.ErrConflict when MFA is off. Every
// method returns domain.ErrUnavailable (503) while the database is down.
type MFA interface {
	// StartTOTP creates (or replaces) a pending secret.
	StartTOTP(ctx context.Context, userID uuid.UUID, ip string) (commands.TOTPEnrolment, error)
	// ConfirmTOTP re-checks the password, turns MFA on, ends every
	// session and returns the recovery codes.
	ConfirmTOTP(ctx context.Context, cmd commands.ConfirmTOTP) ([]string, error)
	// DisableTOTP turns MFA off and ends every session.
	DisableTOTP(ctx context.Context, cmd commands.MFAChange) error
	// RenewRecoveryCodes replaces the recovery codes.
	RenewRecoveryCodes(ctx context.Context, cmd commands.MFAChange) ([]string, error)
}

// Recovery is the mailed-token side of identity: email verification and
// password reset. It is a port so the HTTP layer never sees token storage
// or mail. Errors: *domain.ValidationError (422, /token or /password for
// a bad token or password), domain.ErrUnavailable (503).
type Recovery interface {
	// VerifyEmail spends a verification token and appends the event.
	VerifyEmail(ctx context.Context, token string) (commands.Accepted, error)
	// ResendVerification mails a new link for user to email.
	ResendVerification(ctx context.Context, user uuid.UUID, email string) error
	// RequestPasswordReset mails a reset link if email has an account and
	// answers the same either way.
	RequestPasswordReset(ctx context.Context, email string) error
	// ConfirmPasswordReset sets a new password with a reset token and ends
	// every session of the account; ip goes to the audit log.
	ConfirmPasswordReset(ctx context.Context, token, password, ip string) error
}

// Profiles reads the users read model. It is a port so a new verification
// link goes to the address of the caller's own profile, never to one from
// the request.
type Profiles interface {
	// Me returns the profile; domain.ErrNotFound when there is none.
	Me(ctx context.Context, userID uuid.UUID) (users.UserView, error)
}
