package accounts

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// Handlers serves the account routes (see the package doc); the assembled
// server embeds it, so its methods are part of gen.ServerInterface.
type Handlers struct {
	deps Deps
}

// New returns the account handlers over deps.
func New(deps Deps) *Handlers { return &Handlers{deps: deps} }

// kindMFARequired answers a login whose password was right but which
// needs a code: the problem type tells the client to ask for a code
// rather than for the password again.
var kindMFARequired = edge.Kind{Status: http.StatusUnauthorized, Slug: "mfa-required", Title: "One-time code required"}

// Register creates an account (POST /v1/auth/register).
func (h *Handlers) Register(c echo.Context) error {
	var in gen.RegisterRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	reg, err := h.deps.Accounts.Register(c.Request().Context(), commands.RegisterUser{
		Email: in.Email, Password: in.Password, Timezone: in.Timezone,
	})
	if err != nil {
		return edge.Reword(err, domain.ErrConflict, edge.KindConflict, edge.Wording{Detail: "this email address is already registered"})
	}
	edge.SetToken(c, reg.Token)
	c.Response().Header().Set(echo.HeaderLocation, "/v1/me")
	return c.JSON(http.StatusCreated, gen.Registered{Id: reg.UserID, Email: reg.Email, Timezone: reg.Timezone})
}

// Login starts a session and issues its token pair (POST /v1/auth/login).
func (h *Handlers) Login(c echo.Context) error {
	svc, err := h.sessions()
	if err != nil {
		return err
	}
	var in gen.LoginRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	sess, err := svc.Login(c.Request().Context(), commands.Login{
		Email: in.Email, Password: in.Password, UserAgent: c.Request().UserAgent(), IP: edge.ClientIP(c),
		OTP: edge.Deref(in.Otp), RecoveryCode: edge.Deref(in.RecoveryCode),
	})
	if err != nil {
		// Both second-factor answers are ErrUnauthorized too: most
		// specific first.
		err = edge.Reword(err, commands.ErrMFARequired, kindMFARequired,
			edge.Wording{Detail: "this account uses multi-factor authentication: send the login again with otp (or recovery_code)"})
		err = edge.Reword(err, commands.ErrInvalidSecondFactor, edge.KindInvalidCredentials,
			edge.Wording{Detail: "the one-time code or recovery code is wrong or was already used"})
		return edge.Reword(err, domain.ErrUnauthorized, edge.KindInvalidCredentials, edge.Wording{Detail: "email or password is wrong"})
	}
	return c.JSON(http.StatusOK, sessionBody(sess))
}

// sessionBody is the wire form of a token pair (login and refresh).
func sessionBody(s commands.Session) gen.Session {
	return gen.Session{
		AccessToken:  s.AccessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int(s.ExpiresIn / time.Second),
		RefreshToken: s.RefreshToken,
	}
}

func (h *Handlers) sessions() (Sessions, error) {
	if h.deps.Sessions == nil {
		return nil, edge.NotConfigured("sessions")
	}
	return h.deps.Sessions, nil
}

// RefreshSession rotates a refresh token (POST /v1/auth/refresh).
func (h *Handlers) RefreshSession(c echo.Context) error {
	svc, err := h.sessions()
	if err != nil {
		return err
	}
	var in gen.RefreshRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	sess, err := svc.Refresh(c.Request().Context(), commands.Refresh{RefreshToken: in.RefreshToken, IP: edge.ClientIP(c)})
	if err != nil {
		// One answer for unknown, expired, revoked and reused tokens.
		return edge.Reword(err, domain.ErrUnauthorized, edge.KindInvalidRefresh,
			edge.Wording{Detail: "the refresh token is invalid, expired or revoked; log in again"})
	}
	return c.JSON(http.StatusOK, sessionBody(sess))
}

// Logout revokes the caller's current session (POST /v1/auth/logout).
func (h *Handlers) Logout(c echo.Context) error {
	svc, err := h.sessions()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	sid, ok := edge.Session(c.Request().Context())
	if !ok {
		return &edge.Error{Kind: edge.KindUnauthorized, Detail: "the access token names no session", Header: edge.BearerChallenge(true)}
	}
	if err := svc.Logout(c.Request().Context(), uid, sid); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// LogoutAll revokes every session of the caller (POST /v1/auth/logout-all).
func (h *Handlers) LogoutAll(c echo.Context) error {
	svc, err := h.sessions()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	if err := svc.LogoutAll(c.Request().Context(), uid, edge.ClientIP(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ListSessions lists the caller's live sessions (GET /v1/auth/sessions).
func (h *Handlers) ListSessions(c echo.Context) error {
	svc, err := h.sessions()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	sid, _ := edge.Session(c.Request().Context())
	list, err := svc.ListSessions(c.Request().Context(), uid, sid)
	if err != nil {
		return err
	}
	out := gen.SessionList{Sessions: make([]gen.SessionInfo, 0, len(list))}
	for _, si := range list {
		out.Sessions = append(out.Sessions, gen.SessionInfo{
			Id: si.ID, CreatedAt: si.CreatedAt.UTC(), LastUsedAt: si.LastUsedAt.UTC(),
			UserAgent: si.UserAgent, Ip: si.IP, Current: si.Current,
		})
	}
	return c.JSON(http.StatusOK, out)
}

// ChangePassword replaces the caller's password and ends every session
// (POST /v1/me/password).
func (h *Handlers) ChangePassword(c echo.Context) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	var in gen.ChangePasswordRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	if err := h.deps.Accounts.ChangePassword(c.Request().Context(), commands.ChangePassword{
		UserID: uid, CurrentPassword: in.CurrentPassword, NewPassword: in.NewPassword, IP: edge.ClientIP(c),
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
