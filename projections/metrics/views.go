package metrics

import (
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

// Page bounds: the most rows one read of a raw series or a sleep list
// returns. A read never stops there silently: when more rows follow, its
// answer says where the next page starts (MetricSeries.Next,
// SleepPage.Next). The HTTP spec publishes the same maxima.
const (
	MaxRawPage   = 50_000
	MaxSleepPage = 5_000
)

// MetricQuery asks for one metric of one user over [From, To).
type MetricQuery struct {
	UserID uuid.UUID
	Type   metric.Type
	From   time.Time
	To     time.Time
	Bucket string // raw, hour or day
	// Limit bounds a raw page (0, or more than MaxRawPage, reads
	// MaxRawPage). Hour and day series are bounded by their ranges and
	// never paged.
	Limit int
	// After continues a raw series after this sample (the Next of the
	// previous page); nil starts at From.
	After *SampleKey
}

// MetricSeries answers a MetricQuery. Value is the sum for cumulative types
// and the mean otherwise.
type MetricSeries struct {
	Type   metric.Type
	Unit   string
	Bucket string
	Points []MetricPoint
	// Next is set on a raw page that more samples follow: the key of its
	// last point, to be passed as After. nil on the last page.
	Next *SampleKey
}

// SampleKey is a raw sample's place in its series: the samples table's
// natural key within one user and type, in the order raw series are read
// (start, then end, then source). Pages continue strictly after the key
// of the previous page's last sample, so samples that share a start are
// neither skipped nor repeated at a page boundary, and a key names the
// same sample in every generation of the read model.
type SampleKey struct {
	Start  time.Time
	End    time.Time
	Source string
}

// SleepQuery asks for one user's sleep sessions that ended in [From, To).
type SleepQuery struct {
	UserID uuid.UUID
	From   time.Time
	To     time.Time
	// Limit bounds the page (0, or more than MaxSleepPage, reads
	// MaxSleepPage).
	Limit int
	// After continues the list after this session (the Next of the
	// previous page); nil starts at From.
	After *SleepKey
}

// SleepPage answers a SleepQuery: sessions in list order (end, then
// start, then source).
type SleepPage struct {
	Sessions []SleepSession
	// Next is set when more sessions follow: the key of the last one, to
	// be passed as After. nil on the last page.
	Next *SleepKey
}

// SleepKey is a sleep session's place in a list: the sleep_sessions
// table's natural key within one user, in list order (end, then start,
// then source), so sessions that end at the same instant are neither
// skipped nor repeated at a page boundary.
type SleepKey struct {
	End    time.Time
	Start  time.Time
	Source string
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
	Date   string
	Value  float64
	Source string
	Unit   string
}

// Baseline compares the latest daily value with its 7- and 28-day averages.
type Baseline struct {
	Latest *DayValue
	Avg7   *float64
	Avg28  *float64
	Unit   string
}

// Freshness tells when a source last delivered, so silent sync loss shows.
type Freshness struct {
	Provider       string
	Device         string
	LastSampleAt   time.Time
	LastReceivedAt time.Time
}

// Dashboard is the summary behind GET /v1/dashboard/summary. It is cached in
// Redis together with the log position it reflects. The HTTP adapter
// decides its wire form.
type Dashboard struct {
	UserID       uuid.UUID
	Date         string
	Timezone     string
	Steps        *DayValue
	ActiveEnergy *DayValue
	LastNight    *SleepSummary
	HRV          Baseline
	RestingHR    Baseline
	Freshness    []Freshness
	GeneratedAt  time.Time
	// Stamp identifies this exact summary in this process: one served
	// from the in-process cache keeps its stamp, a recomputed or reloaded
	// one gets a new one (0: not cached). A consumer may keep what it
	// derives from a summary under its stamp (the HTTP adapter keeps its
	// encodings, one per unit system, so a summary served thousands of
	// times a second is encoded once), and a newer summary never meets an
	// older derivation.
	Stamp uint64
}

// SleepSummary is last night's sleep on the dashboard.
type SleepSummary struct {
	Date          string
	Start         time.Time
	End           time.Time
	AsleepMinutes float64
	DeepMinutes   float64
	REMMinutes    float64
	LightMinutes  float64
	AwakeMinutes  float64
	Source        string
}
