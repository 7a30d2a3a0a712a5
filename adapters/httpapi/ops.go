package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
)

// The operational routes (GET /healthz, /readyz, /metrics and
// /openapi.yaml) belong to the server itself, not to a concept.

// HealthCheck is one dependency probed by GET /readyz, so a load balancer
// stops routing to an instance that cannot reach Kafka or PostgreSQL.
type HealthCheck struct {
	// Name labels the dependency in the /readyz body and the logs.
	Name string
	// Check returns nil when the dependency answers; it should honour ctx
	// (the probe gives up at Config.ReadinessTimeout either way).
	Check func(context.Context) error
}

// Healthz reports liveness (GET /healthz).
func (s *server) Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, gen.Health{Status: "ok"})
}

// Readyz probes every dependency concurrently (GET /readyz). Failure
// reasons are logged, not returned: they may name hosts.
func (s *server) Readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.ReadinessTimeout)
	defer cancel()
	out := gen.Readiness{Status: "ok", Checks: make(map[string]gen.ReadinessChecks, len(s.deps.Ops.Health))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, hc := range s.deps.Ops.Health {
		wg.Go(func() {
			err := runCheck(ctx, hc)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Checks[hc.Name] = "down"
				out.Status = "unavailable"
				s.log.LogAttrs(ctx, slog.LevelWarn, "readiness check failed", slog.String("check", hc.Name), slog.String("error", err.Error()))
				return
			}
			out.Checks[hc.Name] = "up"
		})
	}
	wg.Wait()
	if out.Status != "ok" {
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, out)
}

// runCheck bounds a check by ctx even if it ignores ctx, and turns a panic
// into a failure.
func runCheck(ctx context.Context, hc HealthCheck) (err error) {
	if hc.Check == nil {
		return errors.New("no check function")
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- errors.New("check panicked")
			}
		}()
		done <- hc.Check(ctx)
	}()
	select {
	case err = <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Metrics serves the Prometheus text format (GET /metrics) to loopback
// clients and Config.MetricsNetworks; anyone else gets 403.
func (s *server) Metrics(c echo.Context) error {
	if !s.mayScrape(edge.ClientIP(c)) {
		return &edge.Error{Kind: edge.KindForbidden, Detail: "metrics are served to loopback and the networks in BIOSYNC_METRICS_IPS only"}
	}
	promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}

// GetOpenAPISpec serves the API description (GET /openapi.yaml).
func (s *server) GetOpenAPISpec(c echo.Context) error {
	spec := s.deps.Ops.Spec
	if len(spec) == 0 {
		var err error
		if spec, err = gen.GetSpecJSON(); err != nil {
			return err
		}
	}
	return c.Blob(http.StatusOK, "application/yaml", spec)
}

// mayScrape reports whether a client address may read /metrics.
func (s *server) mayScrape(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	for _, p := range s.cfg.MetricsNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
