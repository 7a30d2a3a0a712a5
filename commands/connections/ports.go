package connections

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/provider"
)

// Token is an OAuth token pair as the provider issued it. It only ever
// leaves memory sealed with the user's data key.
type Token struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scopes       []string  `json:"scopes,omitempty"`
}

// Record is one record a provider's API returned, raw.
type Record struct {
	DataType string
	ID       string
	Raw      []byte
}

// Page is one page of a provider's collection; Next is "" on the last.
type Page struct {
	Records []Record
	Next    string
}

// Delivery is one request to /v1/webhooks/{provider}, with the raw body
// exactly as received (signatures are computed over these bytes).
type Delivery struct {
	Method     string
	Query      url.Values
	Header     http.Header
	Body       []byte
	ReceivedAt time.Time
}

// Answer is what a webhook request is answered with (a handshake echoes
// a challenge; a notification is acknowledged).
type Answer struct {
	Status int
	Body   any // encoded as JSON; nil: no body
}

// Client is one provider's OAuth, API and webhook scheme. Implementations
// call only the configured hosts and never log tokens.
//
// Errors: ErrUnauthorized (the API refused the access token),
// ErrGrantRevoked (the token endpoint answered invalid_grant),
// *RateLimited (429), ErrSignature (a delivery that is not the provider's)
// and ErrHandshake (a verification request with the wrong token).
type Client interface {
	// Name is the provider's name.
	Name() provider.Name
	// Scopes are the scopes asked for at consent.
	Scopes() []string
	// PKCE reports whether the provider supports PKCE S256.
	PKCE() bool
	// AuthorizeURL is the consent page for state; challenge is the PKCE
	// S256 challenge ("" without PKCE).
	AuthorizeURL(state, redirectURI, challenge string) string
	// Exchange trades a code for tokens (verifier "" without PKCE).
	Exchange(ctx context.Context, code, redirectURI, verifier string) (Token, error)
	// Refresh trades a refresh token for new tokens; a provider that
	// rotates returns the new refresh token, which must replace the old.
	Refresh(ctx context.Context, refreshToken string) (Token, error)
	// UserID asks the provider who the token's user is.
	UserID(ctx context.Context, accessToken string) (string, error)
	// Revoke ends the grant at the provider where its API allows.
	Revoke(ctx context.Context, t Token) error
	// DataTypes are the record types fetched, in backfill order.
	DataTypes() []string
	// Fetch follows a notification's pointer to the records it names.
	Fetch(ctx context.Context, accessToken string, n provider.Notified) ([]Record, error)
	// List reads one page of dataType over [from, to); page is the
	// provider's page token ("" for the first page).
	List(ctx context.Context, accessToken, dataType string, from, to time.Time, page string) (Page, error)
	// Receive answers a webhook request: a handshake, or a notification
	// whose signature it verified on the raw bytes before parsing them.
	Receive(d Delivery) (Answer, []provider.Notified, error)
}

// Errors of the Client port and of the service.
var (
	// ErrUnauthorized: the provider's API refused the access token (401);
	// the token is refreshed and the call tried once more.
	ErrUnauthorized = errors.New("the provider refused the access token")
	// ErrGrantRevoked: the token endpoint answered invalid_grant: the user
	// revoked access at the provider. Never retried.
	ErrGrantRevoked = errors.New("the provider no longer accepts this connection (access was revoked)")
	// ErrSignature: a webhook delivery that is not signed by the provider,
	// or signed too long ago.
	ErrSignature = errors.New("the webhook delivery is not signed by the provider")
	// ErrHandshake: a verification request with the wrong token.
	ErrHandshake = errors.New("the verification token does not match")
	// ErrNotConfigured: a provider this server has no client id for.
	ErrNotConfigured = fmt.Errorf("this provider is not configured on this server: %w", domain.ErrNotFound)
	// ErrStateInvalid: an unknown, spent, expired or foreign state.
	ErrStateInvalid = errors.New("the authorization request is unknown, used or expired")
	// ErrNotConnected: the user has no live connection to the provider.
	ErrNotConnected = fmt.Errorf("not connected to this provider: %w", domain.ErrNotFound)
)

// RateLimited is a 429: try again after RetryAfter.
type RateLimited struct{ RetryAfter time.Duration }

func (r *RateLimited) Error() string {
	return fmt.Sprintf("the provider asked to slow down (retry after %s)", r.RetryAfter)
}

// State is a pending authorization: who asked to connect what, until
// when. Only the SHA-256 of the state value is stored.
type State struct {
	Hash      []byte
	UserID    uuid.UUID
	Provider  provider.Name
	Verifier  string // PKCE verifier, "" without PKCE
	ExpiresAt time.Time
}

// Connection is the command-side record of one user's link to one
// provider: sealed tokens, status and sync progress.
type Connection struct {
	UserID         uuid.UUID
	Provider       provider.Name
	ProviderUserID string
	Status         provider.Status
	// SealedTokens is the Token as JSON sealed with the user's data key
	// (nil once revoked: the tokens are destroyed).
	SealedTokens []byte
	ConnectedAt  time.Time
	LastSyncAt   time.Time // zero: never
	LastDataAt   time.Time // zero: never
	// The backfill covers [BackfillFrom, BackfillTo); DoneUntil is how far
	// it got. Cursor is the data type being listed and Page the provider's
	// page token within it, so a restart resumes mid-type.
	BackfillFrom, BackfillTo, DoneUntil time.Time
	Cursor, Page                        string
	// LastError is the last failure in words a user understands ("" after
	// a success).
	LastError string
	// Failures counts consecutive failed fetches.
	Failures int
}

// Store keeps states and connections (command-side, in PostgreSQL; both
// tables carry user_id, so erasure deletes them).
type Store interface {
	// SaveState stores a pending authorization.
	SaveState(ctx context.Context, s State) error
	// TakeState deletes and returns the state with hash, if it has not
	// expired at now; ErrStateInvalid otherwise. Spent in one statement,
	// so of two callbacks with one state at most one gets it.
	TakeState(ctx context.Context, hash []byte, now time.Time) (State, error)
	// Save inserts a connection or updates its status and progress. The
	// sealed tokens are written only when the row is new (afterwards only
	// by SaveTokens), and a revoked connection is changed only by a new
	// connection (a later ConnectedAt): a worker holding a stale copy can
	// neither put back a spent refresh token nor revive a revoked link.
	Save(ctx context.Context, c Connection) error
	// SaveTokens replaces the sealed tokens (nil destroys them).
	SaveTokens(ctx context.Context, user uuid.UUID, p provider.Name, sealed []byte) error
	// Get returns the user's connection to p; domain.ErrNotFound if none.
	Get(ctx context.Context, user uuid.UUID, p provider.Name) (Connection, error)
	// ByProviderUser finds the connection of a provider's user id;
	// domain.ErrNotFound if none.
	ByProviderUser(ctx context.Context, p provider.Name, providerUserID string) (Connection, error)
	// List returns the user's connections.
	List(ctx context.Context, user uuid.UUID) ([]Connection, error)
	// Backfilling lists connections whose backfill has not reached its
	// end (status connected, syncing or error with tokens).
	Backfilling(ctx context.Context) ([]Connection, error)
}

// Sealer seals small per-user secrets with the user's data key
// (eventstore.Keyring), so erasure makes stored tokens unreadable at once.
type Sealer interface {
	Seal(ctx context.Context, userID, id uuid.UUID, typ string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, userID, id uuid.UUID, typ string, sealed []byte) ([]byte, error)
}
