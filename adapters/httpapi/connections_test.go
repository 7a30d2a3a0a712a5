package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	httpconnections "github.com/biosync/biosync/adapters/httpapi/connections"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain/provider"
)

// fakeConnections answers the connection routes; unset functions fail the
// test when called.
type fakeConnections struct {
	t        *testing.T
	callback func(p provider.Name, code, state string) (uuid.UUID, error)
	webhook  func(p provider.Name, d connections.Delivery) (connections.Answer, error)
}

func (f *fakeConnections) Providers() []connections.ProviderInfo {
	return []connections.ProviderInfo{{Name: provider.Oura, Configured: true, Scopes: []string{"daily"}}, {Name: provider.Whoop}}
}
func (f *fakeConnections) Connect(context.Context, uuid.UUID, provider.Name) (connections.Authorization, error) {
	f.t.Error("Connect called")
	return connections.Authorization{}, nil
}
func (f *fakeConnections) Callback(_ context.Context, p provider.Name, code, state string) (uuid.UUID, error) {
	return f.callback(p, code, state)
}
func (f *fakeConnections) List(context.Context, uuid.UUID) ([]connections.Connection, error) {
	return nil, nil
}
func (f *fakeConnections) Disconnect(context.Context, uuid.UUID, provider.Name, bool) error {
	return connections.ErrDeleteDataUnsupported
}
func (f *fakeConnections) Sync(context.Context, uuid.UUID, provider.Name) error { return nil }
func (f *fakeConnections) Webhook(_ context.Context, p provider.Name, d connections.Delivery) (connections.Answer, error) {
	return f.webhook(p, d)
}

func withConnections(f *fakeConnections) option {
	return func(_ *Config, d *Deps) {
		d.Connections = httpconnections.Deps{Connections: f, AppURL: "https://app.example/"}
	}
}

func TestTheCallbackSendsTheBrowserBackToTheAppWithTheOutcome(t *testing.T) {
	f := &fakeConnections{t: t}
	h := newHarness(t, withConnections(f))
	cases := []struct {
		query string
		err   error
		want  string
	}{
		{"?code=c&state=s", nil, "https://app.example/connections?provider=oura&status=connected"},
		{"?code=c&state=used", connections.ErrStateInvalid, "https://app.example/connections?provider=oura&reason=invalid_state&status=error"},
		{"?code=c&state=s", assert.AnError, "https://app.example/connections?provider=oura&reason=provider_error&status=error"},
		{"?error=access_denied&state=s", nil, "https://app.example/connections?provider=oura&reason=denied&status=error"},
	}
	for _, c := range cases {
		f.callback = func(provider.Name, string, string) (uuid.UUID, error) { return uuid.New(), c.err }
		rec := h.do(req(http.MethodGet, "/v1/connections/oura/callback"+c.query, nil))
		assert.Equal(t, http.StatusSeeOther, rec.Code, c.query)
		assert.Equal(t, c.want, rec.Header().Get("Location"), c.query)
	}
	f.callback = func(provider.Name, string, string) (uuid.UUID, error) { return uuid.Nil, connections.ErrNotConfigured }
	problemOf(t, h.do(req(http.MethodGet, "/v1/connections/whoop/callback?code=c&state=s", nil)), 404, "not-found")
}

func TestProviderWebhooksHandTheRawBytesToTheProviderAndMapItsVerdicts(t *testing.T) {
	f := &fakeConnections{t: t}
	h := newHarness(t, withConnections(f))
	raw := `{"user_id":"u","data_type":"sleep",  "object_id":"x"}`
	var got connections.Delivery
	f.webhook = func(_ provider.Name, d connections.Delivery) (connections.Answer, error) {
		got = d
		return connections.Answer{Status: 200}, nil
	}
	rec := h.do(req(http.MethodPost, "/v1/webhooks/oura", raw, "x-oura-signature", "ABC", "x-oura-timestamp", "1"))
	assert.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, raw, string(got.Body), "the bytes as sent, spaces and all")
	assert.Equal(t, "ABC", got.Header.Get("x-oura-signature"))

	f.webhook = func(provider.Name, connections.Delivery) (connections.Answer, error) {
		return connections.Answer{}, connections.ErrSignature
	}
	problemOf(t, h.do(req(http.MethodPost, "/v1/webhooks/oura", raw)), 401, "webhook-signature-invalid")

	f.webhook = func(_ provider.Name, d connections.Delivery) (connections.Answer, error) {
		if d.Query.Get("verification_token") != "right" {
			return connections.Answer{}, connections.ErrHandshake
		}
		return connections.Answer{Status: 200, Body: map[string]string{"challenge": d.Query.Get("challenge")}}, nil
	}
	rec = h.do(req(http.MethodGet, "/v1/webhooks/oura?verification_token=right&challenge=abc", nil))
	require.Equal(t, 200, rec.Code)
	var body map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, map[string]string{"challenge": "abc"}, body)
	problemOf(t, h.do(req(http.MethodGet, "/v1/webhooks/oura?verification_token=wrong&challenge=abc", nil)), 403, "forbidden")
}

func TestProvidersAreListedWithTheirConfigurationAndDeleteDataCanBe501(t *testing.T) {
	f := &fakeConnections{t: t}
	h := newHarness(t, withConnections(f))
	rec := h.do(req(http.MethodGet, "/v1/providers", nil, bearer(aliceToken)...))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"providers":[{"name":"oura","configured":true,"scopes":["daily"]},{"name":"whoop","configured":false,"scopes":[]}]}`, rec.Body.String())
	problemOf(t, h.do(req(http.MethodDelete, "/v1/connections/oura?delete_data=true", nil, bearer(aliceToken)...)), 501, "not-implemented")
}
