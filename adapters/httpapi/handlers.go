package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
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

// Query range rules (documented in the spec).
const (
	defaultRange   = 7 * 24 * time.Hour
	maxRangeRaw    = 31 * 24 * time.Hour
	maxRangeHour   = 93 * 24 * time.Hour
	maxRangeDay    = 400 * 24 * time.Hour
	channelWebhook = "webhook"
	channelApp     = "app"
)

var _ gen.ServerInterface = (*server)(nil)

// Register creates an account (POST /v1/auth/register).
func (s *server) Register(c echo.Context) error {
	var in gen.RegisterRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	reg, err := s.deps.Accounts.Register(c.Request().Context(), commands.RegisterUser{
		Email: in.Email, Password: in.Password, Timezone: in.Timezone,
	})
	if err != nil {
		return err
	}
	setToken(c, reg.Token)
	c.Response().Header().Set(echo.HeaderLocation, "/v1/me")
	return c.JSON(http.StatusCreated, gen.Registered{Id: reg.UserID, Email: reg.Email, Timezone: reg.Timezone})
}

// Login starts a session and issues its token pair (POST /v1/auth/login).
func (s *server) Login(c echo.Context) error {
	svc, err := s.sessions()
	if err != nil {
		return err
	}
	var in gen.LoginRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	sess, err := svc.Login(c.Request().Context(), commands.Login{
		Email: in.Email, Password: in.Password, UserAgent: c.Request().UserAgent(), IP: clientIP(c),
		OTP: deref(in.Otp), RecoveryCode: deref(in.RecoveryCode),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sessionBody(sess))
}

// PushWebhook accepts a signed server-to-server batch (POST
// /v1/webhooks/push). The signature was checked on the raw bytes by
// verifyWebhook before this runs.
func (s *server) PushWebhook(c echo.Context, _ gen.PushWebhookParams) error {
	d, ok := deliveryOf(c)
	if !ok {
		return errors.New("httpapi: webhook route reached without a verified delivery")
	}
	batch, err := ingest.Parse(rawBody(c), true)
	if err != nil {
		return err
	}
	uid, err := uuid.Parse(batch.UserID)
	if err != nil {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/user_id", Detail: "must be a UUID"}}}
	}
	return s.push(c, commands.PushSamples{UserID: uid, Batch: batch, DeliveryID: d.ID, Channel: channelWebhook})
}

// PushMySamples accepts a batch of the caller's own data (POST
// /v1/me/samples).
func (s *server) PushMySamples(c echo.Context, params gen.PushMySamplesParams) error {
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	batch, err := ingest.Parse(rawBody(c), false)
	if err != nil {
		return err
	}
	cmd := commands.PushSamples{UserID: uid, Batch: batch, Channel: channelApp}
	if params.IdempotencyKey != nil {
		cmd.DeliveryID = *params.IdempotencyKey
	}
	return s.push(c, cmd)
}

func (s *server) push(c echo.Context, cmd commands.PushSamples) error {
	acc, err := s.deps.Ingestor.Push(c.Request().Context(), cmd)
	if err != nil {
		return err
	}
	setToken(c, acc.Token)
	return c.JSON(http.StatusAccepted, gen.Accepted{EventId: acc.EventID, Duplicate: acc.Duplicate})
}

// GetMe returns the caller's profile (GET /v1/me).
func (s *server) GetMe(c echo.Context, params gen.GetMeParams) error {
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	if _, err := s.awaitToken(c, params.XConsistencyToken, ReadModelUsers); err != nil {
		return err
	}
	u, err := s.deps.Queries.Me(c.Request().Context(), uid)
	if errors.Is(err, domain.ErrNotFound) {
		u, err = s.meOnceProjected(c, uid)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, gen.Me{Id: u.ID, Email: u.Email, EmailVerified: u.EmailVerifiedAt != nil, Timezone: u.Timezone, CreatedAt: u.CreatedAt})
}

// meOnceProjected answers GET /v1/me when the users read model has no
// profile yet. The caller holds a live session, so the account exists: its
// registration has not been projected yet (a frontend asks right after
// login, with no consistency token). The read waits for the registration's
// position as it would for a token, bounded by the same wait; a profile
// still missing then is a retryable 503, never a 404 that would tell the
// frontend the account does not exist. An account that is gone (erased
// meanwhile) stays 404.
func (s *server) meOnceProjected(c echo.Context, uid uuid.UUID) (users.UserView, error) {
	ctx := c.Request().Context()
	registration, err := s.deps.Accounts.Registration(ctx, uid)
	if err != nil {
		return users.UserView{}, err
	}
	if len(registration) > 0 {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistencyWait)
		err := s.deps.Queries.WaitFor(wctx, registration, ReadModelUsers)
		cancel()
		switch {
		case err == nil:
			u, err := s.deps.Queries.Me(ctx, uid)
			if !errors.Is(err, domain.ErrNotFound) {
				return u, err
			}
		case ctx.Err() != nil:
			return users.UserView{}, ctx.Err() // the client left
		case !errors.Is(err, domain.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded):
			return users.UserView{}, err
		}
	}
	return users.UserView{}, &httpError{kind: kindUnavailable, detail: "your profile is still being prepared; retry shortly",
		header: http.Header{"Retry-After": {"1"}}}
}

