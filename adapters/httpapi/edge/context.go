package edge

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
)

type ctxKey int

const (
	correlationKey ctxKey = iota
	userKey
	sessionKey
)

// CorrelationID returns the id of the request that started the work in ctx
// ("" outside a request). Commands store it in the event envelope so one
// id follows a request through the log, the projectors and the logs.
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}

// WithCorrelationID returns ctx carrying id, so work that does not start
// with an HTTP request (workers, tests) can set one the same way.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// WithUser records the authenticated caller; only the authentication
// middleware calls it, so a handler can trust what User returns.
func WithUser(ctx context.Context, id uuid.UUID) context.Context {
	return context.WithValue(ctx, userKey, id)
}

// User returns the authenticated caller, if the route had a bearer token.
func User(ctx context.Context) (uuid.UUID, bool) {
	id, ok := ctx.Value(userKey).(uuid.UUID)
	return id, ok
}

// WithSession records the session (sid) of the caller's access token, so
// logout knows which session to end.
func WithSession(ctx context.Context, sid uuid.UUID) context.Context {
	if sid == uuid.Nil {
		return ctx
	}
	return context.WithValue(ctx, sessionKey, sid)
}

// Session returns the session of the caller's access token.
func Session(ctx context.Context) (uuid.UUID, bool) {
	sid, ok := ctx.Value(sessionKey).(uuid.UUID)
	return sid, ok
}

// Caller returns the authenticated caller; the authentication middleware
// guarantees it on bearer routes, so a miss is a wiring bug (500), never a
// 401 bypass.
func Caller(c echo.Context) (uuid.UUID, error) {
	uid, ok := User(c.Request().Context())
	if !ok {
		return uuid.Nil, errors.New("httpapi: bearer route reached without an authenticated user")
	}
	return uid, nil
}

// Echo context keys of what the middleware learned about a request.
const (
	routeKey    = "httpapi.route.template"
	bodyKey     = "httpapi.body"
	actorKey    = "httpapi.actor"
	deliveryKey = "httpapi.delivery"
)

// SetRoute records the spec's path template of the operation the request
// was routed to (the request-id middleware does, first of all).
func SetRoute(c echo.Context, template string) { c.Set(routeKey, template) }

// RouteLabel is the low-cardinality name of the route for logs, metrics and
// span names: the spec's path template, never the concrete path;
// "unmatched" for unknown paths, wrong methods and CORS preflights.
func RouteLabel(c echo.Context) string {
	if t, ok := c.Get(routeKey).(string); ok {
		return t
	}
	return "unmatched"
}

// SetBody records the raw request body, read once by the middleware so
// the signature check, the validator and the handler see the same bytes.
func SetBody(c echo.Context, body []byte) { c.Set(bodyKey, body) }

// Body returns the raw request body (nil on routes without one).
func Body(c echo.Context) []byte {
	b, _ := c.Get(bodyKey).([]byte)
	return b
}

// SetActor records the caller of a role-restricted route, for the access
// log and the admin audit lines.
func SetActor(c echo.Context, id uuid.UUID) { c.Set(actorKey, id) }

// Actor returns the caller of a role-restricted route.
func Actor(c echo.Context) (uuid.UUID, bool) {
	id, ok := c.Get(actorKey).(uuid.UUID)
	return id, ok
}

// SetDelivery records a webhook delivery whose signature was verified.
func SetDelivery(c echo.Context, d webhooks.Delivery) { c.Set(deliveryKey, d) }

// Delivery returns the verified webhook delivery of the request.
func Delivery(c echo.Context) (webhooks.Delivery, bool) {
	d, ok := c.Get(deliveryKey).(webhooks.Delivery)
	return d, ok
}

// ClientIP is the caller's address as kept with sessions and audit entries.
// It is echo's RealIP: the configured IPExtractor when the server sits
// behind trusted proxies, otherwise (echo's default) X-Forwarded-For /
// X-Real-IP before the peer address, which a client can spoof; set
// Echo.IPExtractor where the deployment's proxies are known.
func ClientIP(c echo.Context) string { return c.RealIP() }
