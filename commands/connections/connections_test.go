package connections_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/provider"
)

var ctx = context.Background()

func TestConnectIssuesAStateBoundToTheUserAndStoresOnlyItsHash(t *testing.T) {
	w := newWorld(t)
	a, err := w.svc.Connect(ctx, w.user, provider.Oura)
	require.NoError(t, err)
	assert.Equal(t, w.now.Add(10*time.Minute), a.ExpiresAt)
	u, err := url.Parse(a.AuthorizeURL)
	require.NoError(t, err)
	assert.Equal(t, a.State, u.Query().Get("state"))
	assert.Equal(t, "https://api.example/v1/connections/oura/callback", u.Query().Get("redirect_uri"))
	assert.Empty(t, u.Query().Get("code_challenge"), "no PKCE where the provider has none")
	require.Len(t, w.store.states, 1)
	for h, st := range w.store.states {
		assert.Equal(t, digest(a.State), h, "only the hash is stored")
		assert.Equal(t, w.user, st.UserID)
	}
}

func TestPKCEIsS256OfTheStoredVerifierWhereTheProviderSupportsIt(t *testing.T) {
	w := newWorld(t)
	w.client.pkce = true
	a, err := w.svc.Connect(ctx, w.user, provider.Oura)
	require.NoError(t, err)
	u, _ := url.Parse(a.AuthorizeURL)
	_, err = w.svc.Callback(ctx, provider.Oura, "c", a.State)
	require.NoError(t, err)
	require.Len(t, w.client.exchanged, 1)
	verifier := w.client.exchanged[0][len("c|"):]
	sum := sha256.Sum256([]byte(verifier))
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), u.Query().Get("code_challenge"))
}

func TestACallbackConnectsSealsTheTokensAndRecordsConnectionEstablished(t *testing.T) {
	w := newWorld(t)
	w.connect(t)
	c, err := w.store.Get(ctx, w.user, provider.Oura)
	require.NoError(t, err)
	assert.Equal(t, provider.StatusSyncing, c.Status)
	assert.Equal(t, "oura-1", c.ProviderUserID)
	require.NotEmpty(t, c.SealedTokens)
	_, err = sealer{}.Open(ctx, uuid.New(), uuid.Nil, "", c.SealedTokens)
	assert.Error(t, err, "sealed with this user's key: no other key opens them")
	assert.Equal(t, w.now.Add(-30*24*time.Hour), c.BackfillFrom)
	assert.Equal(t, c.BackfillFrom, c.DoneUntil)
	require.Equal(t, []string{provider.EventConnectionEstablished}, w.types())
	var body provider.ConnectionEstablished
	require.NoError(t, json.Unmarshal(w.log.Appended()[0].Payload, &body))
	assert.Equal(t, "oura-1", body.ProviderUserID)
	assert.NotContains(t, string(w.log.Appended()[0].Payload), "at-1", "tokens never enter the log")
}

func TestAReusedExpiredOrForeignStateNeverConnects(t *testing.T) {
	for name, attempt := range map[string]func(w *world, state string) error{
		"reused": func(w *world, state string) error {
			if _, err := w.svc.Callback(ctx, provider.Oura, "c", state); err != nil {
				return err
			}
			w.store.conns = map[string]connections.Connection{}
			_, err := w.svc.Callback(ctx, provider.Oura, "c", state)
			return err
		},
		"expired": func(w *world, state string) error {
			w.now = w.now.Add(10*time.Minute + time.Second)
			_, err := w.svc.Callback(ctx, provider.Oura, "c", state)
			return err
		},
		"unknown": func(w *world, _ string) error {
			_, err := w.svc.Callback(ctx, provider.Oura, "c", "made-up-state")
			return err
		},
		"empty": func(w *world, _ string) error {
			_, err := w.svc.Callback(ctx, provider.Oura, "c", "")
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			a, err := w.svc.Connect(ctx, w.user, provider.Oura)
			require.NoError(t, err)
			assert.ErrorIs(t, attempt(w, a.State), connections.ErrStateInvalid)
			assert.Empty(t, w.store.conns, "nothing connected")
		})
	}
}

