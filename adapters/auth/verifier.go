package auth

import (
	"errors"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
)

// RevocationChecker tells whether a session may carry a user's tokens. It is
// consulted on every authenticated request, so implementations answer from
// memory while they are sure their view is current
// (adapters/postgres.Revocations).
type RevocationChecker interface {
	// Revoked reports whether session sid cannot carry a token of user:
	// it was revoked, does not exist, or belongs to someone else (the
	// session check is a second line behind the signature). An error
	// means the answer is unknown (it wraps domain.ErrUnavailable);
	// callers must then refuse the token rather than guess.
	Revoked(sid, user uuid.UUID) (bool, error)
}

// Verifier checks access tokens completely: the JWT itself (Tokens.Verify)
// and that its session was not revoked (logout, logout everywhere, password
// change). It is what the HTTP API uses; Tokens alone would keep accepting
// the tokens of a logged-out session until they expire.
type Verifier struct {
	Tokens      *Tokens
	Revocations RevocationChecker
}

// Verify returns the claims of a valid token of a live session. A revoked
// session wraps domain.ErrUnauthorized; an unknown revocation state wraps
// domain.ErrUnavailable.
func (v Verifier) Verify(token string) (Claims, error) {
	if v.Tokens == nil || v.Revocations == nil {
		return Claims{}, errors.New("auth: Verifier needs Tokens and Revocations")
	}
	c, err := v.Tokens.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	revoked, err := v.Revocations.Revoked(c.SessionID, c.UserID)
	if err != nil {
		if !errors.Is(err, domain.ErrUnavailable) {
			err = errors.Join(domain.ErrUnavailable, err)
		}
		return Claims{}, err
	}
	if revoked {
		return Claims{}, unauthorized("session revoked or not the token's")
	}
	return c, nil
}

// VerifyAccess returns the user and session of a valid access token.
func (v Verifier) VerifyAccess(token string) (userID, sessionID uuid.UUID, err error) {
	c, err := v.Verify(token)
	return c.UserID, c.SessionID, err
}

// VerifyRole returns the user and role claim of a valid access token and
// whether its session was opened with a second factor (amr has "otp").
func (v Verifier) VerifyRole(token string) (userID uuid.UUID, role string, mfa bool, err error) {
	c, err := v.Verify(token)
	return c.UserID, c.Role, c.MFA(), err
}
