package metrics

import (
	"encoding/json"
	"time"
)

// The cached summary's encoding in the shared cache (Redis). It is the
// metrics read model's storage format, not an API: instances of several
// versions share the cache during a rolling deploy, so these names and
// their order stay as they are (the key carries "v1"). The HTTP adapter's
// wire form is separate, even where it coincides.
type (
	storedEntry struct {
		Generation int             `json:"g"`
		Partition  int32           `json:"p"`
		Next       int64           `json:"next"`
		Dashboard  storedDashboard `json:"d"`
	}
	storedDashboard struct {
		Date         string            `json:"date"`
		Timezone     string            `json:"timezone"`
		Steps        *storedDayValue   `json:"steps"`
		ActiveEnergy *storedDayValue   `json:"active_energy"`
		LastNight    *storedSleep      `json:"last_night"`
		HRV          storedBaseline    `json:"hrv_rmssd"`
		RestingHR    storedBaseline    `json:"resting_heart_rate"`
		Freshness    []storedFreshness `json:"freshness"`
		GeneratedAt  time.Time         `json:"generated_at"`
	}
	storedDayValue struct {
		Date   string  `json:"date"`
		Value  float64 `json:"value"`
		Source string  `json:"source,omitempty"`
		Unit   string  `json:"unit,omitempty"`
	}
	storedBaseline struct {
		Latest *storedDayValue `json:"latest"`
		Avg7   *float64        `json:"avg_7d"`
		Avg28  *float64        `json:"avg_28d"`
		Unit   string          `json:"unit"`
	}
	storedFreshness struct {
		Provider       string    `json:"provider"`
		Device         string    `json:"device,omitempty"`
		LastSampleAt   time.Time `json:"last_sample_at"`
		LastReceivedAt time.Time `json:"last_received_at"`
	}
	storedSleep struct {
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
)

// encodeCached is the cache entry of c (the summary's user is the key, not
// part of the value).
func encodeCached(c cachedDashboard) ([]byte, error) {
	d := c.Dashboard
	e := storedEntry{Generation: c.Generation, Partition: c.Partition, Next: c.Next, Dashboard: storedDashboard{
		Date: d.Date, Timezone: d.Timezone, Steps: (*storedDayValue)(d.Steps), ActiveEnergy: (*storedDayValue)(d.ActiveEnergy),
		LastNight: (*storedSleep)(d.LastNight), HRV: storeBaseline(d.HRV), RestingHR: storeBaseline(d.RestingHR), GeneratedAt: d.GeneratedAt,
	}}
	if d.Freshness != nil {
		e.Dashboard.Freshness = make([]storedFreshness, len(d.Freshness))
		for i, f := range d.Freshness {
			e.Dashboard.Freshness[i] = storedFreshness(f)
		}
	}
	return json.Marshal(e)
}

// decodeCached reads a cache entry written by encodeCached (or by any
// earlier version: the format is unchanged).
func decodeCached(raw []byte) (cachedDashboard, error) {
	var e storedEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return cachedDashboard{}, err
	}
	s := e.Dashboard
	d := Dashboard{
		Date: s.Date, Timezone: s.Timezone, Steps: (*DayValue)(s.Steps), ActiveEnergy: (*DayValue)(s.ActiveEnergy),
		LastNight: (*SleepSummary)(s.LastNight), HRV: loadBaseline(s.HRV), RestingHR: loadBaseline(s.RestingHR), GeneratedAt: s.GeneratedAt,
	}
	if s.Freshness != nil {
		d.Freshness = make([]Freshness, len(s.Freshness))
		for i, f := range s.Freshness {
			d.Freshness[i] = Freshness(f)
		}
	}
	return cachedDashboard{Generation: e.Generation, Partition: e.Partition, Next: e.Next, Dashboard: d}, nil
}

func storeBaseline(b Baseline) storedBaseline {
	return storedBaseline{Latest: (*storedDayValue)(b.Latest), Avg7: b.Avg7, Avg28: b.Avg28, Unit: b.Unit}
}

func loadBaseline(b storedBaseline) Baseline {
	return Baseline{Latest: (*DayValue)(b.Latest), Avg7: b.Avg7, Avg28: b.Avg28, Unit: b.Unit}
}
