package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

func TestRequestIDIsTheCorrelationID(t *testing.T) {
	h := newHarness(t)
	var seen []string
	h.ingestor.push = func(ctx context.Context, _ commands.PushSamples) (commands.Accepted, error) {
		seen = append(seen, CorrelationID(ctx))
		return commands.Accepted{EventID: uuid.New(), Token: acceptedToken}, nil
	}
	rec := h.do(req(http.MethodPost, "/v1/me/samples", appBody, append(bearer(aliceToken), HeaderRequestID, "req-123.abc_X")...))
	require.Falsef(t, rec.Header().Get(HeaderRequestID) != "req-123.abc_X" || seen[0] != "req-123.abc_X", "kept id: header %q, ctx %q", rec.Header().Get(HeaderRequestID), seen[0])
	rec = h.do(req(http.MethodPost, "/v1/me/samples", appBody, append(bearer(aliceToken), HeaderRequestID, "evil\"id with spaces")...))
	got := rec.Header().Get(HeaderRequestID)
	if _, err := uuid.Parse(got); err != nil || seen[1] != got {
		require.FailNow(t, fmt.Sprintf("replaced id: header %q, ctx %q", got, seen[1]))
	}
	require.Falsef(t, !strings.Contains(h.logs.String(), `"request_id":"req-123.abc_X"`), "access log lacks the request id: %s", h.logs)
	require.False(t, CorrelationID(context.Background()) != "" || CorrelationID(edge.WithCorrelationID(context.Background(), "x")) != "x", "CorrelationID helpers")
}

func TestAccessLogHasNoSecretsOrPII(t *testing.T) {
	h := newHarness(t)
	acceptAll(h)
	h.do(req(http.MethodPost, "/v1/me/samples?secret=query", appBody, bearer(aliceToken)...))
	h.do(signed(webhookBody, newKey, "msg_1", testNow))
	logs := h.logs.String()
	for _, bad := range []string{aliceToken, "apple_health", "iPhone", "secret=query", alice.String(), "webhook-signature", "v1,"} {
		assert.Falsef(t, strings.Contains(logs, bad), "access log contains %q:\n%s", bad, logs)
	}
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(logs, "\n", 2)[0]), &line))
	for _, k := range []string{"request_id", "method", "route", "status", "duration_ms"} {
		if _, ok := line[k]; !ok {
			assert.Fail(t, fmt.Sprintf("access log lacks %q: %v", k, line))
		}
	}
	assert.Falsef(t, line["route"] != "/v1/me/samples", "route %v", line["route"])
}

func TestPanicBecomesProblem(t *testing.T) {
	h := newHarness(t)
	h.queries.me = func(context.Context, uuid.UUID) (users.UserView, error) {
		panic("boom: secret detail")
	}
	rec := h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...))
	p := problemOf(t, rec, 500, "internal")
	require.Falsef(t, strings.Contains(rec.Body.String(), "boom") || p.Detail != "internal error", "panic leaked: %s", rec.Body)
	require.Falsef(t, !strings.Contains(h.logs.String(), "boom: secret detail") || !strings.Contains(h.logs.String(), "goroutine"), "panic not logged with its stack: %s", h.logs)
	// The server keeps serving.
	h.queries.me = func(_ context.Context, id uuid.UUID) (users.UserView, error) {
		return users.UserView{ID: id, Email: "a@b.org", Timezone: "UTC", CreatedAt: testNow}, nil
	}
	if rec := h.do(req(http.MethodGet, "/v1/me", nil, bearer(aliceToken)...)); rec.Code != 200 {
		require.FailNow(t, fmt.Sprint(rec.Code))
	}
}

func TestSecurityHeadersAndUnknownRoutes(t *testing.T) {
	h := newHarness(t)
	for _, r := range []*http.Request{
		req(http.MethodGet, "/healthz", nil),
		req(http.MethodGet, "/v1/nope", nil),
		req(http.MethodDelete, "/v1/me", nil),
		req(http.MethodGet, "/v1/me", nil),
	} {
		rec := h.do(r)
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-store",
			"X-Frame-Options":        "DENY",
		} {
			assert.Falsef(t, rec.Header().Get(k) != v, "%s %s: %s = %q", r.Method, r.URL.Path, k, rec.Header().Get(k))
		}
	}
	problemOf(t, h.do(req(http.MethodGet, "/v1/nope", nil)), 404, "not-found")
	rec := h.do(req(http.MethodDelete, "/v1/me", nil))
	problemOf(t, rec, 405, "method-not-allowed")
	require.Falsef(t, !strings.Contains(rec.Header().Get("Allow"), "GET"), "405 without Allow: %v", rec.Header())
}

