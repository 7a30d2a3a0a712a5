package httpapi

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/domain"
)

// instrumentationName names the tracer of this package.
const instrumentationName = "github.com/biosync/biosync/adapters/httpapi"

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// validRequestID accepts a caller's id only when it is short and harmless in
// logs and headers; anything else is replaced by a fresh UUID.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// requestID resolves the route and the request id first, so every later
// layer (spans, logs, problems, events) can name both.
func (s *server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if r, ok := s.routes[req.Method+" "+c.Path()]; ok {
			c.Set(routeKey, r)
			edge.SetRoute(c, r.path)
		}
		id := req.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		c.Response().Header().Set(HeaderRequestID, id)
		c.SetRequest(req.WithContext(edge.WithCorrelationID(req.Context(), id)))
		return next(c)
	}
}

// securityHeaders follows the OWASP REST security cheat sheet: responses
// are data, never rendered, framed or cached (health data is sensitive).
// It runs second, so every response has them, errors and preflights
// included; the refusals net/http writes itself get them from refusal.
func (s *server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s.setSecurityHeaders(c.Response().Header())
		return next(c)
	}
}

// setSecurityHeaders is the one list of security headers. HSTS only when
// configured: it is meaningful behind TLS.
func (s *server) setSecurityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if s.hsts != "" {
		h.Set("Strict-Transport-Security", s.hsts)
	}
}

// tracing starts the server span and puts it into the request context, so
// commands copy its W3C trace context into the event headers and traces
// continue into the projectors.
func (s *server) tracing(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := otel.GetTextMapPropagator().Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		name := req.Method + " " + edge.RouteLabel(c)
		attrs := []attribute.KeyValue{
			attribute.String("http.request.method", req.Method),
			attribute.String("http.route", edge.RouteLabel(c)),
			attribute.String("biosync.request_id", edge.CorrelationID(ctx)),
		}
		if r := routeOf(c); r != nil {
			attrs = append(attrs, attribute.String("biosync.operation", r.opID))
		}
		ctx, span := s.tracer.Start(ctx, name,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
	}
}

// httpMetrics are the RED metrics per route template.
type httpMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	consistency *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "biosync_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "biosync_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		consistency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "biosync_http_consistency_wait_seconds",
			Help:    "Time queries waited for a consistency token, by outcome (reached, timeout, error).",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
	}
	var err error
	if m.requests, err = registerOrReuse(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = registerOrReuse(reg, m.duration); err != nil {
		return nil, err
	}
	if m.consistency, err = registerOrReuse(reg, m.consistency); err != nil {
		return nil, err
	}
	return m, nil
}

// registerOrReuse lets several servers (tests, a restart in-process) share
// one registry.
func registerOrReuse[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// probeRoutes are logged at debug level: load balancers and scrapers poll
// them every few seconds.
var probeRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe writes the access log line and the RED metrics. The log has no
// bodies, query strings, tokens, IP addresses or user ids, with one
// exception for the audit trail: on role-restricted (admin) routes it
// names the authenticated caller as actor_id, whether it was allowed or not.
func (s *server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil { // writeErrors is inside; this is only a safety net
			s.writeError(c, err)
		}
		elapsed := time.Since(start)
		req, resp := c.Request(), c.Response()
		route := edge.RouteLabel(c)
		status := resp.Status
		s.metrics.requests.WithLabelValues(route, req.Method, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(route, req.Method).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if probeRoutes[route] && status < 400 {
			level = slog.LevelDebug
		}
		ctx := req.Context()
		if !s.log.Enabled(ctx, level) {
			return nil
		}
		attrs := []slog.Attr{
			slog.String("request_id", edge.CorrelationID(ctx)),
			slog.String("method", req.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int64("bytes_in", req.ContentLength),
			slog.Int64("bytes_out", resp.Size),
		}
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		}
		if actor, ok := edge.Actor(c); ok {
			attrs = append(attrs, slog.String("actor_id", actor.String()))
		}
		s.log.LogAttrs(ctx, level, "http request", attrs...)
		return nil
	}
}

// writeErrors turns a returned error into its problem response here, inside
// the observers, so they record the status the client really got.
func (s *server) writeErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := next(c); err != nil {
			s.writeError(c, err)
		}
		return nil
	}
}

// recoverPanics turns a panic into a 500 problem (the stack goes to the
// log), keeping the process and its other requests alive.
func (s *server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = &panicError{value: r, stack: debug.Stack()}
			}
		}()
		return next(c)
	}
}

// Echo context keys of the caller of a role-restricted route (its id is
// edge.Actor, for the audit line of the access log).
const (
	roleKey = "httpapi.role" // string, the token's role claim
	mfaKey  = "httpapi.mfa"  // bool, the token's session was opened with MFA
)

