package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
)

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

// opRefreshSession gets its own 401 wording: it carries no bearer token.
const opRefreshSession = "refreshSession"

// sessionKey is the context key of the caller's session id.
type sessionKey struct{}

// withSession records the session (sid) of the caller's access token.
func withSession(ctx context.Context, sid uuid.UUID) context.Context {
	if sid == uuid.Nil {
		return ctx
	}
	return context.WithValue(ctx, sessionKey{}, sid)
}

// sessionFrom returns the session of the caller's access token.
func sessionFrom(ctx context.Context) (uuid.UUID, bool) {
	sid, ok := ctx.Value(sessionKey{}).(uuid.UUID)
	return sid, ok
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

// clientIP is the caller's address as kept with sessions and audit entries.
// It is echo's RealIP: the configured IPExtractor when the server sits
// behind trusted proxies, otherwise (echo's default) X-Forwarded-For /
// X-Real-IP before the peer address, which a client can spoof; set
// Echo.IPExtractor where the deployment's proxies are known.
func clientIP(c echo.Context) string { return c.RealIP() }

func (s *server) sessions() (Sessions, error) {
	if s.deps.Sessions == nil {
		return nil, &httpError{kind: kindUnavailable, detail: "sessions not configured"}
	}
	return s.deps.Sessions, nil
}

// RefreshSession rotates a refresh token (POST /v1/auth/refresh).
func (s *server) RefreshSession(c echo.Context) error {
	svc, err := s.sessions()
	if err != nil {
		return err
	}
	var in gen.RefreshRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	sess, err := svc.Refresh(c.Request().Context(), commands.Refresh{RefreshToken: in.RefreshToken, IP: clientIP(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sessionBody(sess))
}

// Logout revokes the caller's current session (POST /v1/auth/logout).
func (s *server) Logout(c echo.Context) error {
	svc, err := s.sessions()
	if err != nil {
		return err
	}
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	sid, ok := sessionFrom(c.Request().Context())
	if !ok {
		return &httpError{kind: kindUnauthorized, detail: "the access token names no session", header: bearerChallenge(true)}
	}
	if err := svc.Logout(c.Request().Context(), uid, sid); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// LogoutAll revokes every session of the caller (POST /v1/auth/logout-all).
func (s *server) LogoutAll(c echo.Context) error {
	svc, err := s.sessions()
	if err != nil {
		return err
	}
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	if err := svc.LogoutAll(c.Request().Context(), uid, clientIP(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ListSessions lists the caller's live sessions (GET /v1/auth/sessions).
func (s *server) ListSessions(c echo.Context) error {
	svc, err := s.sessions()
	if err != nil {
		return err
	}
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	sid, _ := sessionFrom(c.Request().Context())
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
func (s *server) ChangePassword(c echo.Context) error {
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	var in gen.ChangePasswordRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	if err := s.deps.Accounts.ChangePassword(c.Request().Context(), commands.ChangePassword{
		UserID: uid, CurrentPassword: in.CurrentPassword, NewPassword: in.NewPassword, IP: clientIP(c),
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