func TestCORS(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Deps) { c.CORSOrigins = []string{"https://app.example"} })
	pre := req(http.MethodOptions, "/v1/me/samples", nil, "Origin", "https://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type,x-consistency-token,idempotency-key")
	rec := h.do(pre)
	require.Falsef(t, rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example", "preflight %d %v", rec.Code, rec.Header())
	h.queries.me = func(_ context.Context, id uuid.UUID) (users.UserView, error) {
		return users.UserView{ID: id, Email: "a@b.org", Timezone: "UTC", CreatedAt: testNow}, nil
	}
	rec = h.do(req(http.MethodGet, "/v1/me", nil, append(bearer(aliceToken), "Origin", "https://app.example")...))
	expose := rec.Header().Get("Access-Control-Expose-Headers")
	require.Falsef(t, !strings.Contains(expose, "X-Consistency-Token") || !strings.Contains(expose, "ETag") || !strings.Contains(expose, "Link"), "exposed headers %q (Link: a page's next page)", expose)
	rec = h.do(req(http.MethodGet, "/v1/me", nil, append(bearer(aliceToken), "Origin", "https://evil.example")...))
	require.Falsef(t, rec.Header().Get("Access-Control-Allow-Origin") != "", "foreign origin allowed: %v", rec.Header())
}

