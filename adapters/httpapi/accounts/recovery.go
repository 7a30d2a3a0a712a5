package accounts

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
)

func (h *Handlers) recovery() (Recovery, error) {
	if h.deps.Recovery == nil {
		return nil, edge.NotConfigured("account mail")
	}
	return h.deps.Recovery, nil
}

// VerifyEmail confirms the address (POST /v1/auth/verify-email).
func (h *Handlers) VerifyEmail(c echo.Context) error {
	r, err := h.recovery()
	if err != nil {
		return err
	}
	var in gen.TokenRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	acc, err := r.VerifyEmail(c.Request().Context(), in.Token)
	if err != nil {
		return err
	}
	edge.SetToken(c, acc.Token)
	return c.NoContent(http.StatusNoContent)
}

// ResendVerificationEmail mails a new verification link to the caller
// (POST /v1/auth/verify-email/resend). The address comes from the caller's
// own profile.
func (h *Handlers) ResendVerificationEmail(c echo.Context) error {
	r, err := h.recovery()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	me, err := h.deps.Profiles.Me(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	if err := r.ResendVerification(c.Request().Context(), uid, me.Email); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

// RequestPasswordReset mails a reset link (POST /v1/auth/password-reset).
func (h *Handlers) RequestPasswordReset(c echo.Context) error {
	r, err := h.recovery()
	if err != nil {
		return err
	}
	var in gen.PasswordResetRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	if err := r.RequestPasswordReset(c.Request().Context(), in.Email); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

// ConfirmPasswordReset sets a new password (POST
// /v1/auth/password-reset/confirm).
func (h *Handlers) ConfirmPasswordReset(c echo.Context) error {
	r, err := h.recovery()
	if err != nil {
		return err
	}
	var in gen.PasswordResetConfirm
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	if err := r.ConfirmPasswordReset(c.Request().Context(), in.Token, in.Password, c.RealIP()); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
