package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	httpqueries "github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/projections/metrics"
)

// baselineAccepted is the baseline's 202 body, shaped like the API's.
type baselineAccepted struct {
	EventID   uuid.UUID `json:"event_id"`
	Duplicate bool      `json:"duplicate"`
}

// dashboardFixture is what the baseline's GET endpoint encodes on every
// request: a summary of the same shape and size as a real one.
func dashboardFixture() metrics.Dashboard {
	avg7, avg28 := 48.2, 51.7
	rhr7, rhr28 := 58.1, 57.4
	now := time.Date(2026, 11, 20, 7, 30, 0, 0, time.UTC)
	return metrics.Dashboard{
		Date: "2026-11-20", Timezone: "Europe/Berlin",
		Steps:        &metrics.DayValue{Date: "2026-11-20", Value: 8342, Source: "garmin/fenix-7"},
		ActiveEnergy: &metrics.DayValue{Date: "2026-11-20", Value: 412.5, Source: "garmin/fenix-7"},
		LastNight: &metrics.SleepSummary{Date: "2026-11-20", Start: now.Add(-8 * time.Hour), End: now,
			AsleepMinutes: 431, DeepMinutes: 82, REMMinutes: 101, LightMinutes: 248, AwakeMinutes: 49, Source: "garmin/fenix-7"},
		HRV:       metrics.Baseline{Latest: &metrics.DayValue{Date: "2026-11-20", Value: 46}, Avg7: &avg7, Avg28: &avg28, Unit: "ms"},
		RestingHR: metrics.Baseline{Latest: &metrics.DayValue{Date: "2026-11-20", Value: 57}, Avg7: &rhr7, Avg28: &rhr28, Unit: "bpm"},
		Freshness: []metrics.Freshness{
			{Provider: "garmin", Device: "fenix-7", LastSampleAt: now, LastReceivedAt: now},
			{Provider: "apple_health", Device: "iphone", LastSampleAt: now, LastReceivedAt: now},
		},
		GeneratedAt: now,
	}
}

// runBaselineServer is the `baseline-server` subcommand: a bare echo/v4
// server with no middleware, the yardstick the API is compared with. POST
// /v1/webhooks/push decodes the same JSON body the API accepts and answers
// 202; GET /v1/dashboard/summary encodes a summary-sized JSON object.
func runBaselineServer(args []string) error {
	fs := flag.NewFlagSet("baseline-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/v1/webhooks/push", func(c echo.Context) error {
		var b ingest.Batch
		if err := c.Bind(&b); err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, baselineAccepted{EventID: uuid.New()})
	})
	fixture := httpqueries.NewDashboardJSON(dashboardFixture(), metric.Metric) // the wire form, encoded per request
	e.GET("/v1/dashboard/summary", func(c echo.Context) error { return c.JSON(http.StatusOK, fixture) })
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// The same server timeouts as biosync serve.
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("baseline listening on http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
