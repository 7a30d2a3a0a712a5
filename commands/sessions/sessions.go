// Package sessions runs logins and the sessions they open: checking
// credentials (and, through the SecondFactor port, a second factor),
// refresh-token rotation with reuse detection, logout, logout everywhere
// and the session list. It keeps synchronous command-side state in
// PostgreSQL (refresh-token families) and appends no events.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// DefaultRefreshTTL is the absolute lifetime of a session (a refresh-token
// family) when Deps.RefreshTTL is zero: rotation never extends it, so a
// stolen session dies at the latest this long after the login.
const DefaultRefreshTTL = 30 * 24 * time.Hour

// refreshTokenBytes is the entropy of a refresh token: 256 bits, twice the
// 128 RFC 9700 asks for, so storing only a SHA-256 hash is enough.
const refreshTokenBytes = 32

// maxRefreshTokenLen bounds what is hashed and looked up at all; real tokens
// are 43 characters.
const maxRefreshTokenLen = 256

// maxUserAgentLen truncates the user agent kept for the session list.
const maxUserAgentLen = 256

// TokenIssuer issues access tokens. sessionID becomes the token's sid, so
// revoking the session revokes the token; mfa says the session was opened
// with a second factor (the token's amr claim), which admin routes require.
type TokenIssuer interface {
	Issue(userID uuid.UUID, role string, sessionID uuid.UUID, mfa bool) (string, time.Duration, error)
}

// SessionStore keeps sessions and refresh-token hashes (PostgreSQL in
// adapters/postgres). Every revocation must reach every access-token
// verifier when it commits, so tokens of a revoked session stop working at
// once on every instance.
type SessionStore interface {
	// Create stores a new session; domain.ErrUnauthorized when the account
	// is no longer active, its password hash is no longer s.PasswordHash,
	// or s.MFA is false while the account has MFA on.
	Create(ctx context.Context, s commands.NewSession) error
	// Rotate exchanges the token hashed as oldHash for newHash in one
	// transaction with the token row locked: of two concurrent rotations of
	// the same token exactly one is Rotated, the other is RotationReused.
	Rotate(ctx context.Context, oldHash, newHash []byte) (commands.Rotation, error)
	// Revoke ends one session of userID (no error if it is not theirs or
	// already ended).
	Revoke(ctx context.Context, userID, sessionID uuid.UUID, reason string) error
	// RevokeAll ends every session of userID and returns how many were live.
	RevokeAll(ctx context.Context, userID uuid.UUID, reason string) (int, error)
	// List returns the live (not revoked, not expired) sessions, newest first.
	List(ctx context.Context, userID uuid.UUID) ([]commands.SessionInfo, error)
}

// SecondFactor decides the MFA part of a login whose password was right
// (commands/mfa implements it; cmd wires it in). It is a port so sessions
// know nothing of TOTP secrets and recovery codes.
type SecondFactor interface {
	// CheckLogin returns false for an account without MFA; with MFA it
	// needs a current, unused TOTP code (otp) or an unused recovery code
	// and returns true, or an error wrapping domain.ErrUnauthorized (a
	// missing or a wrong code) for the HTTP layer to tell apart.
	CheckLogin(ctx context.Context, userID uuid.UUID, otp, recoveryCode, ip string) (bool, error)
}

// Deps are what sessions need. Accounts, Passwords, Tokens, Store and
// EmailIndex are required.
type Deps struct {
	// Accounts holds the credentials a login checks.
	Accounts commands.Accounts
	// Passwords verifies (and rehashes) passwords.
	Passwords commands.PasswordHasher
	// Tokens issues access tokens.
	Tokens TokenIssuer
	// Store keeps sessions and refresh-token hashes.
	Store SessionStore
	// EmailIndex keys the lookup of a login's address.
	EmailIndex commands.EmailIndex
	// SecondFactor checks MFA at login; nil logs in without a second factor
	// (MFA off).
	SecondFactor SecondFactor
	// RefreshTTL is the absolute lifetime of a session; zero means
	// DefaultRefreshTTL.
	RefreshTTL time.Duration
	// Audit records logins, failed logins and refresh-token reuse; nil
	// means auditing is not configured.
	Audit commands.Audit
	// Logger reports audit entries that could not be stored; nil discards.
	Logger *slog.Logger
	// Now is the clock of session expiry and audit entries.
	Now commands.Clock
}