// authenticate requires a valid access token on every operation whose
// security names bearerAuth and puts its user into the context: every /v1
// read and write is scoped to that user. On role-restricted routes it also
// learns the token's role (through Deps.Edge.Roles) for authorize, and records
// the caller for the access log.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil || !r.bearer {
			return next(c)
		}
		req := c.Request()
		token, ok := bearerToken(req.Header.Get(echo.HeaderAuthorization))
		if !ok {
			return &edge.Error{Kind: edge.KindUnauthorized, Detail: "send an access token: Authorization: Bearer <token>", Header: edge.BearerChallenge(false)}
		}
		var uid, sid uuid.UUID
		var err error
		if r.role != "" && s.deps.Edge.Roles != nil {
			var role string
			var mfa bool
			if uid, role, mfa, err = s.deps.Edge.Roles.VerifyRole(token); err == nil {
				c.Set(roleKey, role)
				c.Set(mfaKey, mfa)
			}
		} else {
			uid, sid, err = s.deps.Edge.Tokens.VerifyAccess(token)
		}
		if err != nil {
			if errors.Is(err, domain.ErrUnavailable) {
				return err
			}
			return &edge.Error{Kind: edge.KindUnauthorized, Detail: "the access token is invalid or expired", Header: edge.BearerChallenge(true), Cause: err}
		}
		if r.role != "" {
			edge.SetActor(c, uid)
		}
		c.SetRequest(req.WithContext(edge.WithSession(edge.WithUser(req.Context(), uid), sid)))
		return next(c)
	}
}

// authorize lets a role-restricted operation through only for a token with
// that role, of a session opened with MFA and from an allowed network
// (adminAllowed): 403 for any other authenticated caller, before the body
// is read or any port is called. Without an admin backend (Deps.Edge.Roles
// or Deps.Admin.ReadModels unset) the admin routes answer 503.
func (s *server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil || r.role == "" {
			return next(c)
		}
		notConfigured := edge.NotConfigured("admin API")
		if s.deps.Edge.Roles == nil {
			return notConfigured // no way to tell an administrator
		}
		if role, _ := c.Get(roleKey).(string); role != r.role {
			return &edge.Error{Kind: edge.KindForbidden, Detail: "this operation needs an access token with the " + r.role + " role",
				Header: http.Header{"Www-Authenticate": {`Bearer realm="biosync", error="insufficient_scope"`}}}
		}
		if err := s.adminAllowed(c); err != nil {
			return err
		}
		if s.deps.Admin.ReadModels == nil {
			return notConfigured
		}
		return next(c)
	}
}

// checkContentType answers 415 unless a body-taking operation gets JSON.
// It runs before the body is read.
func (s *server) checkContentType(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil || !r.body {
			return next(c)
		}
		ct := c.Request().Header.Get(echo.HeaderContentType)
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return &edge.Error{Kind: edge.KindUnsupportedMedia, Detail: "the body must be application/json"}
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return &edge.Error{Kind: edge.KindUnsupportedMedia, Detail: "the body must be UTF-8 encoded"}
		}
		return next(c)
	}
}

// readBody reads the whole body once, bounded by Config.BodyLimit (413
// above it), so the signature check, the validator and the handler all see
// the same raw bytes.
func (s *server) readBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil || !r.body {
			return next(c)
		}
		req := c.Request()
		limit := s.cfg.BodyLimit
		tooLarge := &edge.Error{Kind: edge.KindTooLarge, Detail: "the body is over " + strconv.FormatInt(limit, 10) + " bytes; split the upload"}
		if req.ContentLength > limit {
			return tooLarge
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
		if err != nil {
			return &domain.MalformedError{Detail: "the body could not be read"}
		}
		if int64(len(body)) > limit {
			return tooLarge
		}
		edge.SetBody(c, body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		return next(c)
	}
}

// verifyWebhook checks the Standard Webhooks signature over the raw bytes
// before anything parses them: an unsigned body is never even decoded.
func (s *server) verifyWebhook(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil || !r.webhook {
			return next(c)
		}
		d, err := s.deps.Edge.Webhooks.Verify(c.Request().Header, edge.Body(c))
		if err != nil {
			return err
		}
		// The verifier reads signatures split over several header lines as
		// one space-separated list; hand the rest of the chain the same one
		// line, so what the signature check accepted is not refused later
		// for its shape.
		if sigs := c.Request().Header.Values(webhooks.HeaderSignature); len(sigs) > 1 {
			c.Request().Header.Set(webhooks.HeaderSignature, strings.Join(sigs, " "))
		}
		edge.SetDelivery(c, d)
		return next(c)
	}
}

// adminAllowed applies the admin gate beyond the role: a session opened
// with MFA (unless Config.AdminMFAOptional) and, when Config.AdminNetworks
// is set, a client IP in one of them. The IP is the one the rate limiter
// keys on (edge.ClientIP, X-Forwarded-For only through trusted proxies).
func (s *server) adminAllowed(c echo.Context) error {
	if !s.cfg.AdminMFAOptional {
		if mfa, _ := c.Get(mfaKey).(bool); !mfa {
			return &edge.Error{Kind: edge.KindForbidden, Detail: "admin operations need a session opened with a one-time code: enable MFA and log in again with otp",
				Header: http.Header{"Www-Authenticate": {`Bearer realm="biosync", error="insufficient_user_authentication"`}}}
		}
	}
	if len(s.cfg.AdminNetworks) > 0 {
		ip, err := netip.ParseAddr(edge.ClientIP(c))
		allowed := false
		if err == nil {
			ip = ip.Unmap()
			for _, p := range s.cfg.AdminNetworks {
				if p.Contains(ip) {
					allowed = true
					break
				}
			}
		}
		if !allowed {
			return &edge.Error{Kind: edge.KindForbidden, Detail: "admin operations are not allowed from this network"}
		}
	}
	return nil
}
