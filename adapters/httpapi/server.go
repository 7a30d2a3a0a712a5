package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/biosync/biosync/adapters/httpapi/accounts"
	"github.com/biosync/biosync/adapters/httpapi/admin"
	"github.com/biosync/biosync/adapters/httpapi/connections"
	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/erasure"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/adapters/httpapi/ingest"
	"github.com/biosync/biosync/adapters/httpapi/journal"
	"github.com/biosync/biosync/adapters/httpapi/preferences"
	"github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/commands"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultBodyLimit keeps one push (one Kafka record) under the broker's
	// message size limit.
	DefaultBodyLimit = 1 << 20
	// DefaultConsistencyWait bounds how long a query waits for its read
	// models to pass a client's consistency token.
	DefaultConsistencyWait = 5 * time.Second
	// DefaultReadinessTimeout bounds every dependency probe of GET /readyz.
	DefaultReadinessTimeout = 2 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and header section (431
	// above it). The largest headers the API reads (a bearer token, webhook
	// signatures during a key rotation, trace context, a consistency token)
	// stay far below; 64 KiB still lets a browser's cookies for the parent
	// domain through, and is a sixteenth of net/http's 1 MiB default.
	DefaultMaxHeaderBytes = 64 << 10
)

// Config holds the tunables of the HTTP API; the zero value is usable.
type Config struct {
	// BodyLimit is the largest request body in bytes (413 above it).
	BodyLimit int64
	// MaxHeaderBytes bounds the request line and headers of e.Server (431
	// above it; net/http allows 4 KiB of slack).
	MaxHeaderBytes int
	// ConsistencyWait bounds the wait for X-Consistency-Token on queries;
	// when it runs out the query answers with `Consistency: timeout`.
	ConsistencyWait time.Duration
	// CORSOrigins lists the browser origins allowed to call the API (e.g.
	// the frontend's); empty disables CORS (same-origin only).
	CORSOrigins []string
	// ReadinessTimeout bounds the health checks of GET /readyz.
	ReadinessTimeout time.Duration
	// RateLimits are the abuse-limit classes operations name with
	// x-biosync-rate-limit; nil means DefaultRateLimits(). A class the spec
	// names but this map lacks makes New fail.
	RateLimits map[string]RateLimit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (for per-IP limits); empty means the connection's peer is
	// the client.
	TrustedProxies []netip.Prefix
	// HSTSMaxAge, when positive, sends Strict-Transport-Security: set it
	// when clients reach the API over TLS (directly or through a proxy).
	HSTSMaxAge time.Duration
	// AdminMFAOptional lets admin tokens of sessions opened without a
	// second factor through (BIOSYNC_ADMIN_REQUIRE_MFA=false, for local
	// development); the zero value requires MFA.
	AdminMFAOptional bool
	// AdminNetworks, when set, are the only client networks admin routes
	// answer (BIOSYNC_ADMIN_IPS); others get 403.
	AdminNetworks []netip.Prefix
	// MetricsNetworks are the client networks GET /metrics answers
	// (BIOSYNC_METRICS_IPS) besides the loopback addresses, which always
	// may scrape; others get 403. Metrics name routes, projectors and
	// their lag, which is reconnaissance for anyone who can reach the port.
	MetricsNetworks []netip.Prefix
}

// Deps are the collaborators of the HTTP API, grouped by who uses them:
// one group per concept's handlers (each holds only the ports those
// handlers call), the edge's own ports (authentication, abuse limits,
// idempotency, consistency) and operations (logs, metrics, readiness).
// Accounts.Accounts, Ingest.Ingestor, Queries.Reader,
// Queries.Registrations, Edge.Tokens and Edge.Consistency are required;
// the rest have defaults or answer their routes 503 while unset.
type Deps struct {
	// Accounts serves registration, login, sessions, password, MFA and
	// account mail; Profiles nil means Queries.Reader.
	Accounts accounts.Deps
	// Erasure serves /v1/me/deletion-requests.
	Erasure erasure.Deps
	// Ingest serves both push endpoints.
	Ingest ingest.Deps
	// Queries serves the caller's reads.
	Queries queries.Deps
	// Settings serves /v1/me/settings and /v1/me/notification-preferences.
	Settings preferences.Deps
	// Journal serves /v1/journal; CursorKey nil means Queries.CursorKey.
	Journal journal.Deps
	// Admin serves the /v1/admin routes; with ReadModels nil they answer
	// 503 (after the token and role checks).
	Admin admin.Deps
	// Connections serves the provider connections and the providers'
	// webhooks; with Connections nil they answer 503.
	Connections connections.Deps
	// Edge are the ports of the middleware every request passes.
	Edge EdgeDeps
	// Ops are the logs, metrics and probes.
	Ops OpsDeps
}