func TestAnotherProvidersStateNeverConnects(t *testing.T) {
	w := newWorld(t)
	// A state issued for a provider other than the callback's.
	state := "state-for-whoop"
	require.NoError(t, w.store.SaveState(ctx, connections.State{Hash: sha(state), UserID: w.user, Provider: provider.Whoop, ExpiresAt: w.now.Add(time.Minute)}))
	_, err := w.svc.Callback(ctx, provider.Oura, "c", state)
	assert.ErrorIs(t, err, connections.ErrStateInvalid)
	assert.Empty(t, w.store.conns)
	assert.Empty(t, w.client.exchanged, "the code was never exchanged")
}

func sha(s string) []byte { sum := sha256.Sum256([]byte(s)); return sum[:] }

func TestAProviderWithoutAClientIsNotConfigured(t *testing.T) {
	w := newWorld(t)
	_, err := w.svc.Connect(ctx, w.user, provider.Whoop)
	assert.ErrorIs(t, err, domain.ErrNotFound)
	listed := w.svc.Providers()
	require.Len(t, listed, 6, "every provider is listed")
	assert.Equal(t, connections.ProviderInfo{Name: provider.Oura, Configured: true, Scopes: []string{"daily"}}, listed[0], "the client's scopes")
	assert.Equal(t, provider.Whoop, listed[1].Name)
	assert.False(t, listed[1].Configured)
	assert.Contains(t, listed[1].Scopes, "offline", "the scopes it would ask for")
}

func TestANotificationIsOneEventWithAnIDFromTheDeliveryAndUnknownUsersAreCounted(t *testing.T) {
	w := newWorld(t)
	w.connect(t)
	note := provider.Notified{DeliveryID: "sleep/x/create/t", ProviderUserID: "oura-1", Operation: "create", DataType: "sleep", ObjectID: "x"}
	w.client.receive = func(connections.Delivery) (connections.Answer, []provider.Notified, error) {
		return connections.Answer{Status: 200}, []provider.Notified{note, {DeliveryID: "d2", ProviderUserID: "oura-stranger", DataType: "sleep"}}, nil
	}
	for range 2 {
		ans, err := w.svc.Webhook(ctx, provider.Oura, connections.Delivery{Method: "POST", ReceivedAt: w.now})
		require.NoError(t, err)
		assert.Equal(t, 200, ans.Status)
	}
	events := w.log.Appended()[1:]
	require.Len(t, events, 2)
	assert.Equal(t, provider.EventNotified, events[0].Type)
	assert.Equal(t, events[0].ID, events[1].ID, "a redelivery is the same event")
	assert.Equal(t, w.user, events[0].UserID)
	assert.EqualValues(t, 2, w.svc.UnknownUsers())
}

func TestABadSignatureAppendsNothing(t *testing.T) {
	w := newWorld(t)
	w.client.receive = func(connections.Delivery) (connections.Answer, []provider.Notified, error) {
		return connections.Answer{}, nil, connections.ErrSignature
	}
	_, err := w.svc.Webhook(ctx, provider.Oura, connections.Delivery{Method: "POST"})
	assert.ErrorIs(t, err, connections.ErrSignature)
	assert.Empty(t, w.log.Appended())
}

func TestAPointerIsFetchedAndItsRecordAppended(t *testing.T) {
	w := newWorld(t)
	w.connect(t)
	require.NoError(t, w.svc.HandleNotified(ctx, w.user, provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: "s1"}))
	assert.Equal(t, []string{provider.EventConnectionEstablished, provider.EventRecordFetched}, w.types())
	var r provider.RecordFetched
	require.NoError(t, json.Unmarshal(w.log.Appended()[1].Payload, &r))
	assert.Equal(t, "s1", r.RecordID)
	c, _ := w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, w.now, c.LastDataAt)
	assert.Equal(t, w.now, c.LastSyncAt)
}

