package oura_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/providers/oura"
	"github.com/biosync/biosync/adapters/providers/oura/ouratest"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain/provider"
)

const (
	clientID     = "biosync-test-app"
	clientSecret = "oura-client-secret"
	redirect     = "https://biosync.example/v1/connections/oura/callback"
)

var now = time.Date(2024, 11, 12, 8, 0, 0, 0, time.UTC)

func newClient(t *testing.T, fake *ouratest.Server) *oura.Client {
	t.Helper()
	c, err := oura.New(oura.Config{ClientID: clientID, ClientSecret: clientSecret, AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(),
		APIURL: fake.APIURL(), VerificationToken: "verify-me", Now: func() time.Time { return now }})
	require.NoError(t, err)
	return c
}

func startFake(t *testing.T) *ouratest.Server {
	t.Helper()
	fake := ouratest.Start(clientID, clientSecret)
	t.Cleanup(fake.Close)
	fake.AddUser("oura-user-1")
	return fake
}

// connect runs authorize -> consent -> exchange like the callback does.
func connect(t *testing.T, c *oura.Client) connections.Token {
	t.Helper()
	back, err := ouratest.Consent(c.AuthorizeURL("state-123", redirect, ""))
	require.NoError(t, err)
	u, err := url.Parse(back)
	require.NoError(t, err)
	assert.Equal(t, "state-123", u.Query().Get("state"))
	tok, err := c.Exchange(context.Background(), u.Query().Get("code"), redirect, "")
	require.NoError(t, err)
	return tok
}

func TestTheAuthorizeURLNamesTheAppTheRedirectAndTheScopesWithoutPKCE(t *testing.T) {
	c := newClient(t, startFake(t))
	u, err := url.Parse(c.AuthorizeURL("s", redirect, ""))
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, clientID, q.Get("client_id"))
	assert.Equal(t, redirect, q.Get("redirect_uri"))
	assert.Equal(t, "code", q.Get("response_type"))
	assert.Equal(t, "personal daily heartrate workout session spo2 tag", q.Get("scope"))
	assert.Empty(t, q.Get("code_challenge"))
	assert.False(t, c.PKCE())
}

func TestACodeBecomesTokensAndThePersonalInfoIDIsTheProviderUser(t *testing.T) {
	c := newClient(t, startFake(t))
	tok := connect(t, c)
	assert.NotEmpty(t, tok.AccessToken)
	assert.NotEmpty(t, tok.RefreshToken)
	assert.True(t, tok.Expiry.After(time.Now()))
	id, err := c.UserID(context.Background(), tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, "oura-user-1", id)
}

func TestARefreshRotatesTheSingleUseRefreshToken(t *testing.T) {
	fake := startFake(t)
	c := newClient(t, fake)
	tok := connect(t, c)
	fresh, err := c.Refresh(context.Background(), tok.RefreshToken)
	require.NoError(t, err)
	assert.NotEqual(t, tok.RefreshToken, fresh.RefreshToken)
	_, err = c.Refresh(context.Background(), tok.RefreshToken)
	assert.ErrorIs(t, err, connections.ErrGrantRevoked, "the old refresh token was spent")
}

func TestARefreshAfterTheUserRevokedAccessIsInvalidGrant(t *testing.T) {
	fake := startFake(t)
	c := newClient(t, fake)
	tok := connect(t, c)
	fake.RevokeUser("oura-user-1")
	_, err := c.Refresh(context.Background(), tok.RefreshToken)
	assert.ErrorIs(t, err, connections.ErrGrantRevoked)
}

func TestAnExpiredAccessTokenIsUnauthorizedAndA429CarriesRetryAfter(t *testing.T) {
	fake := startFake(t)
	c := newClient(t, fake)
	tok := connect(t, c)
	fake.Answer429(1)
	_, err := c.UserID(context.Background(), tok.AccessToken)
	var rl *connections.RateLimited
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, time.Second, rl.RetryAfter)
	fake.ExpireAccessTokens()
	_, err = c.UserID(context.Background(), tok.AccessToken)
	assert.ErrorIs(t, err, connections.ErrUnauthorized)
}