// EdgeDeps are the ports of the middleware and of the read-your-writes
// wait every query shares.
type EdgeDeps struct {
	// Tokens verifies the bearer token of every /v1 route that needs one
	// (required).
	Tokens TokenVerifier
	// Roles verifies the bearer token of role-restricted (/v1/admin)
	// routes and tells its role claim; required with Admin.ReadModels.
	Roles RoleVerifier
	// Webhooks verifies Standard Webhooks signatures on /v1/webhooks/push;
	// its zero value (no keys) rejects every delivery.
	Webhooks webhooks.Verifier
	// Consistency waits for read models to pass a client's consistency
	// token (required).
	Consistency edge.Waiter
	// Idempotency stores Idempotency-Key outcomes (adapters/redis); nil
	// behaves like a store that is down (see x-biosync-idempotent).
	Idempotency commands.IdempotencyStore
	// FingerprintKey keys the fingerprints of idempotent requests (required
	// with Idempotency; the same on every instance, so a retry may reach
	// any of them).
	FingerprintKey []byte
	// Limiter enforces Config.RateLimits (adapters/redis); nil behaves like
	// a limiter that is down: fail-closed classes answer 503.
	Limiter RateLimiter
	// EmailKey is the keyed hash of an address (commands.EmailIndex.Key)
	// that keys per-account limits on anonymous routes; required with
	// Limiter.
	EmailKey func(email string) []byte
}

// OpsDeps are what operators read: logs, metrics, readiness and the spec.
type OpsDeps struct {
	// Logger receives the JSON access log and error reports; nil discards.
	Logger *slog.Logger
	// Registry receives the HTTP RED metrics; nil means the default
	// registerer.
	Registry prometheus.Registerer
	// Gatherer serves GET /metrics; nil means Registry when it is also a
	// Gatherer (a *prometheus.Registry), else the default gatherer.
	Gatherer prometheus.Gatherer
	// Health are the dependencies GET /readyz probes.
	Health []HealthCheck
	// Spec is the raw schemas/openapi.yaml served at GET /openapi.yaml; nil
	// serves the spec embedded in package gen (as JSON, which is YAML too).
	Spec []byte
}

// Operation ids of the spec that the route table treats specially.
const (
	opRegister      = "register"
	opLogin         = "login"
	opPushWebhook   = "pushWebhook"
	opPushMySamples = "pushMySamples"
	// opProviderWebhook's body is verified by the provider's own scheme on
	// the raw bytes, then parsed by the provider's client.
	opProviderWebhook = "providerWebhook"
)

// roleExtension names the role an operation requires (besides a bearer
// token), e.g. `x-biosync-role: admin`.
const roleExtension = "x-biosync-role"

// adminPathPrefix holds the operations that must require RoleAdmin;
// buildRoutes refuses a spec where one does not, so a new admin operation
// cannot ship open to every user.
const adminPathPrefix = "/v1/admin/"

// route is what the middleware needs to know about one operation of the
// spec; the table is built from the spec, so a new operation gets auth,
// content type checks and validation without touching the middleware.
type route struct {
	opID   string
	method string
	path   string // as in the spec: /v1/metrics/{type}
	kin    *routers.Route
	bearer bool   // requires an access token
	role   string // role claim required besides the token ("" = any user)
	body   bool   // takes a JSON request body
	// domainBody: the body is validated by the domain's parser instead of
	// the spec (push batches: one authoritative validator that lists every
	// problem, and the webhook signature must be checked before parsing).
	domainBody bool
	webhook    bool // Standard Webhooks signature required
	// idem is the operation's x-biosync-idempotent; idemDeclared tells
	// whether it made a choice at all (every POST must).
	idem         idemMode
	idemDeclared bool
	rateClass    string // x-biosync-rate-limit ("" = none)
}

// The concept handlers, under names of their own so the server can embed
// them all (an embedded field is named after its type).
type (
	accountsHandlers    = accounts.Handlers
	erasureHandlers     = erasure.Handlers
	ingestHandlers      = ingest.Handlers
	queriesHandlers     = queries.Handlers
	preferencesHandlers = preferences.Handlers
	journalHandlers     = journal.Handlers
	adminHandlers       = admin.Handlers
	connectionsHandlers = connections.Handlers
)