// Service runs logins and session commands.
type Service struct{ d Deps }

// New checks d and returns the service; a missing required dependency is
// an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("sessions", "Accounts", d.Accounts, "Passwords", d.Passwords, "Tokens", d.Tokens,
		"Store", d.Store, "EmailIndex", d.EmailIndex); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// secondFactor is SecondFactor.CheckLogin, or no second factor when MFA
// is off.
func (s *Service) secondFactor(ctx context.Context, userID uuid.UUID, cmd commands.Login) (bool, error) {
	if s.d.SecondFactor == nil {
		return false, nil
	}
	return s.d.SecondFactor.CheckLogin(ctx, userID, cmd.OTP, cmd.RecoveryCode, cmd.IP)
}

// audit records a security event (see commands.RecordAudit).
func (s *Service) audit(ctx context.Context, e commands.AuditEntry) {
	commands.RecordAudit(ctx, s.d.Audit, s.d.Logger, s.d.Now.Now(), e)
}

// errInvalidRefresh is the one answer for unknown, expired, revoked and
// reused refresh tokens alike, so the response is no oracle.
var errInvalidRefresh = fmt.Errorf("invalid refresh token: %w", domain.ErrUnauthorized)

// Login checks credentials against the command-side account (so it works
// right after registration), starts a session and issues its token pair.
// Unknown addresses take as long as wrong passwords and get the same error.
func (s *Service) Login(ctx context.Context, cmd commands.Login) (commands.Session, error) {
	acc, err := s.d.Accounts.ByEmailKey(ctx, s.d.EmailIndex.Key(cmd.Email))
	if errors.Is(err, domain.ErrNotFound) {
		s.d.Passwords.DummyVerify(cmd.Password)
		s.audit(ctx, commands.AuditEntry{Action: commands.AuditLoginFailed, IP: cmd.IP, Detail: map[string]string{"reason": "unknown_account"}})
		return commands.Session{}, fmt.Errorf("invalid email or password: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return commands.Session{}, err
	}
	ok, rehash, err := s.d.Passwords.Verify(cmd.Password, acc.PasswordHash)
	if err != nil || !ok {
		s.audit(ctx, commands.AuditEntry{Action: commands.AuditLoginFailed, Subject: acc.UserID, IP: cmd.IP, Detail: map[string]string{"reason": "wrong_password"}})
		return commands.Session{}, fmt.Errorf("invalid email or password: %w", domain.ErrUnauthorized)
	}
	if rehash {
		if nh, err := s.d.Passwords.Hash(cmd.Password); err == nil {
			if s.d.Accounts.UpdatePasswordHash(ctx, acc.UserID, acc.PasswordHash, nh) == nil {
				acc.PasswordHash = nh
			}
		}
	}
	mfa, err := s.secondFactor(ctx, acc.UserID, cmd)
	if err != nil {
		return commands.Session{}, err
	}
	sess, err := s.startSession(ctx, acc, cmd.UserAgent, cmd.IP, mfa)
	if err != nil {
		return commands.Session{}, err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditLogin, Actor: acc.UserID, Subject: acc.UserID, IP: cmd.IP,
		Detail: map[string]string{"session_id": sess.SessionID.String()}})
	return sess, nil
}

func (s *Service) refreshTTL() time.Duration {
	if s.d.RefreshTTL > 0 {
		return s.d.RefreshTTL
	}
	return DefaultRefreshTTL
}