// GetMetricSeries returns one metric of the caller (GET /v1/metrics/{type}).
func (s *server) GetMetricSeries(c echo.Context, typ gen.MetricType, params gen.GetMetricSeriesParams) error {
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	def, ok := metric.Lookup(metric.Type(typ))
	if !ok { // the spec's enum catches this first; kept for a spec that lags the domain
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/type", Detail: "unknown metric type"}}}
	}
	bucket := metrics.BucketDay
	if params.Bucket != nil {
		bucket = string(*params.Bucket)
	}
	limit := map[string]time.Duration{metrics.BucketRaw: maxRangeRaw, metrics.BucketHour: maxRangeHour, metrics.BucketDay: maxRangeDay}[bucket]
	if limit == 0 {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/bucket", Detail: "must be raw, hour or day"}}}
	}
	from, to, err := s.timeRange(params.From, params.To, limit)
	if err != nil {
		return err
	}
	tok, err := s.awaitToken(c, params.XConsistencyToken, ReadModelMetrics)
	if err != nil {
		return err
	}
	system, err := s.unitSystem(c.Request().Context(), uid, tok != nil)
	if err != nil {
		return err
	}
	series, err := s.deps.Queries.Metrics(c.Request().Context(), metrics.MetricQuery{
		UserID: uid, Type: def.Type, From: from, To: to, Bucket: bucket,
	})
	if err != nil {
		return err
	}
	out := gen.MetricSeries{
		Type:   gen.MetricType(def.Type),
		Unit:   series.Unit,
		Bucket: gen.Bucket(bucket),
		Points: make([]gen.MetricPoint, 0, len(series.Points)),
	}
	if out.Unit == "" {
		out.Unit = def.Unit
	}
	for _, p := range series.Points {
		mp := gen.MetricPoint{
			Start: p.Start,
			End:   p.End.In(p.Start.Location()), // one offset per point: the bucket's local frame
			Value: p.Value, Min: p.Min, Max: p.Max, Count: p.Count,
		}
		if p.Source != "" {
			src := p.Source
			mp.Source = &src
		}
		out.Points = append(out.Points, mp)
	}
	displaySeries(&out, def, system)
	return c.JSON(http.StatusOK, out)
}

// ListSleepSessions returns the caller's sleep sessions (GET
// /v1/sleep/sessions).
func (s *server) ListSleepSessions(c echo.Context, params gen.ListSleepSessionsParams) error {
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	from, to, err := s.timeRange(params.From, params.To, maxRangeDay)
	if err != nil {
		return err
	}
	if _, err := s.awaitToken(c, params.XConsistencyToken, ReadModelMetrics); err != nil {
		return err
	}
	sessions, err := s.deps.Queries.SleepSessions(c.Request().Context(), uid, from, to)
	if err != nil {
		return err
	}
	out := gen.SleepSessionList{Sessions: make([]gen.SleepSessionView, 0, len(sessions))}
	for _, ss := range sessions {
		out.Sessions = append(out.Sessions, gen.SleepSessionView{
			Start: ss.Start, End: ss.End, Date: ss.Date, Source: ss.Source,
			AsleepMinutes: ss.AsleepMinutes, InBedMinutes: ss.InBedMinutes, AwakeMinutes: ss.AwakeMinutes,
			LightMinutes: ss.LightMinutes, DeepMinutes: ss.DeepMinutes, RemMinutes: ss.REMMinutes,
			AlgorithmVersion: ss.AlgorithmVersion,
		})
	}
	return c.JSON(http.StatusOK, out)
}