func TestAPointerFetchesTheOneDocumentItNames(t *testing.T) {
	fake := startFake(t)
	doc, err := os.ReadFile("../../../domain/provider/oura/testdata/sleep.json")
	require.NoError(t, err)
	fake.AddDocument("oura-user-1", "sleep", doc)
	c := newClient(t, fake)
	tok := connect(t, c)
	recs, err := c.Fetch(context.Background(), tok.AccessToken, provider.Notified{Operation: "create", DataType: "sleep", ObjectID: "a1c4bd52-3c7e-4e0a-8a0e-5f1b0c9d7e21"})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.JSONEq(t, string(doc), string(recs[0].Raw))
	assert.Contains(t, fake.Requests(), "GET /v2/usercollection/sleep/a1c4bd52-3c7e-4e0a-8a0e-5f1b0c9d7e21")
}

func TestAPointerThatIsNotAnIDOrADeleteFetchesNothing(t *testing.T) {
	fake := startFake(t)
	c := newClient(t, fake)
	tok := connect(t, c)
	for _, n := range []provider.Notified{
		{Operation: "create", DataType: "sleep", ObjectID: "../../../oauth/revoke"},
		{Operation: "create", DataType: "sleep", ObjectID: "https://evil.example/x"},
		{Operation: "delete", DataType: "sleep", ObjectID: "abc"},
		{Operation: "create", DataType: "ring_configuration", ObjectID: "abc"},
	} {
		recs, err := c.Fetch(context.Background(), tok.AccessToken, n)
		assert.NoError(t, err)
		assert.Empty(t, recs)
	}
	for _, r := range fake.Requests() {
		assert.NotContains(t, r, "evil")
		assert.NotContains(t, r, "revoke")
	}
}

func TestCollectionsArePagedWithNextToken(t *testing.T) {
	fake := startFake(t)
	for _, d := range []string{"2024-11-09", "2024-11-10", "2024-11-11"} {
		fake.AddDocument("oura-user-1", "daily_spo2", []byte(`{"id":"spo2-`+d+`","day":"`+d+`","spo2_percentage":{"average":97}}`))
	}
	c := newClient(t, fake)
	tok := connect(t, c)
	var ids []string
	page := ""
	for i := 0; i < 5; i++ {
		p, err := c.List(context.Background(), tok.AccessToken, "daily_spo2", now.AddDate(0, 0, -30), now, page)
		require.NoError(t, err)
		for _, r := range p.Records {
			ids = append(ids, r.ID)
		}
		if page = p.Next; page == "" {
			break
		}
	}
	assert.Equal(t, []string{"spo2-2024-11-09", "spo2-2024-11-10", "spo2-2024-11-11"}, ids)
}

func TestTheClientNeverFollowsARedirectToAnotherHost(t *testing.T) {
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { t.Error("the client called another host") }))
	defer evil.Close()
	api := httptest.NewServer(http.RedirectHandler(evil.URL+"/v2/usercollection/personal_info", http.StatusFound))
	defer api.Close()
	c, err := oura.New(oura.Config{ClientID: clientID, ClientSecret: clientSecret, APIURL: api.URL})
	require.NoError(t, err)
	_, err = c.UserID(context.Background(), "token")
	assert.Error(t, err)
}

func delivery(t *testing.T, fake *ouratest.Server, at time.Time, mutate func(*http.Request, []byte) []byte) connections.Delivery {
	t.Helper()
	req, err := fake.SignedRequest("https://biosync.example/v1/webhooks/oura", ouratest.Notification{EventType: "create", DataType: "sleep",
		ObjectID: "a1c4bd52", EventTime: "2024-11-12T07:59:00+01:00", UserID: "oura-user-1"}, at)
	require.NoError(t, err)
	body := make([]byte, req.ContentLength)
	_, _ = req.Body.Read(body)
	if mutate != nil {
		body = mutate(req, body)
	}
	return connections.Delivery{Method: http.MethodPost, Header: req.Header, Body: body, ReceivedAt: at}
}

func TestASignedNotificationIsOnePointer(t *testing.T) {
	fake := startFake(t)
	ans, notes, err := newClient(t, fake).Receive(delivery(t, fake, now, nil))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, ans.Status)
	require.Len(t, notes, 1)
	assert.Equal(t, provider.Notified{Provider: provider.Oura, DeliveryID: "sleep/a1c4bd52/create/2024-11-12T07:59:00+01:00", ProviderUserID: "oura-user-1",
		Operation: "create", DataType: "sleep", ObjectID: "a1c4bd52", EventTime: "2024-11-12T07:59:00+01:00"}, notes[0])
}