// newRefreshToken returns a fresh opaque token and its stored hash.
func newRefreshToken() (string, []byte, error) {
	b := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("refresh token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashRefreshToken(tok), nil
}

// hashRefreshToken is what the store keys tokens by.
func hashRefreshToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// startSession creates a session for a verified login and issues its pair.
func (s *Service) startSession(ctx context.Context, acc commands.Account, userAgent, ip string, mfa bool) (commands.Session, error) {
	tok, hash, err := newRefreshToken()
	if err != nil {
		return commands.Session{}, err
	}
	if len(userAgent) > maxUserAgentLen {
		userAgent = truncateUTF8(userAgent, maxUserAgentLen)
	}
	sid := uuid.New()
	if err := s.d.Store.Create(ctx, commands.NewSession{
		ID: sid, UserID: acc.UserID, TokenHash: hash, ExpiresAt: s.d.Now.Now().Add(s.refreshTTL()),
		UserAgent: userAgent, IP: ip, PasswordHash: acc.PasswordHash, MFA: mfa,
	}); err != nil {
		return commands.Session{}, err
	}
	access, ttl, err := s.d.Tokens.Issue(acc.UserID, acc.Role, sid, mfa)
	if err != nil {
		return commands.Session{}, err
	}
	return commands.Session{AccessToken: access, ExpiresIn: ttl, RefreshToken: tok, SessionID: sid, UserID: acc.UserID}, nil
}

// Refresh rotates a refresh token (RFC 9700 §4.14): the presented token is
// used up and a new pair issued in the same session. Presenting a token
// that was already exchanged is reuse: the whole session is revoked (so
// whoever holds the newer token is logged out too) and an audit entry is
// written. Unknown, expired, revoked and reused tokens all get the same
// domain.ErrUnauthorized.
func (s *Service) Refresh(ctx context.Context, cmd commands.Refresh) (commands.Session, error) {
	if cmd.RefreshToken == "" || len(cmd.RefreshToken) > maxRefreshTokenLen {
		return commands.Session{}, errInvalidRefresh
	}
	tok, newHash, err := newRefreshToken()
	if err != nil {
		return commands.Session{}, err
	}
	rot, err := s.d.Store.Rotate(ctx, hashRefreshToken(cmd.RefreshToken), newHash)
	if err != nil {
		return commands.Session{}, err
	}
	switch rot.Outcome {
	case commands.Rotated:
	case commands.RotationReused:
		s.audit(ctx, commands.AuditEntry{Action: commands.AuditRefreshReuse, Subject: rot.UserID, IP: cmd.IP,
			Detail: map[string]string{"session_id": rot.SessionID.String()}})
		return commands.Session{}, errInvalidRefresh
	default:
		return commands.Session{}, errInvalidRefresh
	}
	acc, err := s.d.Accounts.ByID(ctx, rot.UserID)
	if errors.Is(err, domain.ErrNotFound) {
		return commands.Session{}, errInvalidRefresh
	}
	if err != nil {
		return commands.Session{}, err
	}
	access, ttl, err := s.d.Tokens.Issue(acc.UserID, acc.Role, rot.SessionID, rot.MFA)
	if err != nil {
		return commands.Session{}, err
	}
	return commands.Session{AccessToken: access, ExpiresIn: ttl, RefreshToken: tok, SessionID: rot.SessionID, UserID: acc.UserID}, nil
}

// Logout ends the caller's current session (the access token's sid): its
// refresh token stops working and access tokens carrying that sid are
// rejected at once on every instance.
func (s *Service) Logout(ctx context.Context, userID, sessionID uuid.UUID) error {
	return s.d.Store.Revoke(ctx, userID, sessionID, commands.RevokeLogout)
}

// LogoutAll ends every session of the caller, this one included.
func (s *Service) LogoutAll(ctx context.Context, userID uuid.UUID, ip string) error {
	n, err := s.revokeAll(ctx, userID, commands.RevokeLogoutAll)
	if err != nil {
		return err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditLogoutAll, Actor: userID, Subject: userID, IP: ip,
		Detail: map[string]string{"sessions": fmt.Sprint(n)}})
	return nil
}

// RevokeAll ends every session of userID for reason: refresh tokens stop
// working and access tokens issued before are rejected at once on every
// instance. Password change, MFA changes and erasure use it.
func (s *Service) RevokeAll(ctx context.Context, userID uuid.UUID, reason string) error {
	_, err := s.revokeAll(ctx, userID, reason)
	return err
}

func (s *Service) revokeAll(ctx context.Context, userID uuid.UUID, reason string) (int, error) {
	return s.d.Store.RevokeAll(ctx, userID, reason)
}

// ListSessions lists the caller's live sessions; current marks the one whose
// access token made the request.
func (s *Service) ListSessions(ctx context.Context, userID, current uuid.UUID) ([]commands.SessionInfo, error) {
	list, err := s.d.Store.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Current = list[i].ID == current
	}
	return list, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