// server implements gen.ServerInterface: each concept's handlers are
// embedded, so their methods are promoted and together with the
// operational routes (ops.go) they form the whole interface; a method
// two concepts both declared would be promoted by neither and fail the
// build. The server itself is the middleware.
type server struct {
	*accountsHandlers
	*erasureHandlers
	*ingestHandlers
	*queriesHandlers
	*preferencesHandlers
	*journalHandlers
	*adminHandlers
	*connectionsHandlers

	cfg      Config
	deps     Deps
	limits   map[string]RateLimit
	hsts     string // Strict-Transport-Security value, "" = not sent
	log      *slog.Logger
	spec     *openapi3.T
	routes   map[string]*route // method + " " + echo path
	gatherer prometheus.Gatherer
	metrics  *httpMetrics
	tracer   trace.Tracer

	validateOpts       *openapi3filter.Options
	validateNoBodyOpts *openapi3filter.Options
}

var _ gen.ServerInterface = (*server)(nil)

// New builds the echo instance serving the whole API. It fails on missing
// ports or a metrics registry that holds conflicting collectors.
func New(cfg Config, deps Deps) (*echo.Echo, error) {
	switch {
	case deps.Accounts.Accounts == nil, deps.Ingest.Ingestor == nil, deps.Queries.Reader == nil,
		deps.Queries.Registrations == nil, deps.Edge.Tokens == nil, deps.Edge.Consistency == nil:
		return nil, errors.New("httpapi: Accounts.Accounts, Ingest.Ingestor, Queries.Reader, Queries.Registrations, Edge.Tokens and Edge.Consistency are required")
	case deps.Admin.ReadModels != nil && deps.Edge.Roles == nil:
		return nil, errors.New("httpapi: Admin.ReadModels needs Edge.Roles to tell administrators from other callers")
	case len(deps.Queries.CursorKey) < 32:
		return nil, errors.New("httpapi: Queries.CursorKey must be at least 32 bytes (it signs page cursors)")
	case deps.Edge.Idempotency != nil && len(deps.Edge.FingerprintKey) < 32:
		return nil, errors.New("httpapi: Edge.Idempotency needs a FingerprintKey of at least 32 bytes")
	case deps.Edge.Limiter != nil && deps.Edge.EmailKey == nil:
		return nil, errors.New("httpapi: Edge.Limiter needs EmailKey to key per-account limits")
	}
	if deps.Accounts.Profiles == nil {
		deps.Accounts.Profiles = deps.Queries.Reader
	}
	if deps.Journal.CursorKey == nil {
		deps.Journal.CursorKey = deps.Queries.CursorKey
	}
	if deps.Journal.Now == nil {
		deps.Journal.Now = deps.Queries.Now
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.ConsistencyWait <= 0 {
		cfg.ConsistencyWait = DefaultConsistencyWait
	}
	if cfg.ReadinessTimeout <= 0 {
		cfg.ReadinessTimeout = DefaultReadinessTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	s := &server{cfg: cfg, deps: deps, log: deps.Ops.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	reg := deps.Ops.Registry
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	s.gatherer = deps.Ops.Gatherer
	if s.gatherer == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			s.gatherer = g
		} else {
			s.gatherer = prometheus.DefaultGatherer
		}
	}
	var err error
	if s.metrics, err = newHTTPMetrics(reg); err != nil {
		return nil, err
	}
	if s.spec, err = gen.GetSpec(); err != nil {
		return nil, fmt.Errorf("httpapi: loading embedded spec: %w", err)
	}
	if s.routes, err = buildRoutes(s.spec); err != nil {
		return nil, err
	}
	if cfg.HSTSMaxAge > 0 {
		s.hsts = "max-age=" + strconv.Itoa(int(cfg.HSTSMaxAge/time.Second)) + "; includeSubDomains"
	}
	s.limits = cfg.RateLimits
	if s.limits == nil {
		s.limits = DefaultRateLimits()
	}
	for _, r := range s.routes {
		if _, ok := s.limits[r.rateClass]; r.rateClass != "" && !ok {
			return nil, fmt.Errorf("httpapi: %s %s: %s %q is not configured (configured: %s)",
				r.method, r.path, rateLimitExtension, r.rateClass, strings.Join(sortedKeys(s.limits), ", "))
		}
	}
	// The global provider delegates, so a provider installed after New is
	// still used.
	s.tracer = otel.Tracer(instrumentationName)
	s.validateOpts = validationOptions(false)
	s.validateNoBodyOpts = validationOptions(true)

	consistency := &edge.Consistency{Waiter: deps.Edge.Consistency, Wait: cfg.ConsistencyWait, Log: s.log, Observed: s.metrics.consistency}
	s.accountsHandlers = accounts.New(deps.Accounts)
	s.erasureHandlers = erasure.New(deps.Erasure)
	s.ingestHandlers = ingest.New(deps.Ingest)
	s.queriesHandlers = queries.New(deps.Queries, consistency)
	s.preferencesHandlers = preferences.New(deps.Settings, consistency)
	s.journalHandlers = journal.New(deps.Journal, consistency)
	s.adminHandlers = admin.New(deps.Admin, s.log)
	s.connectionsHandlers = connections.New(deps.Connections, s.log)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = func(err error, c echo.Context) { s.writeError(c, err) }
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	// e.Server is the production http.Server; Serve runs it.
	s.configureHTTPServer(e.Server, e)

	// Outermost first. Everything up to writeErrors sees the final status;
	// everything inside it may fail by returning an error.
	e.Use(s.requestID, s.securityHeaders, s.tracing, s.observe, s.writeErrors, s.recoverPanics)
	if len(cfg.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  cfg.CORSOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowHeaders:  []string{"Authorization", "Content-Type", HeaderIdempotencyKey, "If-Match", "If-None-Match", edge.HeaderConsistencyToken, HeaderRequestID},
			ExposeHeaders: []string{edge.HeaderConsistencyToken, "ETag", edge.HeaderConsistency, "Location", "Retry-After", HeaderRequestID, HeaderIdempotentReplayed, queries.HeaderLink},
			MaxAge:        600,
		}))
	}
	e.Use(s.authenticate, s.authorize, s.checkContentType, s.readBody, s.rateLimit, s.verifyWebhook, s.validateRequest, s.idempotency)
	gen.RegisterHandlers(e, s)
	return e, nil
}

