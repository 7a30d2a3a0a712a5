package queries

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

// Query range limits by bucket (documented in the spec).
const (
	maxRangeRaw  = 31 * 24 * time.Hour
	maxRangeHour = 93 * 24 * time.Hour
	maxRangeDay  = 400 * 24 * time.Hour
)

// Handlers serves the read routes; the assembled server embeds it.
type Handlers struct {
	deps        Deps
	consistency *edge.Consistency
	cursors     edge.Cursors
	// rendered keeps dashboard encodings (see renderedDashboards).
	rendered renderedDashboards
}

// New returns the read handlers over deps; consistency is the edge's
// read-your-writes wait.
func New(deps Deps, consistency *edge.Consistency) *Handlers {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Handlers{deps: deps, consistency: consistency, cursors: edge.Cursors{Key: deps.CursorKey}}
}

// GetMe returns the caller's profile (GET /v1/me).
func (h *Handlers) GetMe(c echo.Context, params gen.GetMeParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	// One bound for every wait of this read: the client's token and, if
	// the profile is still missing, the registration.
	deadline := time.Now().Add(h.consistency.Wait)
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelUsers); err != nil {
		return err
	}
	u, err := h.deps.Reader.Me(c.Request().Context(), uid)
	if errors.Is(err, domain.ErrNotFound) {
		u, err = h.meOnceProjected(c, uid, deadline)
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
// meanwhile) stays 404. The wait ends at deadline, shared with the
// client's own token wait.
func (h *Handlers) meOnceProjected(c echo.Context, uid uuid.UUID, deadline time.Time) (users.UserView, error) {
	ctx := c.Request().Context()
	registration, err := h.deps.Registrations.Registration(ctx, uid)
	if err != nil {
		return users.UserView{}, err
	}
	if len(registration) > 0 {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		err := h.consistency.Waiter.WaitFor(wctx, registration, ReadModelUsers)
		cancel()
		switch {
		case err == nil:
			u, err := h.deps.Reader.Me(ctx, uid)
			if !errors.Is(err, domain.ErrNotFound) {
				return u, err
			}
		case ctx.Err() != nil:
			return users.UserView{}, ctx.Err() // the client left
		case !errors.Is(err, domain.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded):
			return users.UserView{}, err
		}
	}
	return users.UserView{}, &edge.Error{Kind: edge.KindUnavailable, Detail: "your profile is still being prepared; retry shortly",
		Header: http.Header{"Retry-After": {"1"}}}
}

// GetMetricSeries returns one metric of the caller (GET /v1/metrics/{type}).
func (h *Handlers) GetMetricSeries(c echo.Context, typ gen.MetricType, params gen.GetMetricSeriesParams) error {
	uid, err := edge.Caller(c)
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
	from, to, err := edge.TimeRange(h.deps.Now(), params.From, params.To, limit)
	if err != nil {
		return err
	}
	q := metrics.MetricQuery{UserID: uid, Type: def.Type, From: from, To: to, Bucket: bucket}
	scope := edge.QueryScope(kindRawSeries, uid, string(def.Type), from, to)
	if bucket == metrics.BucketRaw {
		q.Limit = orDefault(params.Limit, DefaultRawPage)
		if params.Cursor != nil {
			pos, err := h.cursors.Decode(*params.Cursor, kindRawSeries, scope)
			if err != nil {
				return err
			}
			q.After = &metrics.SampleKey{Start: pos.A, End: pos.B, Source: pos.Source}
		}
	} else if err := notPaged(params.Limit, params.Cursor); err != nil {
		return err
	}
	tok, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelMetrics)
	if err != nil {
		return err
	}
	system, err := h.unitSystem(c.Request().Context(), uid, tok != nil)
	if err != nil {
		return err
	}
	series, err := h.deps.Reader.Metrics(c.Request().Context(), q)
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
	if n := series.Next; n != nil {
		out.Next = nextPage(c, from, to, h.cursors.Encode(kindRawSeries, scope, edge.Position{A: n.Start, B: n.End, Source: n.Source}))
	}
	return c.JSON(http.StatusOK, out)
}

