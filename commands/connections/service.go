package connections

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/eventstore"
)

// Defaults applied by New to zero Deps fields.
const (
	// DefaultStateTTL is how long an authorization request may take.
	DefaultStateTTL = 10 * time.Minute
	// DefaultBackfill is the history fetched on connect.
	DefaultBackfill = 30 * 24 * time.Hour
	// refreshAhead refreshes a token this long before it expires.
	refreshAhead = time.Minute
)

// tokenType is the associated data of sealed tokens (with the user id and
// a fixed id), so a sealed token cannot be passed off as another secret.
const tokenType = "connections.tokens"

// tokenID is the id half of the sealed tokens' associated data.
var tokenID = uuid.MustParse("3c1f3b0a-6f0e-5d51-9c55-70b3e1d0c0a1")

// Deps are what connections need; Log, Store, Sealer and PublicURL are
// required. A provider is configured when Clients has it.
type Deps struct {
	// Log is where connection and provider events are appended.
	Log eventstore.Appender
	// Store keeps states and connections.
	Store Store
	// Sealer seals tokens with the user's data key.
	Sealer Sealer
	// Clients are the configured providers by name.
	Clients map[provider.Name]Client
	// PublicURL is the base of redirect URIs ("https://api.example.com").
	PublicURL string
	// StateTTL bounds an authorization (DefaultStateTTL).
	StateTTL time.Duration
	// Backfill is the history fetched on connect (DefaultBackfill).
	Backfill time.Duration
	// Envelope stamps appended events.
	Envelope commands.Envelope
	// Now is the clock.
	Now commands.Clock
	// Logger reports failures (never tokens or provider user ids); nil
	// discards.
	Logger *slog.Logger
	// Data deletes the samples a connection delivered when a disconnect
	// asks for it (commands/samples); nil answers such a disconnect with
	// ErrDeleteDataUnsupported.
	Data DataDeleter
}

// DataDeleter removes a user's samples and sleep sessions of one source
// over a range (samples.deleted), the same command as DELETE
// /v1/me/samples.
type DataDeleter interface {
	DeleteSamples(ctx context.Context, cmd commands.DeleteSamples) (commands.Accepted, error)
}

// Service runs connections.
type Service struct {
	d Deps
	// refreshing serialises token refreshes per connection in this
	// process (user/provider -> *sync.Mutex): single-use refresh tokens
	// must not be spent twice.
	refreshing sync.Map
	// backfilling: one backfill per connection at a time in this process
	// (user/provider -> *sync.Mutex).
	backfilling sync.Map
	// unknownUsers counts notifications naming a provider user we do not
	// know (acknowledged, never an error the provider retries forever).
	unknownUsers atomic.Int64
}

