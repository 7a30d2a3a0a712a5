package httpapi

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
)

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

// opLogin's MFA answers: the problem type tells the client to ask for a
// code (mfa-required) rather than for the password again.
var kindMFARequired = kind{http.StatusUnauthorized, "mfa-required", "One-time code required"}

func (s *server) mfa() (MFA, error) {
	if s.deps.MFA == nil {
		return nil, &httpError{kind: kindUnavailable, detail: "multi-factor authentication not configured"}
	}
	return s.deps.MFA, nil
}

// StartTotpEnrolment creates a pending TOTP secret (POST /v1/auth/mfa/totp).
func (s *server) StartTotpEnrolment(c echo.Context) error {
	svc, err := s.mfa()
	if err != nil {
		return err
	}
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	en, err := svc.StartTOTP(c.Request().Context(), uid, clientIP(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, gen.TotpEnrolment{Secret: en.Secret, OtpauthUrl: en.URL})
}

// ConfirmTotpEnrolment turns MFA on (POST /v1/auth/mfa/totp/confirm).
func (s *server) ConfirmTotpEnrolment(c echo.Context) error {
	svc, err := s.mfa()
	if err != nil {
		return err
	}
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	var in gen.TotpConfirmRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	codes, err := svc.ConfirmTOTP(c.Request().Context(), commands.ConfirmTOTP{UserID: uid, Password: in.Password, Code: in.Code, IP: clientIP(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, gen.RecoveryCodes{RecoveryCodes: codes})
}

// DisableTotp turns MFA off (POST /v1/auth/mfa/totp/disable).
func (s *server) DisableTotp(c echo.Context) error {
	svc, err := s.mfa()
	if err != nil {
		return err
	}
	cmd, err := s.mfaChange(c)
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
func (s *server) RenewRecoveryCodes(c echo.Context) error {
	svc, err := s.mfa()
	if err != nil {
		return err
	}
	cmd, err := s.mfaChange(c)
	if err != nil {
		return err
	}
	codes, err := svc.RenewRecoveryCodes(c.Request().Context(), cmd)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, gen.RecoveryCodes{RecoveryCodes: codes})
}

func (s *server) mfaChange(c echo.Context) (commands.MFAChange, error) {
	uid, err := s.user(c)
	if err != nil {
		return commands.MFAChange{}, err
	}
	var in gen.MfaReauthRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return commands.MFAChange{}, err
	}
	return commands.MFAChange{UserID: uid, Password: in.Password, Code: in.Code, IP: clientIP(c)}, nil
}

// adminAllowed applies the admin gate beyond the role: a session opened
// with MFA (unless Config.AdminMFAOptional) and, when Config.AdminNetworks
// is set, a client IP in one of them. The IP is the one the rate limiter
// keys on (clientIP, X-Forwarded-For only through trusted proxies).
func (s *server) adminAllowed(c echo.Context) error {
	if !s.cfg.AdminMFAOptional {
		if mfa, _ := c.Get(mfaKey).(bool); !mfa {
			return &httpError{kind: kindForbidden, detail: "admin operations need a session opened with a one-time code: enable MFA and log in again with otp",
				header: http.Header{"Www-Authenticate": {`Bearer realm="biosync", error="insufficient_user_authentication"`}}}
		}
	}
	if len(s.cfg.AdminNetworks) > 0 {
		ip, err := netip.ParseAddr(clientIP(c))
		allowed := false
		if err == nil {
			ip = ip.Unmap()
			for _, p := range s.cfg.AdminNetworks {
				if p.Contains(ip) {
					allowed = true
					break
				}
			}
		}
		if !allowed {
			return &httpError{kind: kindForbidden, detail: "admin operations are not allowed from this network"}
		}
	}
	return nil
}

// deref is the value of an optional body field ("" when absent).
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
