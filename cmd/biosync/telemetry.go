package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
func setupTracing(ctx context.Context, endpoint string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if endpoint == "" {
		// No exporter: keep OTel's no-op provider. Recording spans nobody
		// exports cost ~10 % of the server's CPU on cached dashboard
		// reads; a caller's traceparent still flows into the events.
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