func TestATokenAboutToExpireIsRefreshedAndTheRotatedRefreshTokenKept(t *testing.T) {
	w := newWorld(t)
	w.client.exchange = func(string) (connections.Token, error) {
		return connections.Token{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: w.now.Add(30 * time.Second)}, nil
	}
	var refreshedWith []string
	w.client.refresh = func(rt string) (connections.Token, error) {
		refreshedWith = append(refreshedWith, rt)
		return connections.Token{AccessToken: "at-" + rt, RefreshToken: rt + "'", Expiry: w.now.Add(time.Hour)}, nil
	}
	var usedAccess []string
	w.client.fetch = func(access string, n provider.Notified) ([]connections.Record, error) {
		usedAccess = append(usedAccess, access)
		return nil, nil
	}
	w.connect(t)
	n := provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: "s1"}
	require.NoError(t, w.svc.HandleNotified(ctx, w.user, n))
	w.now = w.now.Add(2 * time.Hour)
	require.NoError(t, w.svc.HandleNotified(ctx, w.user, n))
	assert.Equal(t, []string{"rt-1", "rt-1'"}, refreshedWith, "the second refresh used the rotated token")
	assert.Equal(t, []string{"at-rt-1", "at-rt-1'"}, usedAccess)
}

func TestA401RefreshesOnceAndRetries(t *testing.T) {
	w := newWorld(t)
	calls := 0
	w.client.fetch = func(access string, n provider.Notified) ([]connections.Record, error) {
		calls++
		if access == "at-1" {
			return nil, connections.ErrUnauthorized
		}
		return nil, nil
	}
	w.connect(t)
	require.NoError(t, w.svc.HandleNotified(ctx, w.user, provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: "s1"}))
	assert.Equal(t, 2, calls)
}

func TestInvalidGrantRevokesTheConnectionAndDestroysTheTokens(t *testing.T) {
	w := newWorld(t)
	w.client.fetch = func(string, provider.Notified) ([]connections.Record, error) { return nil, connections.ErrUnauthorized }
	w.client.refresh = func(string) (connections.Token, error) { return connections.Token{}, connections.ErrGrantRevoked }
	w.connect(t)
	require.NoError(t, w.svc.HandleNotified(ctx, w.user, provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: "s1"}),
		"nothing to retry")
	c, _ := w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, provider.StatusRevoked, c.Status)
	assert.Nil(t, c.SealedTokens)
	assert.Contains(t, c.LastError, "revoked")
	assert.Equal(t, []string{provider.EventConnectionEstablished, provider.EventConnectionRevoked}, w.types())
	var body provider.ConnectionRevoked
	require.NoError(t, json.Unmarshal(w.log.Appended()[1].Payload, &body))
	assert.Equal(t, provider.RevokedByProvider, body.Reason)
}

func TestRepeatedFailuresShowAsAnErrorInPlainWordsAndASuccessClearsIt(t *testing.T) {
	w := newWorld(t)
	fail := true
	w.client.fetch = func(string, provider.Notified) ([]connections.Record, error) {
		if fail {
			return nil, errors.New("oura API /v2/usercollection/sleep/s1: 500 Internal Server Error")
		}
		return nil, nil
	}
	w.connect(t)
	n := provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: "s1"}
	for range 3 {
		assert.Error(t, w.svc.HandleNotified(ctx, w.user, n))
	}
	c, _ := w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, provider.StatusError, c.Status)
	assert.Equal(t, "fetching data from the provider failed; we will try again", c.LastError)
	fail = false
	require.NoError(t, w.svc.HandleNotified(ctx, w.user, n))
	c, _ = w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, provider.StatusSyncing, c.Status, "back to syncing: its backfill has not finished")
	assert.Empty(t, c.LastError)
}

func TestTheBackfillResumesFromItsStoredPageAfterARestart(t *testing.T) {
	w := newWorld(t)
	var asked []string
	w.client.list = func(_, dataType, page string) (connections.Page, error) {
		asked = append(asked, dataType+"@"+page)
		switch dataType + "@" + page {
		case "daily_activity@":
			return connections.Page{Records: []connections.Record{{DataType: dataType, ID: "a1", Raw: []byte(`{}`)}}, Next: "p2"}, nil
		case "daily_activity@p2":
			return connections.Page{Records: []connections.Record{{DataType: dataType, ID: "a2", Raw: []byte(`{}`)}}}, nil
		default:
			return connections.Page{}, nil
		}
	}
	w.connect(t)
	more, err := w.svc.BackfillStep(ctx, w.user, provider.Oura)
	require.NoError(t, err)
	assert.True(t, more)
	c, _ := w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, "daily_activity", c.Cursor)
	assert.Equal(t, "p2", c.Page)

	// A new process over the same store picks up at page p2.
	restarted, err := connections.New(connections.Deps{Log: w.log, Store: w.store, Sealer: sealer{},
		Clients: map[provider.Name]connections.Client{provider.Oura: w.client}, PublicURL: "https://api.example", Now: func() time.Time { return w.now }})
	require.NoError(t, err)
	restarted.BackfillDue(ctx)
	assert.Equal(t, []string{"daily_activity@", "daily_activity@p2", "sleep@"}, asked)
	c, _ = w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, provider.StatusConnected, c.Status)
	assert.Equal(t, c.BackfillTo, c.DoneUntil)
	assert.Equal(t, 2, count(w.types(), provider.EventRecordFetched))
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