// buildRoutes indexes the spec's operations by method and echo path.
func buildRoutes(spec *openapi3.T) (map[string]*route, error) {
	out := map[string]*route{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				return nil, fmt.Errorf("httpapi: %s %s has no operationId", method, path)
			}
			security := spec.Security
			if op.Security != nil {
				security = *op.Security
			}
			r := &route{
				opID:   lowerFirst(op.OperationID),
				method: method,
				path:   path,
				kin:    &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op},
				body:   op.RequestBody != nil,
			}
			for _, req := range security {
				if _, ok := req["bearerAuth"]; ok {
					r.bearer = true
				}
				if _, ok := req["webhookSignature"]; ok {
					r.webhook = true
				}
			}
			if v, ok := op.Extensions[roleExtension]; ok {
				role, _ := v.(string)
				if role != RoleAdmin {
					return nil, fmt.Errorf("httpapi: %s %s: unknown %s %v", method, path, roleExtension, v)
				}
				if !r.bearer {
					return nil, fmt.Errorf("httpapi: %s %s requires a role but no bearer token", method, path)
				}
				r.role = role
			}
			if strings.HasPrefix(path, adminPathPrefix) && r.role != RoleAdmin {
				return nil, fmt.Errorf("httpapi: %s %s must declare %s: %s", method, path, roleExtension, RoleAdmin)
			}
			r.domainBody = r.opID == opPushWebhook || r.opID == opPushMySamples || r.opID == opProviderWebhook
			var err error
			if r.idem, r.idemDeclared, err = parseIdempotent(op); err != nil {
				return nil, fmt.Errorf("httpapi: %s %s: %w", method, path, err)
			}
			if r.rateClass, err = parseRateClass(op); err != nil {
				return nil, fmt.Errorf("httpapi: %s %s: %w", method, path, err)
			}
			out[method+" "+echoPath(path)] = r
		}
	}
	for _, op := range []string{opPushWebhook, opPushMySamples, opRegister, opLogin} {
		found := false
		for _, r := range out {
			found = found || r.opID == op
		}
		if !found {
			return nil, fmt.Errorf("httpapi: spec lacks operation %q", op)
		}
	}
	return out, nil
}

// lowerFirst undoes oapi-codegen's capitalisation of operation ids in the
// embedded spec, so the ids match schemas/openapi.yaml.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// echoPath turns /v1/metrics/{type} into echo's /v1/metrics/:type.
func echoPath(p string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		b.WriteByte(':')
		b.WriteString(p[i+1 : i+j])
		p = p[i+j+1:]
	}
}

const routeKey = "httpapi.route"

// routeOf returns the spec operation the request was routed to, or nil for
// unknown paths, wrong methods and CORS preflights (edge.RouteLabel names
// it for handlers).
func routeOf(c echo.Context) *route {
	r, _ := c.Get(routeKey).(*route)
	return r
}