// GetDashboardSummary returns the caller's summary (GET
// /v1/dashboard/summary); dashboardJSON is the wire shape, a test
// validates it against the spec.
func (s *server) GetDashboardSummary(c echo.Context, params gen.GetDashboardSummaryParams) error {
	uid, err := s.user(c)
	if err != nil {
		return err
	}
	tok, err := s.awaitToken(c, params.XConsistencyToken, ReadModelMetrics)
	if err != nil {
		return err
	}
	system, err := s.unitSystem(c.Request().Context(), uid, tok != nil)
	if err != nil {
		return err
	}
	d, err := s.deps.Queries.Dashboard(c.Request().Context(), uid, tok)
	if err != nil {
		return err
	}
	body, err := s.rendered.body(d, system)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
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
	out := gen.Readiness{Status: "ok", Checks: make(map[string]gen.ReadinessChecks, len(s.deps.Health))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, hc := range s.deps.Health {
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

// Metrics serves the Prometheus text format (GET /metrics).
func (s *server) Metrics(c echo.Context) error {
	promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}

// GetOpenAPISpec serves the API description (GET /openapi.yaml).
func (s *server) GetOpenAPISpec(c echo.Context) error {
	spec := s.deps.Spec
	if len(spec) == 0 {
		var err error
		if spec, err = gen.GetSpecJSON(); err != nil {
			return err
		}
	}
	return c.Blob(http.StatusOK, "application/yaml", spec)
}

// user returns the authenticated caller; authenticate guarantees it on
// bearer routes, so a miss is a wiring bug (500), never a 401 bypass.
func (s *server) user(c echo.Context) (uuid.UUID, error) {
	uid, ok := userFrom(c.Request().Context())
	if !ok {
		return uuid.Nil, errors.New("httpapi: bearer route reached without an authenticated user")
	}
	return uid, nil
}

// awaitToken implements read-your-writes: with a token, wait (bounded by
// ConsistencyWait) until the read models passed it. A wait that runs out is
// not an error: the query answers with what it has and `Consistency:
// timeout`, so a lagging projector costs freshness, not availability.
func (s *server) awaitToken(c echo.Context, header *string, readModels ...string) (eventstore.Token, error) {
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
	wctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistencyWait)
	defer cancel()
	start := time.Now()
	err = s.deps.Queries.WaitFor(wctx, tok, readModels...)
	result := "reached"
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err() // the client left
	case errors.Is(err, domain.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		result = "timeout"
		s.log.LogAttrs(ctx, slog.LevelInfo, "consistency wait timed out",
			slog.String("request_id", CorrelationID(ctx)), slog.String("route", routeLabel(c)),
			slog.String("token", tok.String()), slog.Duration("waited", time.Since(start)))
	default:
		s.metrics.consistency.WithLabelValues("error").Observe(time.Since(start).Seconds())
		return nil, err
	}
	s.metrics.consistency.WithLabelValues(result).Observe(time.Since(start).Seconds())
	c.Response().Header().Set(HeaderConsistency, result)
	return tok, nil
}

// timeRange applies the defaults (to = now, from = to - 7 days) and the
// limits of a query range.
func (s *server) timeRange(fromP, toP *time.Time, limit time.Duration) (time.Time, time.Time, error) {
	to := s.now()
	if toP != nil {
		to = *toP
	}
	from := to.Add(-defaultRange)
	if fromP != nil {
		from = *fromP
	}
	v := &domain.ValidationError{}
	switch {
	case !from.Before(to):
		v.Add("/from", "must be before to")
	case to.Sub(from) > limit:
		v.Add("/from", "the range from..to may span at most %d days here", int(limit/(24*time.Hour)))
	}
	return from, to, v.Err()
}

// setToken puts a command's consistency token on the response.
func setToken(c echo.Context, tok eventstore.Token) {
	if s := tok.String(); s != "" {
		c.Response().Header().Set(HeaderConsistencyToken, s)
	}
}

// decodeStrict decodes one JSON object, refusing unknown fields and
// trailing data (the spec validator has already named the fields; this is
// the belt to its braces).
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &domain.MalformedError{Detail: "the body does not match the expected JSON object"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &domain.MalformedError{Detail: "unexpected data after the JSON object"}
	}
	return nil
}
