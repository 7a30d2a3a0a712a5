package connections

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/provider"
)

// Connections is the command side of provider connections (a port, so
// the HTTP layer knows no provider).
type Connections interface {
	// Providers lists every provider and whether it is configured.
	Providers() []connections.ProviderInfo
	// Connect starts an authorization.
	Connect(ctx context.Context, user uuid.UUID, p provider.Name) (connections.Authorization, error)
	// Callback completes one; it returns the user the state named.
	Callback(ctx context.Context, p provider.Name, code, state string) (uuid.UUID, error)
	// List returns the user's connections.
	List(ctx context.Context, user uuid.UUID) ([]connections.Connection, error)
	// Disconnect ends a connection.
	Disconnect(ctx context.Context, user uuid.UUID, p provider.Name, deleteData bool) error
	// Sync schedules a manual sync.
	Sync(ctx context.Context, user uuid.UUID, p provider.Name) error
	// Webhook answers a provider's webhook request.
	Webhook(ctx context.Context, p provider.Name, d connections.Delivery) (connections.Answer, error)
}

// Deps are the ports of the connection routes; while Connections is nil
// they answer 503.
type Deps struct {
	Connections Connections
	// AppURL is the frontend the callback sends the user back to.
	AppURL string
	// Now is the clock of received deliveries (default time.Now).
	Now func() time.Time
}

// Handlers serves the connection routes; the assembled server embeds it.
type Handlers struct {
	deps Deps
	log  *slog.Logger
}

// New returns the handlers over deps; log receives failed callbacks (the
// user only sees a reason in the redirect).
func New(deps Deps, log *slog.Logger) *Handlers {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handlers{deps: deps, log: log}
}

// kindNotImplemented answers what this server cannot do yet.
var kindNotImplemented = edge.Kind{Status: http.StatusNotImplemented, Slug: "not-implemented", Title: "Not implemented"}

func (h *Handlers) svc() (Connections, error) {
	if h.deps.Connections == nil {
		return nil, edge.NotConfigured("provider connections")
	}
	return h.deps.Connections, nil
}

// problem maps the connection errors that the shared table does not know.
func problem(err error) error {
	switch {
	case errors.Is(err, connections.ErrSignature):
		return &edge.Error{Kind: edge.KindWebhookSignature, Detail: "the delivery is not signed by the provider, or its timestamp is outside the window", Cause: err}
	case errors.Is(err, connections.ErrHandshake):
		return &edge.Error{Kind: edge.KindForbidden, Detail: "the verification token does not match", Cause: err}
	case errors.Is(err, connections.ErrDeleteDataUnsupported):
		return &edge.Error{Kind: kindNotImplemented, Detail: "deleting the data a connection delivered is not available yet; disconnect without delete_data to keep it", Cause: err}
	case errors.Is(err, connections.ErrNotConfigured):
		return &edge.Error{Kind: edge.KindNotFound, Detail: "this provider is not configured on this server", Cause: err}
	case errors.Is(err, domain.ErrNotFound):
		return &edge.Error{Kind: edge.KindNotFound, Detail: "you have no connection to this provider", Cause: err}
	}
	return err
}

// ListProviders answers GET /v1/providers.
func (h *Handlers) ListProviders(c echo.Context) error {
	s, err := h.svc()
	if err != nil {
		return err
	}
	out := gen.ProviderList{Providers: []gen.ProviderInfo{}}
	for _, p := range s.Providers() {
		scopes := p.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		out.Providers = append(out.Providers, gen.ProviderInfo{Name: string(p.Name), Configured: p.Configured, Scopes: scopes})
	}
	return c.JSON(http.StatusOK, out)
}

// StartConnection answers POST /v1/connections/{provider}.
func (h *Handlers) StartConnection(c echo.Context, p gen.Provider) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	s, err := h.svc()
	if err != nil {
		return err
	}
	a, err := s.Connect(c.Request().Context(), uid, provider.Name(p))
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusCreated, gen.ConnectionAuthorization{AuthorizeUrl: a.AuthorizeURL, State: a.State, ExpiresAt: a.ExpiresAt.UTC()})
}

