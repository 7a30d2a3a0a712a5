package httpapi

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
)

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

func (s *server) recovery() (Recovery, error) {
	if s.deps.Recovery == nil {
		return nil, &httpError{kind: kindUnavailable, detail: "account mail not configured"}
	}
	return s.deps.Recovery, nil
}

// VerifyEmail confirms the address (POST /v1/auth/verify-email).
func (s *server) VerifyEmail(c echo.Context) error {
	r, err := s.recovery()
	if err != nil {
		return err
	}
	var in gen.TokenRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	acc, err := r.VerifyEmail(c.Request().Context(), in.Token)
	if err != nil {
		return err
	}
	setToken(c, acc.Token)
	return c.NoContent(http.StatusNoContent)
}

// ResendVerificationEmail mails a new verification link to the caller
// (POST /v1/auth/verify-email/resend). The address comes from the caller's
// own profile.
func (s *server) ResendVerificationEmail(c echo.Context) error {
	r, err := s.recovery()
	if err != nil {
		return err
	}
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	me, err := s.deps.Queries.Me(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	if err := r.ResendVerification(c.Request().Context(), uid, me.Email); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

// RequestPasswordReset mails a reset link (POST /v1/auth/password-reset).
func (s *server) RequestPasswordReset(c echo.Context) error {
	r, err := s.recovery()
	if err != nil {
		return err
	}
	var in gen.PasswordResetRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	if err := r.RequestPasswordReset(c.Request().Context(), in.Email); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

// ConfirmPasswordReset sets a new password (POST
// /v1/auth/password-reset/confirm).
func (s *server) ConfirmPasswordReset(c echo.Context) error {
	r, err := s.recovery()
	if err != nil {
		return err
	}
	var in gen.PasswordResetConfirm
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	if err := r.ConfirmPasswordReset(c.Request().Context(), in.Token, in.Password, c.RealIP()); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
