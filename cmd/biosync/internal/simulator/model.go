package simulator

import "time"

// Metric types understood by the BioSync push endpoint. They are constants so
// the generator and its tests cannot drift from the wire contract.
const (
	// MetricHeartRate is an instantaneous heart rate in bpm.
	MetricHeartRate = "heart_rate"
	// MetricRestingHeartRate is the nightly resting heart rate in bpm.
	MetricRestingHeartRate = "resting_heart_rate"
	// MetricHRVRMSSD is nightly heart-rate variability (RMSSD) in ms.
	MetricHRVRMSSD = "hrv_rmssd"
	// MetricSteps is a step count over the sample interval.
	MetricSteps = "steps"
	// MetricActiveEnergy is active energy burned over the interval, in kcal.
	MetricActiveEnergy = "active_energy"
	// MetricDistance is walking/running distance over the interval, in m.
	MetricDistance = "distance"
	// MetricSpO2 is the nightly average blood oxygen saturation in %.
	MetricSpO2 = "spo2"
	// MetricRespiratoryRate is the nightly average breathing rate.
	MetricRespiratoryRate = "respiratory_rate"
	// MetricSkinTempDeviation is the nightly skin temperature deviation from
	// the personal baseline, in degrees Celsius.
	MetricSkinTempDeviation = "skin_temperature_deviation"
	// MetricWeight is body weight in kg.
	MetricWeight = "weight"
)

// Units sent with each metric type, as the push contract spells them.
const (
	// UnitBPM is beats per minute.
	UnitBPM = "bpm"
	// UnitMillis is milliseconds.
	UnitMillis = "ms"
	// UnitCount is a dimensionless count.
	UnitCount = "count"
	// UnitKcal is kilocalories.
	UnitKcal = "kcal"
	// UnitMeters is metres.
	UnitMeters = "m"
	// UnitPercent is a percentage.
	UnitPercent = "%"
	// UnitBreathsPerMin is breaths per minute.
	UnitBreathsPerMin = "breaths/min"
	// UnitDegC is degrees Celsius.
	UnitDegC = "degC"
	// UnitKg is kilograms.
	UnitKg = "kg"
)

// Sleep stages used in SleepStage.Stage, as the push contract spells them.
const (
	// StageAwake marks wake periods inside a sleep session.
	StageAwake = "awake"
	// StageLight marks light (N1/N2) sleep.
	StageLight = "light"
	// StageDeep marks deep (N3, slow-wave) sleep.
	StageDeep = "deep"
	// StageREM marks REM sleep.
	StageREM = "rem"
)

// ProviderName identifies simulated data in the push payload's source, so it
// can be told apart from (and deleted separately from) real device data.
const ProviderName = "simulator"

// PushPayload is the JSON body of one POST /v1/webhooks/push delivery. It is
// the simulator's copy of the wire contract; the server owns the authoritative
// definition.
type PushPayload struct {
	// UserID is the BioSync user id returned at registration.
	UserID string `json:"user_id"`
	// Source names the provider and device that produced the data.
	Source Source `json:"source"`
	// Samples are the metric observations in this delivery.
	Samples []Sample `json:"samples"`
	// SleepSessions are the sleep sessions in this delivery.
	SleepSessions []SleepSession `json:"sleep_sessions"`
}

// Source identifies where pushed data came from, for provenance.
type Source struct {
	// Provider is always ProviderName for simulated data.
	Provider string `json:"provider"`
	// Device is the simulated device kind, e.g. "watch" or "ring".
	Device string `json:"device"`
}

// Sample is one metric observation. Point measurements (heart rate, weight)
// have Start equal to End; aggregates (steps, nightly averages) cover an
// interval. Times carry the user's local UTC offset.
type Sample struct {
	// Type is one of the Metric* constants.
	Type string `json:"type"`
	// Start is the beginning of the measured interval.
	Start time.Time `json:"start"`
	// End is the end of the measured interval (equal to Start for points).
	End time.Time `json:"end"`
	// Value is the measurement in Unit.
	Value float64 `json:"value"`
	// Unit is one of the Unit* constants.
	Unit string `json:"unit"`
}

// SleepSession is one night's sleep with its stage hypnogram.
type SleepSession struct {
	// Start is when the user went to bed (lights out).
	Start time.Time `json:"start"`
	// End is when the user got up.
	End time.Time `json:"end"`
	// Stages are contiguous, ordered and cover [Start, End) exactly.
	Stages []SleepStage `json:"stages"`
}

// SleepStage is one contiguous span of a single sleep stage.
type SleepStage struct {
	// Stage is one of the Stage* constants.
	Stage string `json:"stage"`
	// Start is the beginning of the span.
	Start time.Time `json:"start"`
	// End is the end of the span.
	End time.Time `json:"end"`
}