func TestTracingSpanReachesTheCommand(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	h := newHarness(t)
	var sc trace.SpanContext
	h.ingestor.push = func(ctx context.Context, _ commands.PushSamples) (commands.Accepted, error) {
		sc = trace.SpanContextFromContext(ctx)
		return commands.Accepted{EventID: uuid.New(), Token: acceptedToken}, nil
	}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h.do(req(http.MethodPost, "/v1/me/samples", appBody, append(bearer(aliceToken), "traceparent", parent)...))
	require.Falsef(t, !sc.IsValid() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736", "command context has span %v", sc)
	spans := rec.Ended()
	require.Falsef(t, len(spans) != 1 || spans[0].Name() != "POST /v1/me/samples" || spans[0].SpanKind() != trace.SpanKindServer, "spans %v", spans)
	found := false
	for _, a := range spans[0].Attributes() {
		found = found || (a.Key == "http.response.status_code" && a.Value.AsInt64() == 202)
	}
	require.Falsef(t, !found, "attributes %v", spans[0].Attributes())
	require.Falsef(t, !strings.Contains(h.logs.String(), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`), "access log lacks trace id: %s", h.logs)
}

func TestREDMetricsPerRouteTemplate(t *testing.T) {
	h := newHarness(t)
	h.queries.metrics = func(_ context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error) {
		return metrics.MetricSeries{Type: q.Type, Unit: "bpm", Bucket: q.Bucket}, nil
	}
	h.do(req(http.MethodGet, "/v1/metrics/steps", nil, bearer(aliceToken)...))
	h.do(req(http.MethodGet, "/v1/metrics/heart_rate", nil, bearer(aliceToken)...))
	h.do(req(http.MethodGet, "/v1/metrics/heart_rate", nil))
	h.do(req(http.MethodGet, "/no/such/thing/"+uuid.NewString(), nil))

	if n := counterValue(t, h.e2metrics().requests.WithLabelValues("/v1/metrics/{type}", "GET", "200")); n != 2 {
		require.FailNow(t, fmt.Sprintf("200s = %v", n))
	}
	if n := counterValue(t, h.e2metrics().requests.WithLabelValues("/v1/metrics/{type}", "GET", "401")); n != 1 {
		require.FailNow(t, fmt.Sprintf("401s = %v", n))
	}
	if n := counterValue(t, h.e2metrics().requests.WithLabelValues("unmatched", "GET", "404")); n != 1 {
		require.FailNow(t, fmt.Sprintf("unmatched = %v", n))
	}

	scrape := req(http.MethodGet, "/metrics", nil)
	scrape.RemoteAddr = "127.0.0.1:9090" // a local Prometheus
	rec := h.do(scrape)
	body := rec.Body.String()
	require.Falsef(t, rec.Code != 200 || !strings.Contains(body, `biosync_http_requests_total{method="GET",route="/v1/metrics/{type}",status="200"} 2`) ||
		!strings.Contains(body, "biosync_http_request_duration_seconds_bucket"), "metrics:\n%s", body)
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// e2metrics reaches the collectors registered in the harness registry.
func (h *harness) e2metrics() *httpMetrics {
	m, err := newHTTPMetrics(h.registry) // returns the already registered collectors
	require.NoError(h.t, err)
	return m
}

func TestReadiness(t *testing.T) {
	checks := []HealthCheck{
		{Name: "kafka", Check: func(context.Context) error { return nil }},
		{Name: "postgres", Check: func(context.Context) error { return nil }},
	}
	h := newHarness(t, func(_ *Config, d *Deps) { d.Ops.Health = checks })
	rec := h.do(req(http.MethodGet, "/readyz", nil))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), `"kafka":"up"`), "%d %s", rec.Code, rec.Body)

	checks[1].Check = func(context.Context) error { return errors.New("dial tcp 10.1.2.3:5432: refused") }
	checks = append(checks, HealthCheck{Name: "redis", Check: func(ctx context.Context) error {
		time.Sleep(5 * time.Second) // ignores ctx: the probe must not hang
		return nil
	}})
	h = newHarness(t, func(c *Config, d *Deps) { d.Ops.Health = checks; c.ReadinessTimeout = 50 * time.Millisecond })
	rec = h.do(req(http.MethodGet, "/readyz", nil))
	require.Falsef(t, rec.Code != 503 || !strings.Contains(rec.Body.String(), `"postgres":"down"`) || !strings.Contains(rec.Body.String(), `"redis":"down"`) ||
		!strings.Contains(rec.Body.String(), `"kafka":"up"`) || strings.Contains(rec.Body.String(), "10.1.2.3"), "%d %s", rec.Code, rec.Body)
	if rec := h.do(req(http.MethodGet, "/healthz", nil)); rec.Code != 200 {
		require.FailNow(t, fmt.Sprint(rec.Code))
	}
}

func TestServesTheSpec(t *testing.T) {
	raw := specBytes(t)
	h := newHarness(t, func(_ *Config, d *Deps) { d.Ops.Spec = raw })
	rec := h.do(req(http.MethodGet, "/openapi.yaml", nil))
	require.Falsef(t, rec.Code != 200 || rec.Body.String() != string(raw) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/yaml"), "%d %q", rec.Code, rec.Header())
	h = newHarness(t)
	rec = h.do(req(http.MethodGet, "/openapi.yaml", nil))
	require.Falsef(t, rec.Code != 200 || !strings.Contains(rec.Body.String(), `"openapi":"3.0.3"`), "embedded fallback: %d %.100s", rec.Code, rec.Body)
}

func TestNewRequiresPorts(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil {
		require.FailNow(t, "New without ports must fail")
	}
}

func TestErrorTable(t *testing.T) {
	reworded := edge.Reword(domain.ErrConflict, domain.ErrConflict, edge.KindConflict, edge.Wording{Detail: "taken", Field: "/email", FieldDetail: "in use"})
	cases := []struct {
		err    error
		status int
	}{
		{domain.ErrNotFound, 404},
		{domain.ErrConflict, 409},
		{reworded, 409},
		{domain.ErrUnauthorized, 401},
		{domain.ErrUnavailable, 503},
		{domain.ErrTimeout, 504},
		{context.DeadlineExceeded, 504},
		{context.Canceled, 499},
		{&domain.ValidationError{}, 422},
		{&domain.MalformedError{Detail: "x"}, 400},
		{errors.New("anything else"), 500},
	}
	for _, tc := range cases {
		k, _, _, _ := classify(tc.err)
		assert.Equal(t, tc.status, k.Status, "%v", tc.err)
	}
	_, detail, fields, _ := classify(reworded)
	assert.Equal(t, "taken", detail)
	assert.Equal(t, []domain.FieldProblem{{Field: "/email", Detail: "in use"}}, fields)
}

// /metrics names routes, projectors and their lag: it answers loopback and
// the configured networks only (before, anyone who reached the port).
func TestMetricsAnswerLoopbackAndTheConfiguredNetworksOnly(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Deps) {
		c.MetricsNetworks = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	})
	for addr, want := range map[string]int{
		"127.0.0.1:9090": 200, "[::1]:9090": 200, "10.1.2.3:9090": 200,
		"192.0.2.1:1234": 403, "10.2.0.1:9090": 403, "[2001:db8::1]:9090": 403,
	} {
		r := req(http.MethodGet, "/metrics", nil)
		r.RemoteAddr = addr
		rec := h.do(r)
		require.Equal(t, want, rec.Code, "scrape from %s: %s", addr, rec.Body.String())
		if want == 403 {
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), addr)
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), addr)
			assert.NotContains(t, rec.Body.String(), "biosync_http_requests_total", addr)
		}
	}
}
