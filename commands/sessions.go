package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
)

// DefaultRefreshTTL is the absolute lifetime of a session (a refresh-token
// family) when Handlers.RefreshTTL is zero: rotation never extends it, so a
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

// Revocation reasons stored with a revoked session, for support and audit.
const (
	RevokeLogout         = "logout"
	RevokeLogoutAll      = "logout_all"
	RevokeReuse          = "refresh_reuse"
	RevokePasswordChange = "password_change"
	RevokeMFAChange      = "mfa_change"
)

// NewSession is one login: a refresh-token family and its first token.
type NewSession struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	TokenHash []byte
	ExpiresAt time.Time
	UserAgent string
	IP        string
	// PasswordHash is the hash the login verified. The session is created
	// only if it is still the account's current hash, so a login racing a
	// password change cannot outlive it.
	PasswordHash string
	// MFA records that the login presented a second factor. A session
	// without it is created only while the account has MFA off, so a login
	// racing an MFA enrolment cannot outlive it.
	MFA bool
}

// RotationOutcome says what presenting a refresh token did.
type RotationOutcome int

const (
	// RotationInvalid: unknown, expired or revoked; nothing changed.
	RotationInvalid RotationOutcome = iota
	// Rotated: the token was current; it is now used and the new one issued.
	Rotated
	// RotationReused: the token had already been exchanged; its whole
	// family is now revoked (RFC 9700 §4.14.2).
	RotationReused
)

// Rotation is the result of SessionStore.Rotate.
type Rotation struct {
	Outcome   RotationOutcome
	UserID    uuid.UUID
	SessionID uuid.UUID
	// MFA is whether the session was opened with a second factor; the new
	// access token keeps saying so.
	MFA bool
}

// SessionInfo is one live session as the session list shows it.
type SessionInfo struct {
	ID         uuid.UUID
	CreatedAt  time.Time
	LastUsedAt time.Time
	UserAgent  string
	IP         string
	Current    bool
}

// SessionStore keeps sessions and refresh-token hashes (PostgreSQL in
// adapters/postgres). Every revocation must reach every access-token
// verifier when it commits, so tokens of a revoked session stop working at
// once on every instance.
type SessionStore interface {
	// Create stores a new session; domain.ErrUnauthorized when the account
	// is no longer active, its password hash is no longer s.PasswordHash,
	// or s.MFA is false while the account has MFA on.
	Create(ctx context.Context, s NewSession) error
	// Rotate exchanges the token hashed as oldHash for newHash in one
	// transaction with the token row locked: of two concurrent rotations of
	// the same token exactly one is Rotated, the other is RotationReused.
	Rotate(ctx context.Context, oldHash, newHash []byte) (Rotation, error)
	// Revoke ends one session of userID (no error if it is not theirs or
	// already ended).
	Revoke(ctx context.Context, userID, sessionID uuid.UUID, reason string) error
	// RevokeAll ends every session of userID and returns how many were live.
	RevokeAll(ctx context.Context, userID uuid.UUID, reason string) (int, error)
	// ChangePassword replaces oldHash by newHash, revokes every session
	// and retires the user's unused PurposeResetPassword tokens (a reset
	// link mailed before the change must not undo it) in the same
	// transaction; domain.ErrConflict when the stored hash is no longer
	// oldHash (a concurrent change won).
	ChangePassword(ctx context.Context, userID uuid.UUID, oldHash, newHash string) error
	// List returns the live (not revoked, not expired) sessions, newest first.
	List(ctx context.Context, userID uuid.UUID) ([]SessionInfo, error)
}

// Refresh exchanges a refresh token for a new pair.
type Refresh struct {
	RefreshToken string
	IP           string
}

// ChangePassword replaces the caller's password after re-checking it.
type ChangePassword struct {
	UserID          uuid.UUID
	CurrentPassword string
	NewPassword     string
	IP              string
}

// errInvalidRefresh is the one answer for unknown, expired, revoked and
// reused refresh tokens alike, so the response is no oracle.
var errInvalidRefresh = fmt.Errorf("invalid refresh token: %w", domain.ErrUnauthorized)

