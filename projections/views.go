package projections

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain/metric"
)

// Bucket sizes a metric series can be read in.
const (
	BucketRaw  = "raw"
	BucketHour = "hour"
	BucketDay  = "day"
)

// UserView is the profile read model behind GET /v1/me.
type UserView struct {
	ID        uuid.UUID
	Email     string
	Timezone  string
	CreatedAt time.Time
	// EmailVerifiedAt is when the address was verified; nil until then.
	EmailVerifiedAt *time.Time
}

// MetricQuery asks for one metric of one user over [From, To).
type MetricQuery struct {
	UserID uuid.UUID
	Type   metric.Type
	From   time.Time
	To     time.Time
	Bucket string // raw, hour or day
}

// MetricSeries answers a MetricQuery. Value is the sum for cumulative types
// and the mean otherwise.
type MetricSeries struct {
	Type   metric.Type
	Unit   string
	Bucket string
	Points []MetricPoint
}

// MetricPoint is one bucket (or one raw sample). Start carries the local
// offset of the bucket (day buckets start at local midnight).
type MetricPoint struct {
	Start  time.Time
	End    time.Time
	Value  float64
	Min    float64
	Max    float64
	Count  int
	Source string // winning source for cumulative day totals; sample source for raw
}

// SleepSession is one night with minutes per stage; Date is the local date
// the sleeper woke up on (a night counts toward the morning).
type SleepSession struct {
	Start            time.Time
	End              time.Time
	Date             string
	Source           string
	AwakeMinutes     float64
	LightMinutes     float64
	DeepMinutes      float64
	REMMinutes       float64
	AsleepMinutes    float64
	InBedMinutes     float64
	AlgorithmVersion int
}

// DayValue is a value attributed to one local day. Unit is filled on the
// way out (the reader's unit system); read models hold canonical units.
type DayValue struct {
	Date   string  `json:"date"`
	Value  float64 `json:"value"`
	Source string  `json:"source,omitempty"`
	Unit   string  `json:"unit,omitempty"`
}

// Baseline compares the latest daily value with its 7- and 28-day averages.
type Baseline struct {
	Latest *DayValue `json:"latest"`
	Avg7   *float64  `json:"avg_7d"`
	Avg28  *float64  `json:"avg_28d"`
	Unit   string    `json:"unit"`
}

// Freshness tells when a source last delivered, so silent sync loss shows.
type Freshness struct {
	Provider       string    `json:"provider"`
	Device         string    `json:"device,omitempty"`
	LastSampleAt   time.Time `json:"last_sample_at"`
	LastReceivedAt time.Time `json:"last_received_at"`
}

// Dashboard is the summary behind GET /v1/dashboard/summary. It is cached in
// Redis together with the log position it reflects (AsOf).
type Dashboard struct {
	UserID       uuid.UUID     `json:"-"`
	Date         string        `json:"date"`
	Timezone     string        `json:"timezone"`
	Steps        *DayValue     `json:"steps"`
	ActiveEnergy *DayValue     `json:"active_energy"`
	LastNight    *SleepSummary `json:"last_night"`
	HRV          Baseline      `json:"hrv_rmssd"`
	RestingHR    Baseline      `json:"resting_heart_rate"`
	Freshness    []Freshness   `json:"freshness"`
	GeneratedAt  time.Time     `json:"generated_at"`
	// Rendered is where the API layer keeps its encodings of this exact
	// summary (one per unit system): a summary served from the
	// in-process cache thousands of times a second is encoded once. Every
	// cached summary gets a fresh one, so a newer summary never meets an
	// older rendering. Nil-safe.
	Rendered *Rendered `json:"-"`
}

// Rendered memoizes renderings of one summary, keyed by the renderer.
type Rendered struct{ m sync.Map }

// Load returns the rendering stored under key.
func (r *Rendered) Load(key string) ([]byte, bool) {
	if r == nil {
		return nil, false
	}
	b, ok := r.m.Load(key)
	if !ok {
		return nil, false
	}
	return b.([]byte), true
}

// Store keeps a rendering under key; b must not be changed afterwards.
func (r *Rendered) Store(key string, b []byte) {
	if r != nil {
		r.m.Store(key, b)
	}
}

// SleepSummary is last night's sleep on the dashboard.
type SleepSummary struct {
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
