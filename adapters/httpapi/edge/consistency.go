package edge

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// Header names of the read-your-writes protocol.
const (
	// HeaderConsistencyToken carries the token out of commands and back
	// into queries.
	HeaderConsistencyToken = "X-Consistency-Token"
	// HeaderConsistency tells a query that got a token whether the wait
	// was "reached" or ran out ("timeout", data possibly stale).
	HeaderConsistency = "Consistency"
)

// Waiter is the query side's consistency wait. It is a port so handlers
// wait for read models without knowing how checkpoints are followed.
type Waiter interface {
	// WaitFor blocks until every named read model has passed token,
	// bounded by ctx; domain.ErrTimeout otherwise.
	WaitFor(ctx context.Context, token eventstore.Token, readModels ...string) error
}

// Consistency is the read-your-writes wait every query handler shares:
// one bound, one log line and one histogram for all of them.
type Consistency struct {
	// Waiter follows the read models' checkpoints.
	Waiter Waiter
	// Wait bounds one wait (Config.ConsistencyWait).
	Wait time.Duration
	// Log receives the line of a wait that ran out.
	Log *slog.Logger
	// Observed records each wait's duration by result (reached, timeout,
	// error).
	Observed *prometheus.HistogramVec
}

// Await implements read-your-writes: with a token, wait (bounded by Wait)
// until the read models passed it. A wait that runs out is not an error:
// the query answers with what it has and `Consistency: timeout`, so a
// lagging projector costs freshness, not availability. It returns the
// parsed token (nil without one).
func (k *Consistency) Await(c echo.Context, header *string, readModels ...string) (eventstore.Token, error) {
	if header == nil || *header == "" {
		return nil, nil
	}
	tok, err := eventstore.ParseToken(*header)
	if err != nil {
		return nil, &domain.MalformedError{Field: HeaderConsistencyToken, Detail: "not a consistency token from this API"}
	}
	if len(tok) == 0 {
		return nil, nil
	}
	ctx := c.Request().Context()
	wctx, cancel := context.WithTimeout(ctx, k.Wait)
	defer cancel()
	start := time.Now()
	err = k.Waiter.WaitFor(wctx, tok, readModels...)
	result := "reached"
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err() // the client left
	case errors.Is(err, domain.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		result = "timeout"
		k.Log.LogAttrs(ctx, slog.LevelInfo, "consistency wait timed out",
			slog.String("request_id", CorrelationID(ctx)), slog.String("route", RouteLabel(c)),
			slog.String("token", tok.String()), slog.Duration("waited", time.Since(start)))
	default:
		k.Observed.WithLabelValues("error").Observe(time.Since(start).Seconds())
		return nil, err
	}
	k.Observed.WithLabelValues(result).Observe(time.Since(start).Seconds())
	c.Response().Header().Set(HeaderConsistency, result)
	return tok, nil
}

// SetToken puts a command's consistency token on the response.
func SetToken(c echo.Context, tok eventstore.Token) {
	if s := tok.String(); s != "" {
		c.Response().Header().Set(HeaderConsistencyToken, s)
	}
}
