package accounts

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
)

func (h *Handlers) mfa() (MFA, error) {
	if h.deps.MFA == nil {
		return nil, edge.NotConfigured("multi-factor authentication")
	}
	return h.deps.MFA, nil
}

// StartTotpEnrolment creates a pending TOTP secret (POST /v1/auth/mfa/totp).
func (h *Handlers) StartTotpEnrolment(c echo.Context) error {
	svc, err := h.mfa()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	en, err := svc.StartTOTP(c.Request().Context(), uid, edge.ClientIP(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, gen.TotpEnrolment{Secret: en.Secret, OtpauthUrl: en.URL})
}

// ConfirmTotpEnrolment turns MFA on (POST /v1/auth/mfa/totp/confirm).
func (h *Handlers) ConfirmTotpEnrolment(c echo.Context) error {
	svc, err := h.mfa()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	var in gen.TotpConfirmRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	codes, err := svc.ConfirmTOTP(c.Request().Context(), commands.ConfirmTOTP{UserID: uid, Password: in.Password, Code: in.Code, IP: edge.ClientIP(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, gen.RecoveryCodes{RecoveryCodes: codes})
}

// DisableTotp turns MFA off (POST /v1/auth/mfa/totp/disable).
func (h *Handlers) DisableTotp(c echo.Context) error {
	svc, err := h.mfa()
	if err != nil {
		return err
	}
	cmd, err := mfaChange(c)
	if err != nil {
		return err
	}
	if err := svc.DisableTOTP(c.Request().Context(), cmd); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// RenewRecoveryCodes replaces the recovery codes (POST
// /v1/auth/mfa/recovery-codes).
func (h *Handlers) RenewRecoveryCodes(c echo.Context) error {
	svc, err := h.mfa()
	if err != nil {
		return err
	}
	cmd, err := mfaChange(c)
	if err != nil {
		return err
	}
	codes, err := svc.RenewRecoveryCodes(c.Request().Context(), cmd)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, gen.RecoveryCodes{RecoveryCodes: codes})
}

func mfaChange(c echo.Context) (commands.MFAChange, error) {
	uid, err := edge.Caller(c)
	if err != nil {
		return commands.MFAChange{}, err
	}
	var in gen.MfaReauthRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return commands.MFAChange{}, err
	}
	return commands.MFAChange{UserID: uid, Password: in.Password, Code: in.Code, IP: edge.ClientIP(c)}, nil
}
