package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// An in-process OTLP/HTTP receiver: BIOSYNC_OTLP_ENDPOINT as documented
// (the collector's base URL) gets spans at /v1/traces, named after the
// service; before, they were posted to "/" (404) as unknown_service.
func TestTracesReachTheCollectorAtItsTracesPathAsBiosync(t *testing.T) {
	var (
		mu       sync.Mutex
		paths    []string
		services []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, r.URL.Path)
		if proto.Unmarshal(body, &req) == nil {
			for _, rs := range req.ResourceSpans {
				for _, a := range rs.GetResource().GetAttributes() {
					if a.Key == "service.name" {
						services = append(services, a.GetValue().GetStringValue())
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()

	shutdown, err := setupTracing(context.Background(), receiver.URL, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, span := otel.Tracer("test").Start(context.Background(), "push")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, shutdown(ctx))
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, paths, "nothing reached the collector")
	assert.Equal(t, "/v1/traces", paths[0])
	assert.Contains(t, services, "biosync")
}

// A collector that cannot be reached is reported through the process's
// JSON logger, not as plain text.
func TestAnUnreachableCollectorIsLoggedAsJSON(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, nil))
	shutdown, err := setupTracing(context.Background(), dead.URL, log)
	require.NoError(t, err)
	_, span := otel.Tracer("test").Start(context.Background(), "push")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = shutdown(ctx)
	line, _, _ := bytes.Cut(logs.Bytes(), []byte("\n"))
	var entry map[string]any
	require.NoError(t, json.Unmarshal(line, &entry), "log line %q is not JSON", line)
	assert.Equal(t, "OpenTelemetry export failed", entry["msg"])
}

func TestTheOTLPEndpointIsTheCollectorsBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":           "http://collector:4318/v1/traces",
		"http://collector:4318/":          "http://collector:4318/v1/traces",
		"https://otel.example.com/otlp":   "https://otel.example.com/otlp/v1/traces",
		"http://collector:4318/v1/traces": "http://collector:4318/v1/traces",
	} {
		got, err := otlpTracesURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"collector:4318", "grpc://collector:4317", "http://"} {
		_, err := otlpTracesURL(bad)
		assert.Error(t, err, bad)
	}
}