// ConnectionCallback answers GET /v1/connections/{provider}/callback with
// a 303 back to the app; a provider that is not configured is 404.
func (h *Handlers) ConnectionCallback(c echo.Context, p gen.Provider, params gen.ConnectionCallbackParams) error {
	s, err := h.svc()
	if err != nil {
		return err
	}
	back := func(status, reason string) error {
		q := url.Values{"provider": {p}, "status": {status}}
		if reason != "" {
			q.Set("reason", reason)
		}
		return c.Redirect(http.StatusSeeOther, strings.TrimRight(h.deps.AppURL, "/")+"/connections?"+q.Encode())
	}
	if e := edge.Deref(params.Error); e != "" {
		// The user declined at the provider (or it failed there); the state
		// is left to expire.
		if !known(s, p) {
			return problem(connections.ErrNotConfigured)
		}
		return back("error", "denied")
	}
	_, err = s.Callback(c.Request().Context(), provider.Name(p), edge.Deref(params.Code), edge.Deref(params.State))
	switch {
	case err == nil:
		return back("connected", "")
	case errors.Is(err, connections.ErrNotConfigured):
		return problem(err)
	case errors.Is(err, connections.ErrStateInvalid):
		return back("error", "invalid_state")
	default:
		h.log.Warn("provider callback failed", "provider", p, "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
		return back("error", "provider_error")
	}
}

func known(s Connections, p string) bool {
	for _, info := range s.Providers() {
		if string(info.Name) == p && info.Configured {
			return true
		}
	}
	return false
}

// ListConnections answers GET /v1/connections.
func (h *Handlers) ListConnections(c echo.Context) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	s, err := h.svc()
	if err != nil {
		return err
	}
	list, err := s.List(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	out := gen.ConnectionList{Connections: []gen.Connection{}}
	for _, x := range list {
		v := gen.Connection{Provider: string(x.Provider), Status: gen.ConnectionStatus(x.Status), ConnectedAt: x.ConnectedAt.UTC(),
			Backfill: gen.Backfill{From: x.BackfillFrom.UTC(), To: x.BackfillTo.UTC(), DoneUntil: x.DoneUntil.UTC()}}
		if !x.LastSyncAt.IsZero() {
			t := x.LastSyncAt.UTC()
			v.LastSyncAt = &t
		}
		if !x.LastDataAt.IsZero() {
			t := x.LastDataAt.UTC()
			v.LastDataAt = &t
		}
		if x.LastError != "" {
			e := x.LastError
			v.LastError = &e
		}
		out.Connections = append(out.Connections, v)
	}
	return c.JSON(http.StatusOK, out)
}

// DeleteConnection answers DELETE /v1/connections/{provider}.
func (h *Handlers) DeleteConnection(c echo.Context, p gen.Provider, params gen.DeleteConnectionParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	s, err := h.svc()
	if err != nil {
		return err
	}
	deleteData := params.DeleteData != nil && *params.DeleteData
	if err := s.Disconnect(c.Request().Context(), uid, provider.Name(p), deleteData); err != nil {
		return problem(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// SyncConnection answers POST /v1/connections/{provider}/sync.
func (h *Handlers) SyncConnection(c echo.Context, p gen.Provider) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	s, err := h.svc()
	if err != nil {
		return err
	}
	if err := s.Sync(c.Request().Context(), uid, provider.Name(p)); err != nil {
		return problem(err)
	}
	return c.NoContent(http.StatusAccepted)
}

// ProviderWebhookHandshake answers a provider's GET verification.
func (h *Handlers) ProviderWebhookHandshake(c echo.Context, p gen.Provider, _ gen.ProviderWebhookHandshakeParams) error {
	return h.webhook(c, p)
}

// ProviderWebhook answers a provider's POST notification; the raw body
// (read once by the edge) goes to the provider's verification as is.
func (h *Handlers) ProviderWebhook(c echo.Context, p gen.Provider) error {
	return h.webhook(c, p)
}

func (h *Handlers) webhook(c echo.Context, p string) error {
	s, err := h.svc()
	if err != nil {
		return err
	}
	req := c.Request()
	d := connections.Delivery{Method: req.Method, Query: req.URL.Query(), Header: req.Header, Body: edge.Body(c), ReceivedAt: h.deps.Now()}
	ans, err := s.Webhook(req.Context(), provider.Name(p), d)
	if err != nil {
		return problem(err)
	}
	if ans.Status == 0 {
		ans.Status = http.StatusOK
	}
	if ans.Body == nil {
		return c.NoContent(ans.Status)
	}
	return c.JSON(ans.Status, ans.Body)
}
