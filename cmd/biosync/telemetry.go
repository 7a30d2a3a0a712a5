package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// telemetry owns the Prometheus registry and the platform-level metrics
// (the HTTP adapter registers its own RED metrics on the same registry).
type telemetry struct {
	registry    *prometheus.Registry
	appendDur   *prometheus.HistogramVec
	batchSize   *prometheus.HistogramVec
	batchDur    *prometheus.HistogramVec
	projectorLg *prometheus.GaugeVec
}

func newTelemetry() *telemetry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	t := &telemetry{
		registry: reg,
		appendDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "biosync_eventstore_append_seconds", Help: "Latency of appending one event to Kafka (acks=all), by outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "biosync_projector_batch_events", Help: "Events per applied projector batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, []string{"projector"}),
		batchDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "biosync_projector_batch_seconds", Help: "Time to apply one projector batch (one transaction).",
			Buckets: prometheus.DefBuckets,
		}, []string{"projector"}),
		projectorLg: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "biosync_projector_lag_events", Help: "Head offset minus checkpoint, per projector and partition.",
		}, []string{"projector", "partition"}),
	}
	reg.MustRegister(t.appendDur, t.batchSize, t.batchDur, t.projectorLg)
	return t
}

func (t *telemetry) observeAppend(d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	t.appendDur.WithLabelValues(outcome).Observe(d.Seconds())
}

// Batch implements engine.Observer.
func (t *telemetry) Batch(projector string, partition int32, size int, d time.Duration) {
	t.batchSize.WithLabelValues(projector).Observe(float64(size))
	t.batchDur.WithLabelValues(projector).Observe(d.Seconds())
}

// Lag implements engine.Observer.
func (t *telemetry) Lag(projector string, partition int32, lag int64) {
	t.projectorLg.WithLabelValues(projector, strconv.Itoa(int(partition))).Set(float64(lag))
}

// newLogger builds the JSON slog logger every component shares.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// setupTracing installs the W3C propagator always (trace context travels in
// Kafka headers even without an exporter) and an OTLP/HTTP exporter only
// when an endpoint is configured.
func setupTracing(ctx context.Context, endpoint string, log *slog.Logger) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if endpoint == "" {
		// No exporter: keep OTel's no-op provider. Recording spans nobody
		// exports cost ~10 % of the server's CPU on cached dashboard
		// reads; a caller's traceparent still flows into the events.
		return func(context.Context) error { return nil }, nil
	}
	tracesURL, err := otlpTracesURL(endpoint)
	if err != nil {
		return nil, fmt.Errorf("BIOSYNC_OTLP_ENDPOINT: %w", err)
	}
	// Export failures (a collector down) are logged like everything else,
	// as JSON through the process's logger, not as plain text on stderr.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("OpenTelemetry export failed", "error", err.Error())
	}))
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(tracesURL))
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName("biosync"), semconv.ServiceVersion(buildVersion())))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// otlpTracesURL reads BIOSYNC_OTLP_ENDPOINT as OTel's
// OTEL_EXPORTER_OTLP_ENDPOINT is read: the collector's base URL
// (http://collector:4318), to which the traces path /v1/traces is added;
// a URL that already ends in /v1/traces is taken as it is.
func otlpTracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL of an OTLP/HTTP collector, e.g. http://collector:4318", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// buildVersion is the module version the binary was built as ("(devel)"
// for a build from a work tree).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