func TestNotificationsNotSignedByOuraAreRejected(t *testing.T) {
	fake := startFake(t)
	c := newClient(t, fake)
	cases := map[string]connections.Delivery{
		"tampered body": delivery(t, fake, now, func(_ *http.Request, b []byte) []byte {
			return []byte(strings.Replace(string(b), "oura-user-1", "oura-user-2", 1))
		}),
		"stale timestamp":  delivery(t, fake, now.Add(-6*time.Minute), nil),
		"future timestamp": delivery(t, fake, now.Add(6*time.Minute), nil),
		"timestamp changed after signing": delivery(t, fake, now, func(r *http.Request, b []byte) []byte {
			r.Header.Set(oura.HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return b
		}),
		"signed with another secret": delivery(t, fake, now, func(r *http.Request, b []byte) []byte {
			r.Header.Set(oura.HeaderSignature, oura.Sign("not-the-secret", r.Header.Get(oura.HeaderTimestamp), b))
			return b
		}),
		"no signature":      delivery(t, fake, now, func(r *http.Request, b []byte) []byte { r.Header.Del(oura.HeaderSignature); return b }),
		"no timestamp":      delivery(t, fake, now, func(r *http.Request, b []byte) []byte { r.Header.Del(oura.HeaderTimestamp); return b }),
		"signature not hex": delivery(t, fake, now, func(r *http.Request, b []byte) []byte { r.Header.Set(oura.HeaderSignature, "sha256=abc"); return b }),
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			_, notes, err := c.Receive(d)
			assert.ErrorIs(t, err, connections.ErrSignature)
			assert.Empty(t, notes)
		})
	}
}

func TestAnRFC3339TimestampIsWindowedToo(t *testing.T) {
	fake := startFake(t)
	c := newClient(t, fake)
	for _, tc := range []struct {
		at   time.Time
		want error
	}{{now, nil}, {now.Add(-time.Hour), connections.ErrSignature}} {
		d := delivery(t, fake, now, func(r *http.Request, b []byte) []byte {
			ts := tc.at.Format(time.RFC3339)
			r.Header.Set(oura.HeaderTimestamp, ts)
			r.Header.Set(oura.HeaderSignature, oura.Sign(clientSecret, ts, b))
			return b
		})
		_, _, err := c.Receive(d)
		if tc.want == nil {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, tc.want)
		}
	}
}

func TestALowerCaseSignatureIsTheSameSignature(t *testing.T) {
	fake := startFake(t)
	d := delivery(t, fake, now, func(r *http.Request, b []byte) []byte {
		r.Header.Set(oura.HeaderSignature, strings.ToLower(r.Header.Get(oura.HeaderSignature)))
		return b
	})
	_, notes, err := newClient(t, fake).Receive(d)
	require.NoError(t, err)
	assert.Len(t, notes, 1)
}

func TestTheHandshakeEchoesTheChallengeOnlyForTheVerificationToken(t *testing.T) {
	c := newClient(t, startFake(t))
	ans, _, err := c.Receive(connections.Delivery{Method: http.MethodGet, Query: url.Values{"verification_token": {"verify-me"}, "challenge": {"abc123"}}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, ans.Status)
	raw, _ := json.Marshal(ans.Body)
	assert.JSONEq(t, `{"challenge":"abc123"}`, string(raw))
	_, _, err = c.Receive(connections.Delivery{Method: http.MethodGet, Query: url.Values{"verification_token": {"guess"}, "challenge": {"abc123"}}})
	assert.ErrorIs(t, err, connections.ErrHandshake)
}

func TestTheSignatureIsUpperHexHMACOfTimestampThenBody(t *testing.T) {
	// Computed independently (Python's hmac) for this scheme.
	assert.Equal(t, "CE2278D68C1A5EE5A88456DE4339B275ABAEC9AFB467D753C54F1F214B1AEEC4", oura.Sign(clientSecret, "1731398400", []byte(`{"event_type":"create"}`)))
}

func TestADeletedDocumentOrAnUngrantedCollectionIsNothingToFetch(t *testing.T) {
	fake := startFake(t)
	c := newClient(t, fake)
	tok := connect(t, c)
	recs, err := c.Fetch(context.Background(), tok.AccessToken, provider.Notified{Operation: "update", DataType: "sleep", ObjectID: "gone"})
	assert.NoError(t, err, "404: deleted since announced")
	assert.Empty(t, recs)
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer forbidden.Close()
	c2, err := oura.New(oura.Config{ClientID: clientID, ClientSecret: clientSecret, APIURL: forbidden.URL})
	require.NoError(t, err)
	page, err := c2.List(context.Background(), "token", "heartrate", now.Add(-time.Hour), now, "")
	assert.NoError(t, err, "403: a scope the user did not grant")
	assert.Empty(t, page.Records)
}
