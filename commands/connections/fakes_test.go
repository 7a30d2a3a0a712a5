package connections_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/provider"
)

// store is connections.Store in memory, spending states like the
// PostgreSQL adapter (delete, then check the expiry).
type store struct {
	mu     sync.Mutex
	states map[string]connections.State
	conns  map[string]connections.Connection
}

func newStore() *store {
	return &store{states: map[string]connections.State{}, conns: map[string]connections.Connection{}}
}

func key(u uuid.UUID, p provider.Name) string { return u.String() + "/" + string(p) }

func (s *store) SaveState(_ context.Context, st connections.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[hex.EncodeToString(st.Hash)] = st
	return nil
}

func (s *store) TakeState(_ context.Context, hash []byte, now time.Time) (connections.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[hex.EncodeToString(hash)]
	delete(s.states, hex.EncodeToString(hash))
	if !ok || !now.Before(st.ExpiresAt) {
		return st, connections.ErrStateInvalid
	}
	return st, nil
}

func (s *store) Save(_ context.Context, c connections.Connection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.conns[key(c.UserID, c.Provider)]; ok {
		if old.Status == provider.StatusRevoked && old.ConnectedAt.Equal(c.ConnectedAt) {
			return nil
		}
		c.SealedTokens = old.SealedTokens
	}
	s.conns[key(c.UserID, c.Provider)] = c
	return nil
}

func (s *store) SaveTokens(_ context.Context, u uuid.UUID, p provider.Name, sealed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conns[key(u, p)]; ok {
		c.SealedTokens = sealed
		s.conns[key(u, p)] = c
	}
	return nil
}

func (s *store) Get(_ context.Context, u uuid.UUID, p provider.Name) (connections.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[key(u, p)]
	if !ok {
		return c, domain.ErrNotFound
	}
	return c, nil
}

func (s *store) ByProviderUser(_ context.Context, p provider.Name, puid string) (connections.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if c.Provider == p && c.ProviderUserID == puid {
			return c, nil
		}
	}
	return connections.Connection{}, domain.ErrNotFound
}

func (s *store) List(_ context.Context, u uuid.UUID) ([]connections.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []connections.Connection
	for _, c := range s.conns {
		if c.UserID == u {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *store) Backfilling(context.Context) ([]connections.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []connections.Connection
	for _, c := range s.conns {
		if c.Status != provider.StatusRevoked && c.DoneUntil.Before(c.BackfillTo) {
			out = append(out, c)
		}
	}
	return out, nil
}

// sealer "seals" by prefixing the user id, so a token opened for another
// user fails like AES-GCM with another key would.
type sealer struct{}

func (sealer) Seal(_ context.Context, u, _ uuid.UUID, _ string, pt []byte) ([]byte, error) {
	return append([]byte(u.String()), pt...), nil
}

func (sealer) Open(_ context.Context, u, _ uuid.UUID, _ string, sealed []byte) ([]byte, error) {
	p := []byte(u.String())
	if len(sealed) < len(p) || string(sealed[:len(p)]) != string(p) {
		return nil, errors.New("message authentication failed")
	}
	return sealed[len(p):], nil
}

// fakeClient is a provider with function fields; unset ones answer
// plausibly.
type fakeClient struct {
	exchange  func(code string) (connections.Token, error)
	refresh   func(rt string) (connections.Token, error)
	fetch     func(access string, n provider.Notified) ([]connections.Record, error)
	list      func(access, dataType string, page string) (connections.Page, error)
	receive   func(d connections.Delivery) (connections.Answer, []provider.Notified, error)
	userID    string
	pkce      bool
	revoked   int
	exchanged []string
}

func (f *fakeClient) Name() provider.Name { return provider.Oura }
func (f *fakeClient) Scopes() []string    { return []string{"daily"} }
func (f *fakeClient) PKCE() bool          { return f.pkce }
func (f *fakeClient) AuthorizeURL(state, redirect, challenge string) string {
	return "https://provider.example/authorize?state=" + state + "&redirect_uri=" + redirect + "&code_challenge=" + challenge
}

func (f *fakeClient) Exchange(_ context.Context, code, _, verifier string) (connections.Token, error) {
	f.exchanged = append(f.exchanged, code+"|"+verifier)
	if f.exchange != nil {
		return f.exchange(code)
	}
	return connections.Token{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: time.Now().Add(time.Hour)}, nil
}

func (f *fakeClient) Refresh(_ context.Context, rt string) (connections.Token, error) {
	if f.refresh != nil {
		return f.refresh(rt)
	}
	return connections.Token{AccessToken: "at-2", RefreshToken: "rt-2", Expiry: time.Now().Add(time.Hour)}, nil
}

func (f *fakeClient) UserID(context.Context, string) (string, error)  { return f.userID, nil }
func (f *fakeClient) Revoke(context.Context, connections.Token) error { f.revoked++; return nil }
func (f *fakeClient) DataTypes() []string                             { return []string{"daily_activity", "sleep"} }

func (f *fakeClient) Fetch(_ context.Context, access string, n provider.Notified) ([]connections.Record, error) {
	if f.fetch != nil {
		return f.fetch(access, n)
	}
	return []connections.Record{{DataType: n.DataType, ID: n.ObjectID, Raw: []byte(`{"id":"` + n.ObjectID + `"}`)}}, nil
}

func (f *fakeClient) List(_ context.Context, access, dataType string, _, _ time.Time, page string) (connections.Page, error) {
	if f.list != nil {
		return f.list(access, dataType, page)
	}
	return connections.Page{}, nil
}

func (f *fakeClient) Receive(d connections.Delivery) (connections.Answer, []provider.Notified, error) {
	if f.receive != nil {
		return f.receive(d)
	}
	return connections.Answer{Status: 200}, nil, nil
}

// world is a service over fakes with a settable clock.
type world struct {
	svc    *connections.Service
	store  *store
	log    *commandstest.Log
	client *fakeClient
	now    time.Time
	user   uuid.UUID
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{store: newStore(), log: &commandstest.Log{}, client: &fakeClient{userID: "oura-1"},
		now: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), user: uuid.New()}
	svc, err := connections.New(connections.Deps{Log: w.log, Store: w.store, Sealer: sealer{},
		Clients: map[provider.Name]connections.Client{provider.Oura: w.client}, PublicURL: "https://api.example/",
		Now: func() time.Time { return w.now }})
	require.NoError(t, err)
	w.svc = svc
	return w
}

// connect runs Connect and Callback with a code.
func (w *world) connect(t *testing.T) {
	t.Helper()
	a, err := w.svc.Connect(context.Background(), w.user, provider.Oura)
	require.NoError(t, err)
	_, err = w.svc.Callback(context.Background(), provider.Oura, "code-1", a.State)
	require.NoError(t, err)
}

func (w *world) types() []string {
	var out []string
	for _, e := range w.log.Appended() {
		out = append(out, e.Type)
	}
	return out
}

func digest(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
