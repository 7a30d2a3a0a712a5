package httpapi

import (
	"context"

	"github.com/google/uuid"

	"github.com/biosync/biosync/adapters/httpapi/accounts"
	"github.com/biosync/biosync/adapters/httpapi/edge"
)

// TokenVerifier checks access tokens. It is a port so JWT details (keys,
// algorithms, audiences) live in the auth adapter only.
type TokenVerifier interface {
	// VerifyAccess returns the user the token was issued to and its
	// session (sid), or domain.ErrUnauthorized (also for a token of a
	// revoked session), or domain.ErrUnavailable when revocation cannot be
	// checked.
	VerifyAccess(token string) (userID, sessionID uuid.UUID, err error)
}

// RoleVerifier tells the role of an access token's bearer. It is a port so
// the admin routes learn the role claim without the HTTP layer decoding
// JWTs; it is separate from TokenVerifier so that port stays one method.
type RoleVerifier interface {
	// VerifyRole checks token like TokenVerifier.VerifyAccess and returns
	// its user and role claim (e.g. RoleAdmin) and whether its session was
	// opened with a second factor (amr has "otp"), or
	// domain.ErrUnauthorized.
	VerifyRole(token string) (userID uuid.UUID, role string, mfa bool, err error)
}

// RoleAdmin is the role claim that opens the /v1/admin routes (operations
// marked `x-biosync-role: admin` in the spec).
const RoleAdmin = "admin"

// Recovery is accounts.Recovery under the name the program's wiring
// already uses for the mail-dependent account port.
type Recovery = accounts.Recovery

// CorrelationID returns the id of the request that started the work in ctx
// ("" outside a request); see edge.CorrelationID. Commands store it in the
// event envelope so one id follows a request through the log, the
// projectors and the logs.
func CorrelationID(ctx context.Context) string { return edge.CorrelationID(ctx) }