func TestDisconnectRevokesAtTheProviderDestroysTheTokensAndKeepsTheData(t *testing.T) {
	w := newWorld(t)
	w.connect(t)
	assert.ErrorIs(t, w.svc.Disconnect(ctx, w.user, provider.Oura, true), connections.ErrDeleteDataUnsupported)
	require.NoError(t, w.svc.Disconnect(ctx, w.user, provider.Oura, false))
	assert.Equal(t, 1, w.client.revoked)
	c, _ := w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, provider.StatusRevoked, c.Status)
	assert.Nil(t, c.SealedTokens)
	assert.ErrorIs(t, w.svc.Sync(ctx, w.user, provider.Oura), domain.ErrNotFound)
	require.NoError(t, w.svc.Disconnect(ctx, w.user, provider.Oura, false), "disconnecting twice is fine")
	assert.Equal(t, 1, count(w.types(), provider.EventConnectionRevoked))
	assert.ErrorIs(t, w.svc.Disconnect(ctx, uuid.New(), provider.Oura, false), domain.ErrNotFound)
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	_, err := connections.New(connections.Deps{Store: newStore(), Sealer: sealer{}, PublicURL: "x"})
	assert.ErrorContains(t, err, "Log")
	_, err = connections.New(connections.Deps{Log: nil, Store: newStore(), Sealer: sealer{}})
	assert.Error(t, err)
}

func TestConcurrentFetchesSpendASingleUseRefreshTokenOnce(t *testing.T) {
	w := newWorld(t)
	w.client.exchange = func(string) (connections.Token, error) {
		return connections.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: w.now.Add(30 * time.Second)}, nil
	}
	var mu sync.Mutex
	spent := map[string]bool{}
	refreshes := 0
	w.client.refresh = func(rt string) (connections.Token, error) {
		mu.Lock()
		defer mu.Unlock()
		if spent[rt] {
			return connections.Token{}, connections.ErrGrantRevoked // as Oura answers a reused refresh token
		}
		spent[rt] = true
		refreshes++
		return connections.Token{AccessToken: "at-" + rt, RefreshToken: rt + "'", Expiry: w.now.Add(time.Hour)}, nil
	}
	w.client.fetch = func(string, provider.Notified) ([]connections.Record, error) { return nil, nil }
	w.connect(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := provider.Notified{Provider: provider.Oura, ProviderUserID: "oura-1", DataType: "sleep", ObjectID: fmt.Sprint(i)}
			assert.NoError(t, w.svc.HandleNotified(ctx, w.user, n))
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, refreshes)
	c, _ := w.store.Get(ctx, w.user, provider.Oura)
	assert.NotEqual(t, provider.StatusRevoked, c.Status)
	assert.NotContains(t, w.types(), provider.EventConnectionRevoked)
}

func TestAStaleCopyCannotReviveARevokedConnection(t *testing.T) {
	w := newWorld(t)
	w.connect(t)
	stale, _ := w.store.Get(ctx, w.user, provider.Oura)
	require.NoError(t, w.svc.Disconnect(ctx, w.user, provider.Oura, false))
	stale.Status = provider.StatusConnected
	require.NoError(t, w.store.Save(ctx, stale))
	c, _ := w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, provider.StatusRevoked, c.Status)
	assert.Nil(t, c.SealedTokens)
	w.now = w.now.Add(time.Minute)
	w.connect(t) // connecting again (later) is a new connection
	c, _ = w.store.Get(ctx, w.user, provider.Oura)
	assert.Equal(t, provider.StatusSyncing, c.Status)
	assert.NotEmpty(t, c.SealedTokens)
}