// New checks d and returns the service.
func New(d Deps) (*Service, error) {
	if err := commands.Required("connections", "Log", d.Log, "Store", d.Store, "Sealer", d.Sealer); err != nil {
		return nil, err
	}
	if d.PublicURL == "" {
		return nil, errors.New("connections: PublicURL is required")
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	if d.StateTTL <= 0 {
		d.StateTTL = DefaultStateTTL
	}
	if d.Backfill <= 0 {
		d.Backfill = DefaultBackfill
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Envelope.Now == nil {
		d.Envelope.Now = d.Now
	}
	return &Service{d: d}, nil
}

// ProviderInfo is one row of GET /v1/providers.
type ProviderInfo struct {
	Name       provider.Name
	Configured bool
	Scopes     []string
}

// Providers lists every provider, whether it is configured (has a
// client) and the scopes it asks for.
func (s *Service) Providers() []ProviderInfo {
	var out []ProviderInfo
	for _, p := range provider.All() {
		c, ok := s.d.Clients[p]
		info := ProviderInfo{Name: p, Configured: ok, Scopes: provider.Scopes(p)}
		if ok {
			info.Scopes = c.Scopes()
		}
		out = append(out, info)
	}
	return out
}

func (s *Service) client(p provider.Name) (Client, error) {
	c, ok := s.d.Clients[p]
	if !ok {
		return nil, ErrNotConfigured
	}
	return c, nil
}

// RedirectURI is where the provider sends the user back.
func (s *Service) RedirectURI(p provider.Name) string {
	return s.d.PublicURL + "/v1/connections/" + string(p) + "/callback"
}

// Authorization is the answer of POST /v1/connections/{provider}.
type Authorization struct {
	AuthorizeURL string
	State        string
	ExpiresAt    time.Time
}

// Connect starts an authorization: a fresh single-use state bound to the
// user (only its hash is stored), and PKCE where the provider supports it.
func (s *Service) Connect(ctx context.Context, user uuid.UUID, p provider.Name) (Authorization, error) {
	c, err := s.client(p)
	if err != nil {
		return Authorization{}, err
	}
	state := random()
	st := State{Hash: hash(state), UserID: user, Provider: p, ExpiresAt: s.d.Now.Now().Add(s.d.StateTTL).UTC().Truncate(time.Microsecond)}
	challenge := ""
	if c.PKCE() {
		st.Verifier = random() + random() // 86 characters, within RFC 7636's 43..128
		sum := sha256.Sum256([]byte(st.Verifier))
		challenge = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if err := s.d.Store.SaveState(ctx, st); err != nil {
		return Authorization{}, err
	}
	return Authorization{AuthorizeURL: c.AuthorizeURL(state, s.RedirectURI(p), challenge), State: state, ExpiresAt: st.ExpiresAt}, nil
}

// Callback completes an authorization: the state is spent (unknown, used,
// expired or another provider's: ErrStateInvalid, nothing connected), the
// code exchanged, the provider's user id learnt, the tokens sealed and
// stored, connection.established appended, and the backfill scheduled
// (the worker picks up connections whose backfill has not reached its end).
func (s *Service) Callback(ctx context.Context, p provider.Name, code, state string) (uuid.UUID, error) {
	c, err := s.client(p)
	if err != nil {
		return uuid.Nil, err
	}
	if state == "" || code == "" {
		return uuid.Nil, ErrStateInvalid
	}
	now := s.d.Now.Now().UTC()
	st, err := s.d.Store.TakeState(ctx, hash(state), now)
	if err != nil {
		return uuid.Nil, err
	}
	if st.Provider != p {
		return uuid.Nil, ErrStateInvalid
	}
	tok, err := c.Exchange(ctx, code, s.RedirectURI(p), st.Verifier)
	if err != nil {
		return st.UserID, fmt.Errorf("code exchange: %w", err)
	}
	puid, err := c.UserID(ctx, tok.AccessToken)
	if err != nil {
		return st.UserID, fmt.Errorf("provider user id: %w", err)
	}
	if other, err := s.d.Store.ByProviderUser(ctx, p, puid); err == nil && other.UserID != st.UserID && other.Status != provider.StatusRevoked {
		return st.UserID, errors.New("this provider account is already connected to another BioSync account")
	}
	sealed, err := s.seal(ctx, st.UserID, tok)
	if err != nil {
		return st.UserID, err
	}
	if len(tok.Scopes) == 0 {
		tok.Scopes = c.Scopes()
	}
	to := now.Truncate(time.Microsecond)
	from := to.Add(-s.d.Backfill)
	conn := Connection{UserID: st.UserID, Provider: p, ProviderUserID: puid, Status: provider.StatusSyncing, SealedTokens: sealed,
		ConnectedAt: to, BackfillFrom: from, BackfillTo: to, DoneUntil: from}
	body := provider.ConnectionEstablished{Provider: p, ProviderUserID: puid, Scopes: tok.Scopes, ConnectedAt: to, BackfillFrom: from, BackfillTo: to}
	e, err := s.d.Envelope.Event(ctx, eventstore.DeterministicID(provider.EventConnectionEstablished, hex.EncodeToString(st.Hash)), st.UserID, provider.EventConnectionEstablished, body)
	if err != nil {
		return st.UserID, err
	}
	if err := s.d.Store.Save(ctx, conn); err != nil {
		return st.UserID, err
	}
	if err := s.d.Store.SaveTokens(ctx, conn.UserID, p, sealed); err != nil {
		return st.UserID, err
	}
	if _, err := s.d.Log.Append(ctx, e); err != nil {
		return st.UserID, err
	}
	return st.UserID, nil
}

// List returns the user's connections.
func (s *Service) List(ctx context.Context, user uuid.UUID) ([]Connection, error) {
	return s.d.Store.List(ctx, user)
}

// ErrDeleteDataUnsupported: deleting the data a connection delivered
// needs the samples-deletion command, which this process was not given.
var ErrDeleteDataUnsupported = errors.New("deleting the data a connection delivered is not available on this server")

// Disconnect ends the user's connection: revoked at the provider where
// its API allows (best effort: the tokens are destroyed here whatever it
// answers), then connection.revoked. Data already received stays unless
// deleteData: then every sample and sleep session from this provider's
// source is deleted (samples.deleted, in ranges of at most
// ingest.MaxDeletionSpan from a day before the backfill's start to a day
// from now), after the revocation, so no fetch re-adds it.
func (s *Service) Disconnect(ctx context.Context, user uuid.UUID, p provider.Name, deleteData bool) error {
	c, err := s.client(p)
	if err != nil {
		return err
	}
	if deleteData && s.d.Data == nil {
		return ErrDeleteDataUnsupported
	}
	conn, err := s.d.Store.Get(ctx, user, p)
	if err != nil {
		return err
	}
	if conn.Status != provider.StatusRevoked {
		if tok, err := s.open(ctx, conn); err == nil {
			if err := c.Revoke(ctx, tok); err != nil {
				s.d.Logger.Warn("provider revocation failed; tokens destroyed here anyway", "provider", p, "err", err)
			}
		}
		if err := s.revoke(ctx, conn, provider.RevokedByUser); err != nil {
			return err
		}
	}
	if !deleteData {
		return nil
	}
	const day = 24 * time.Hour
	end := s.d.Now.Now().UTC().Add(day).Truncate(time.Second)
	first := conn.BackfillFrom
	if conn.ConnectedAt.Before(first) {
		first = conn.ConnectedAt
	}
	for from := first.UTC().Add(-day).Truncate(time.Second); from.Before(end); {
		to := from.Add(ingest.MaxDeletionSpan)
		if to.After(end) {
			to = end
		}
		if _, err := s.d.Data.DeleteSamples(ctx, commands.DeleteSamples{UserID: user, Deletion: ingest.Deletion{From: from, To: to, Provider: string(p)}}); err != nil {
			return err
		}
		from = to
	}
	return nil
}

// revoke destroys the tokens and appends connection.revoked.
func (s *Service) revoke(ctx context.Context, conn Connection, reason string) error {
	now := s.d.Now.Now().UTC().Truncate(time.Microsecond)
	conn.Status, conn.SealedTokens = provider.StatusRevoked, nil
	if reason == provider.RevokedByProvider {
		conn.LastError = "the provider no longer accepts this connection (access was revoked there); connect again"
	}
	if err := s.d.Store.Save(ctx, conn); err != nil {
		return err
	}
	if err := s.d.Store.SaveTokens(ctx, conn.UserID, conn.Provider, nil); err != nil {
		return err
	}
	body := provider.ConnectionRevoked{Provider: conn.Provider, Reason: reason, RevokedAt: now}
	e, err := s.d.Envelope.Event(ctx, uuid.New(), conn.UserID, provider.EventConnectionRevoked, body)
	if err != nil {
		return err
	}
	_, err = s.d.Log.Append(ctx, e)
	return err
}

// recentWindow is what a manual sync fetches again.
const recentWindow = 48 * time.Hour

// Sync asks for a manual sync: the recent window is listed again by the
// worker (202; the rate limit per user is the HTTP edge's).
func (s *Service) Sync(ctx context.Context, user uuid.UUID, p provider.Name) error {
	if _, err := s.client(p); err != nil {
		return err
	}
	conn, err := s.d.Store.Get(ctx, user, p)
	if err != nil || conn.Status == provider.StatusRevoked {
		return ErrNotConnected
	}
	now := s.d.Now.Now().UTC().Truncate(time.Microsecond)
	conn.BackfillTo = now
	if since := now.Add(-recentWindow); conn.DoneUntil.After(since) {
		conn.DoneUntil = since
	}
	if conn.BackfillFrom.After(conn.DoneUntil) {
		conn.BackfillFrom = conn.DoneUntil
	}
	conn.Cursor, conn.Page = "", ""
	conn.Status = provider.StatusSyncing
	return s.d.Store.Save(ctx, conn)
}

// UnknownUsers is how many notifications named a provider user no
// connection has (acknowledged and counted).
func (s *Service) UnknownUsers() int64 { return s.unknownUsers.Load() }

// Webhook answers a request to /v1/webhooks/{provider}: a handshake is
// answered by the provider's client; a notification (signature verified
// on the raw bytes by the client) becomes one provider.notified event per
// change, appended before the answer so a 2xx means durable. A
// notification for a provider user we do not know is acknowledged and
// counted.
func (s *Service) Webhook(ctx context.Context, p provider.Name, d Delivery) (Answer, error) {
	c, err := s.client(p)
	if err != nil {
		return Answer{}, err
	}
	ans, notes, err := c.Receive(d)
	if err != nil {
		return Answer{}, err
	}
	for _, n := range notes {
		conn, err := s.d.Store.ByProviderUser(ctx, p, n.ProviderUserID)
		if errors.Is(err, domain.ErrNotFound) || (err == nil && conn.Status == provider.StatusRevoked) {
			s.unknownUsers.Add(1)
			s.d.Logger.Info("provider notification for an unknown or revoked user acknowledged", "provider", p)
			continue
		}
		if err != nil {
			return Answer{}, err
		}
		n.Provider, n.ReceivedAt = p, d.ReceivedAt.UTC().Truncate(time.Microsecond)
		id := eventstore.DeterministicID(provider.EventNotified, string(p), n.DeliveryID)
		e, err := s.d.Envelope.Event(ctx, id, conn.UserID, provider.EventNotified, n)
		if err != nil {
			return Answer{}, err
		}
		if _, err := s.d.Log.Append(ctx, e); err != nil {
			return Answer{}, err
		}
	}
	return ans, nil
}

func (s *Service) seal(ctx context.Context, user uuid.UUID, t Token) ([]byte, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return s.d.Sealer.Seal(ctx, user, tokenID, tokenType, raw)
}

func (s *Service) open(ctx context.Context, conn Connection) (Token, error) {
	if len(conn.SealedTokens) == 0 {
		return Token{}, ErrNotConnected
	}
	raw, err := s.d.Sealer.Open(ctx, conn.UserID, tokenID, tokenType, conn.SealedTokens)
	if err != nil {
		return Token{}, err
	}
	var t Token
	return t, json.Unmarshal(raw, &t)
}

// random is 32 random bytes, base64url.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
