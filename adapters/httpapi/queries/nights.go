package queries

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/metrics"
)

// Paging of GET /v1/nights, as the journal's lists: a range of wake dates
// (both inclusive) of at most MaxNightRangeDays, by default the 30 days up
// to tomorrow (UTC), and pages of DefaultNightsPage nights (the spec
// repeats both, and metrics.MaxNightsPage).
const (
	DefaultNightsPage  = 100
	MaxNightRangeDays  = 400
	defaultNightsRange = 30
	kindNights         = edge.CursorKind('n')
	dateLayout         = time.DateOnly
)

// ListNights returns one page of the caller's nights (GET /v1/nights).
func (h *Handlers) ListNights(c echo.Context, params gen.ListNightsParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	v := &domain.ValidationError{}
	today := h.deps.Now().UTC()
	to := wakeDate(v, "/to", params.To, time.Date(today.Year(), today.Month(), today.Day()+1, 0, 0, 0, 0, time.UTC))
	from := wakeDate(v, "/from", params.From, to.AddDate(0, 0, -defaultNightsRange))
	switch {
	case len(v.Problems) > 0:
	case from.After(to):
		v.Add("/from", "must not be after to")
	case to.Sub(from) >= MaxNightRangeDays*24*time.Hour:
		v.Add("/to", "must be less than %d days after from", MaxNightRangeDays)
	}
	if params.Limit != nil && (*params.Limit < 1 || *params.Limit > metrics.MaxNightsPage) {
		v.Add("/limit", "must be from 1 to %d", metrics.MaxNightsPage)
	}
	if err := v.Err(); err != nil {
		return err
	}
	q := metrics.NightsQuery{UserID: uid, From: from.Format(dateLayout), To: to.Format(dateLayout), Limit: orDefault(params.Limit, DefaultNightsPage)}
	scope := edge.QueryScope(kindNights, uid, "", from, to)
	if params.Cursor != nil {
		pos, err := h.cursors.Decode(*params.Cursor, kindNights, scope)
		if err != nil {
			return err
		}
		q.After = pos.A.UTC().Format(dateLayout)
	}
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelMetrics); err != nil {
		return err
	}
	page, err := h.deps.Reader.Nights(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := gen.NightList{Nights: make([]gen.Night, 0, len(page.Nights))}
	for _, n := range page.Nights {
		day, err := time.Parse(dateLayout, n.Date)
		if err != nil {
			return err
		}
		out.Nights = append(out.Nights, gen.Night{
			Date: openapi_types.Date{Time: day}, Source: n.Source,
			SleepMinutes: n.SleepMinutes, InBedMinutes: n.InBedMinutes, DeepSleepMinutes: n.DeepSleepMinutes, RemSleepMinutes: n.REMSleepMinutes,
			SleepLatencyMinutes: n.SleepLatencyMinutes, SleepEfficiency: n.SleepEfficiency, HrvRmssd: n.HRVRMSSD,
			RestingHeartRate: n.RestingHeartRate, RespiratoryRate: n.RespiratoryRate, SkinTemperatureDeviation: n.SkinTemperatureDeviation,
			Naps: n.Naps,
		})
	}
	if page.Next != "" {
		day, err := time.Parse(dateLayout, page.Next)
		if err != nil {
			return err
		}
		out.Next = edge.NextPage(c, map[string]string{"from": q.From, "to": q.To}, h.cursors.Encode(kindNights, scope, edge.Position{A: day}))
	}
	return c.JSON(http.StatusOK, out)
}

// wakeDate reads a `from` or `to` of the nights list: a date YYYY-MM-DD, or
// an RFC 3339 timestamp standing for the day it names in its own offset
// (the journal lists' rule); def when absent.
func wakeDate(v *domain.ValidationError, field string, raw *string, def time.Time) time.Time {
	if raw == nil {
		return def
	}
	if d, err := time.Parse(dateLayout, *raw); err == nil {
		return d
	}
	if t, err := time.Parse(time.RFC3339Nano, *raw); err == nil {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	v.Add(field, "must be a date YYYY-MM-DD")
	return def
}