func (h *Handlers) refreshTTL() time.Duration {
	if h.RefreshTTL > 0 {
		return h.RefreshTTL
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
func (h *Handlers) startSession(ctx context.Context, acc Account, userAgent, ip string, mfa bool) (Session, error) {
	if h.Sessions == nil {
		return Session{}, errors.New("commands: no session store configured")
	}
	tok, hash, err := newRefreshToken()
	if err != nil {
		return Session{}, err
	}
	if len(userAgent) > maxUserAgentLen {
		userAgent = truncateUTF8(userAgent, maxUserAgentLen)
	}
	sid := uuid.New()
	if err := h.Sessions.Create(ctx, NewSession{
		ID: sid, UserID: acc.UserID, TokenHash: hash, ExpiresAt: h.now().Add(h.refreshTTL()),
		UserAgent: userAgent, IP: ip, PasswordHash: acc.PasswordHash, MFA: mfa,
	}); err != nil {
		return Session{}, err
	}
	access, ttl, err := h.Tokens.Issue(acc.UserID, acc.Role, sid, mfa)
	if err != nil {
		return Session{}, err
	}
	return Session{AccessToken: access, ExpiresIn: ttl, RefreshToken: tok, SessionID: sid, UserID: acc.UserID}, nil
}

// Refresh rotates a refresh token (RFC 9700 §4.14): the presented token is
// used up and a new pair issued in the same session. Presenting a token
// that was already exchanged is reuse: the whole session is revoked (so
// whoever holds the newer token is logged out too) and an audit entry is
// written. Unknown, expired, revoked and reused tokens all get the same
// domain.ErrUnauthorized.
func (h *Handlers) Refresh(ctx context.Context, cmd Refresh) (Session, error) {
	if h.Sessions == nil {
		return Session{}, errors.New("commands: no session store configured")
	}
	if cmd.RefreshToken == "" || len(cmd.RefreshToken) > maxRefreshTokenLen {
		return Session{}, errInvalidRefresh
	}
	tok, newHash, err := newRefreshToken()
	if err != nil {
		return Session{}, err
	}
	rot, err := h.Sessions.Rotate(ctx, hashRefreshToken(cmd.RefreshToken), newHash)
	if err != nil {
		return Session{}, err
	}
	switch rot.Outcome {
	case Rotated:
	case RotationReused:
		h.audit(ctx, AuditEntry{Action: AuditRefreshReuse, Subject: rot.UserID, IP: cmd.IP,
			Detail: map[string]string{"session_id": rot.SessionID.String()}})
		return Session{}, errInvalidRefresh
	default:
		return Session{}, errInvalidRefresh
	}
	acc, err := h.Accounts.ByID(ctx, rot.UserID)
	if errors.Is(err, domain.ErrNotFound) {
		return Session{}, errInvalidRefresh
	}
	if err != nil {
		return Session{}, err
	}
	access, ttl, err := h.Tokens.Issue(acc.UserID, acc.Role, rot.SessionID, rot.MFA)
	if err != nil {
		return Session{}, err
	}
	return Session{AccessToken: access, ExpiresIn: ttl, RefreshToken: tok, SessionID: rot.SessionID, UserID: acc.UserID}, nil
}

// Logout ends the caller's current session (the access token's sid): its
// refresh token stops working and access tokens carrying that sid are
// rejected at once on every instance.
func (h *Handlers) Logout(ctx context.Context, userID, sessionID uuid.UUID) error {
	if h.Sessions == nil {
		return errors.New("commands: no session store configured")
	}
	return h.Sessions.Revoke(ctx, userID, sessionID, RevokeLogout)
}

// LogoutAll ends every session of the caller, this one included.
func (h *Handlers) LogoutAll(ctx context.Context, userID uuid.UUID, ip string) error {
	n, err := h.revokeAll(ctx, userID, RevokeLogoutAll)
	if err != nil {
		return err
	}
	h.audit(ctx, AuditEntry{Action: AuditLogoutAll, Actor: userID, Subject: userID, IP: ip,
		Detail: map[string]string{"sessions": fmt.Sprint(n)}})
	return nil
}

// RevokeAll ends every session of userID for reason: refresh tokens stop
// working and access tokens issued before are rejected at once on every
// instance. Password change, MFA changes and erasure use it.
func (h *Handlers) RevokeAll(ctx context.Context, userID uuid.UUID, reason string) error {
	_, err := h.revokeAll(ctx, userID, reason)
	return err
}

func (h *Handlers) revokeAll(ctx context.Context, userID uuid.UUID, reason string) (int, error) {
	if h.Sessions == nil {
		return 0, errors.New("commands: no session store configured")
	}
	return h.Sessions.RevokeAll(ctx, userID, reason)
}

// ListSessions lists the caller's live sessions; current marks the one whose
// access token made the request.
func (h *Handlers) ListSessions(ctx context.Context, userID, current uuid.UUID) ([]SessionInfo, error) {
	if h.Sessions == nil {
		return nil, errors.New("commands: no session store configured")
	}
	list, err := h.Sessions.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Current = list[i].ID == current
	}
	return list, nil
}

// ChangePassword re-checks the current password, applies the password
// policy to the new one, stores its hash, revokes every session (this one
// included: the client logs in again with the new password) and retires
// reset links mailed before (SessionStore.ChangePassword). A wrong
// current password is a *domain.ValidationError on /current_password: the
// caller is authenticated, so 401 would wrongly say the token is bad.
func (h *Handlers) ChangePassword(ctx context.Context, cmd ChangePassword) error {
	if h.Sessions == nil {
		return errors.New("commands: no session store configured")
	}
	acc, err := h.Accounts.ByID(ctx, cmd.UserID)
	if errors.Is(err, domain.ErrNotFound) {
		return fmt.Errorf("account: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return err
	}
	ok, _, err := h.Passwords.Verify(cmd.CurrentPassword, acc.PasswordHash)
	if err != nil || !ok {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/current_password", Detail: "does not match the current password"}}}
	}
	v := &domain.ValidationError{}
	if h.CheckPassword != nil {
		var pv *domain.ValidationError
		if err := h.CheckPassword(cmd.NewPassword); errors.As(err, &pv) {
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
	hash, err := h.Passwords.Hash(cmd.NewPassword)
	if err != nil {
		return err
	}
	if err := h.Sessions.ChangePassword(ctx, cmd.UserID, acc.PasswordHash, hash); err != nil {
		return err
	}
	h.audit(ctx, AuditEntry{Action: AuditPasswordChange, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return nil
}

// audit records a security event. The event already happened, so a failing
// audit store is logged loudly but never turns the command into an error
// (a login must not fail because the audit log is slow); a nil Audit means
// auditing is not configured.
func (h *Handlers) audit(ctx context.Context, e AuditEntry) {
	if h.Audit == nil {
		return
	}
	if e.At.IsZero() {
		e.At = h.now().UTC()
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := h.Audit.Record(actx, e); err != nil && h.Logger != nil {
		h.Logger.Error("audit entry not recorded", "action", e.Action, "subject", e.Subject, "err", err)
	}
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