// ListSleepSessions returns the caller's sleep sessions (GET
// /v1/sleep/sessions).
func (h *Handlers) ListSleepSessions(c echo.Context, params gen.ListSleepSessionsParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	from, to, err := edge.TimeRange(h.deps.Now(), params.From, params.To, maxRangeDay)
	if err != nil {
		return err
	}
	q := metrics.SleepQuery{UserID: uid, From: from, To: to, Limit: orDefault(params.Limit, DefaultSleepPage)}
	scope := edge.QueryScope(kindSleepList, uid, "", from, to)
	if params.Cursor != nil {
		pos, err := h.cursors.Decode(*params.Cursor, kindSleepList, scope)
		if err != nil {
			return err
		}
		q.After = &metrics.SleepKey{End: pos.A, Start: pos.B, Source: pos.Source}
	}
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelMetrics); err != nil {
		return err
	}
	page, err := h.deps.Reader.SleepSessions(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := gen.SleepSessionList{Sessions: make([]gen.SleepSessionView, 0, len(page.Sessions))}
	if n := page.Next; n != nil {
		out.Next = nextPage(c, from, to, h.cursors.Encode(kindSleepList, scope, edge.Position{A: n.End, B: n.Start, Source: n.Source}))
	}
	for _, ss := range page.Sessions {
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
// /v1/dashboard/summary); DashboardJSON is the wire shape, a test
// validates it against the spec.
func (h *Handlers) GetDashboardSummary(c echo.Context, params gen.GetDashboardSummaryParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	tok, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelMetrics)
	if err != nil {
		return err
	}
	system, err := h.unitSystem(c.Request().Context(), uid, tok != nil)
	if err != nil {
		return err
	}
	d, err := h.deps.Reader.Dashboard(c.Request().Context(), uid, tok)
	if err != nil {
		return err
	}
	body, err := h.rendered.body(d, system)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, body)
}

// unitSystem is the caller's unit system for a metric answer. fresh (the
// request carried a consistency token) reads the settings read model
// instead of a value cached for a second. The wait itself is only on the
// metrics read model: waiting on the selective settings projector would
// cost up to a second for every push token (its checkpoint moves lazily
// when a batch holds nothing it reads). A client that just changed its
// units reads GET /v1/me/settings with the token first, or sees the change
// within a second. Without a settings backend every answer is metric.
func (h *Handlers) unitSystem(ctx context.Context, uid uuid.UUID, fresh bool) (metric.System, error) {
	if h.deps.Units == nil {
		return metric.Metric, nil
	}
	return h.deps.Units.Units(ctx, uid, fresh)
}

// displaySeries converts a series (value, min, max of every point) into
// the caller's unit system.
func displaySeries(out *gen.MetricSeries, def metric.Definition, system metric.System) {
	unit, conv := def.Display(system)
	out.Unit = unit
	for i := range out.Points {
		p := &out.Points[i]
		p.Value, p.Min, p.Max = conv(p.Value), conv(p.Min), conv(p.Max)
	}
}

// orDefault is a page size the request named, or def.
func orDefault(limit *int, def int) int {
	if limit == nil {
		return def
	}
	return *limit
}

// notPaged refuses paging parameters on a read that is never paged (hour
// and day series): ignoring them would answer something else than asked.
func notPaged(limit *int, cursor *string) error {
	v := &domain.ValidationError{}
	if limit != nil {
		v.Add("/limit", "only raw series are paged; hour and day series come whole")
	}
	if cursor != nil {
		v.Add("/cursor", "only raw series are paged; hour and day series come whole")
	}
	return v.Err()
}

// nextPage is edge.NextPage with from and to fixed (a defaulted `to` is
// "now", which moves).
func nextPage(c echo.Context, from, to time.Time, cursor string) *string {
	return edge.NextPage(c, map[string]string{
		"from": from.UTC().Format(time.RFC3339Nano),
		"to":   to.UTC().Format(time.RFC3339Nano),
	}, cursor)
}

// HeaderLink carries the next page's URL (RFC 8288) on paged reads.
const HeaderLink = edge.HeaderLink

// Page sizes of the paged reads when the request names no limit
// (documented in the spec; the maxima are metrics.MaxRawPage and
// metrics.MaxSleepPage, which the spec's `maximum` repeats).
const (
	DefaultRawPage   = 10_000
	DefaultSleepPage = 500
)

// MaxCursorLength bounds a `cursor` before it is decoded (edge.MaxCursorLength).
const MaxCursorLength = edge.MaxCursorLength

// Kinds of cursor of the metric reads.
const (
	kindRawSeries edge.CursorKind = 'r'
	kindSleepList edge.CursorKind = 's'
)
