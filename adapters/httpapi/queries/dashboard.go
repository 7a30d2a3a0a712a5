package queries

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/projections/metrics"
)

// DashboardJSON is the wire form of GET /v1/dashboard/summary: these names,
// this order and these omitempty rules are the API (the spec test and the
// golden tests check them byte for byte). Values are in the caller's unit
// system, each with its unit.
type DashboardJSON struct {
	Date         string            `json:"date"`
	Timezone     string            `json:"timezone"`
	Steps        *DayValueJSON     `json:"steps"`
	ActiveEnergy *DayValueJSON     `json:"active_energy"`
	LastNight    *SleepSummaryJSON `json:"last_night"`
	HRV          BaselineJSON      `json:"hrv_rmssd"`
	RestingHR    BaselineJSON      `json:"resting_heart_rate"`
	Freshness    []FreshnessJSON   `json:"freshness"`
	GeneratedAt  time.Time         `json:"generated_at"`
}

// DayValueJSON is a value of one local day on the dashboard.
type DayValueJSON struct {
	Date   string  `json:"date"`
	Value  float64 `json:"value"`
	Source string  `json:"source,omitempty"`
	Unit   string  `json:"unit,omitempty"`
}

// BaselineJSON is the latest daily value with its 7- and 28-day averages.
type BaselineJSON struct {
	Latest *DayValueJSON `json:"latest"`
	Avg7   *float64      `json:"avg_7d"`
	Avg28  *float64      `json:"avg_28d"`
	Unit   string        `json:"unit"`
}

// FreshnessJSON tells when a source last delivered.
type FreshnessJSON struct {
	Provider       string    `json:"provider"`
	Device         string    `json:"device,omitempty"`
	LastSampleAt   time.Time `json:"last_sample_at"`
	LastReceivedAt time.Time `json:"last_received_at"`
}

// SleepSummaryJSON is last night's sleep on the dashboard.
type SleepSummaryJSON struct {
	Date          string    `json:"date"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	AsleepMinutes float64   `json:"asleep_minutes"`
	DeepMinutes   float64   `json:"deep_minutes"`
	REMMinutes    float64   `json:"rem_minutes"`
	LightMinutes  float64   `json:"light_minutes"`
	AwakeMinutes  float64   `json:"awake_minutes"`
	Source        string    `json:"source"`
}

// NewDashboardJSON returns the wire form of d with every value in system
// and its unit stated. d may be a cached summary shared with other
// requests: nothing it points to is modified or shared with the result.
func NewDashboardJSON(d metrics.Dashboard, system metric.System) DashboardJSON {
	day := func(v *metrics.DayValue, typ metric.Type) *DayValueJSON {
		if v == nil {
			return nil
		}
		def, _ := metric.Lookup(typ)
		unit, conv := def.Display(system)
		return &DayValueJSON{Date: v.Date, Value: conv(v.Value), Source: v.Source, Unit: unit}
	}
	baseline := func(b metrics.Baseline, typ metric.Type) BaselineJSON {
		def, _ := metric.Lookup(typ)
		unit, conv := def.Display(system)
		out := BaselineJSON{Unit: unit, Latest: day(b.Latest, typ)}
		if b.Avg7 != nil {
			v := conv(*b.Avg7)
			out.Avg7 = &v
		}
		if b.Avg28 != nil {
			v := conv(*b.Avg28)
			out.Avg28 = &v
		}
		return out
	}
	out := DashboardJSON{
		Date: d.Date, Timezone: d.Timezone,
		Steps: day(d.Steps, metric.Steps), ActiveEnergy: day(d.ActiveEnergy, metric.ActiveEnergy),
		HRV: baseline(d.HRV, metric.HRVRMSSD), RestingHR: baseline(d.RestingHR, metric.RestingHeartRate),
		Freshness:   make([]FreshnessJSON, len(d.Freshness)),
		GeneratedAt: d.GeneratedAt,
	}
	if s := d.LastNight; s != nil {
		out.LastNight = &SleepSummaryJSON{Date: s.Date, Start: s.Start, End: s.End, AsleepMinutes: s.AsleepMinutes, DeepMinutes: s.DeepMinutes,
			REMMinutes: s.REMMinutes, LightMinutes: s.LightMinutes, AwakeMinutes: s.AwakeMinutes, Source: s.Source}
	}
	for i, f := range d.Freshness {
		out.Freshness[i] = FreshnessJSON{Provider: f.Provider, Device: f.Device, LastSampleAt: f.LastSampleAt, LastReceivedAt: f.LastReceivedAt}
	}
	return out
}

// encodeDashboard is the response body of d in system, as c.JSON writes it
// (with the trailing newline).
func encodeDashboard(d metrics.Dashboard, system metric.System) ([]byte, error) {
	body, err := json.Marshal(NewDashboardJSON(d, system))
	if err != nil {
		return nil, err
	}
	return append(body, '\n'), nil
}

// renderedDashboards keeps the encodings of the summaries the query side
// serves from its in-process cache, one per unit system, under the
// summary's stamp (metrics.Dashboard.Stamp): a summary served thousands of
// times a second is encoded once, and a newer summary (a new stamp) never
// meets an older encoding. One entry per user, cleared when it holds too
// many users, like the query side's own cache.
type renderedDashboards struct {
	m    sync.Map // uuid.UUID -> *renderedEntry
	size atomic.Int64
}

// renderedEntry holds the encodings of one summary: [0] metric, [1]
// imperial. Bodies are never changed once stored.
type renderedEntry struct {
	stamp  uint64
	bodies [2]atomic.Pointer[[]byte]
}

// maxRendered bounds the users with kept encodings.
const maxRendered = 100_000

// body returns the response body of d in system, encoding it at most once
// per stamp and system.
func (r *renderedDashboards) body(d metrics.Dashboard, system metric.System) ([]byte, error) {
	if d.Stamp == 0 { // not from the in-process cache: nothing to key it by
		return encodeDashboard(d, system)
	}
	i := 0
	if system == metric.Imperial {
		i = 1
	}
	e := r.entry(d.UserID, d.Stamp)
	if b := e.bodies[i].Load(); b != nil {
		return *b, nil
	}
	body, err := encodeDashboard(d, system)
	if err != nil {
		return nil, err
	}
	e.bodies[i].Store(&body)
	return body, nil
}

// entry returns the user's entry for stamp, replacing one of another stamp.
func (r *renderedDashboards) entry(user uuid.UUID, stamp uint64) *renderedEntry {
	if v, ok := r.m.Load(user); ok && v.(*renderedEntry).stamp == stamp {
		return v.(*renderedEntry)
	}
	if r.size.Add(1) > maxRendered {
		r.m.Clear()
		r.size.Store(0)
	}
	e := &renderedEntry{stamp: stamp}
	r.m.Store(user, e)
	return e
}
