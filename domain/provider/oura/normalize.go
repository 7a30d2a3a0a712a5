package oura

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/provider"
)

// Source is the source every Oura value carries.
const Source = string(provider.Oura)

// Record types (Oura's data_type, also the last path element of the
// usercollection endpoint) that Normalize maps.
const (
	DailyActivity  = "daily_activity"
	HeartRate      = "heartrate"
	Sleep          = "sleep"
	DailySpO2      = "daily_spo2"
	DailyReadiness = "daily_readiness"
	DailySleep     = "daily_sleep"
)

// DataTypes lists the record types BioSync fetches from Oura, in backfill
// order (daily documents first: they are few and fill the dashboard).
func DataTypes() []string {
	return []string{DailyActivity, DailyReadiness, DailySleep, DailySpO2, Sleep, HeartRate}
}

// Normalized is what one Oura record says in BioSync's terms.
type Normalized struct {
	// Batch holds the samples and sleep sessions (source "oura"); it is
	// applied like a push.
	Batch ingest.Batch `json:"batch"`
	// Scores are Oura's own scores of the record's day.
	Scores []provider.Score `json:"scores"`
}

// ErrUnknownType is returned for a record type this package does not map;
// callers skip such records (Oura adds types over time).
var ErrUnknownType = fmt.Errorf("oura: record type not mapped")

// Normalize maps one record of dataType. zone is the user's timezone, used
// only where Oura gives a local date without an offset (daily_spo2): the
// value then covers that date's local day. It returns ErrUnknownType for a
// type it does not map and an error for a record that is not the
// documented shape.
func Normalize(dataType string, record []byte, zone *time.Location) (Normalized, error) {
	if zone == nil {
		zone = time.UTC
	}
	out := Normalized{Batch: ingest.Batch{Source: ingest.Source{Provider: Source}}}
	var err error
	switch dataType {
	case DailyActivity:
		err = dailyActivity(record, zone, &out)
	case HeartRate:
		err = heartRate(record, &out)
	case Sleep:
		err = sleep(record, &out)
	case DailySpO2:
		err = dailySpO2(record, zone, &out)
	case DailyReadiness:
		err = dailyReadiness(record, zone, &out)
	case DailySleep:
		err = dailySleep(record, &out)
	default:
		return Normalized{}, fmt.Errorf("%w: %q", ErrUnknownType, dataType)
	}
	if err != nil {
		return Normalized{}, fmt.Errorf("oura %s: %w", dataType, err)
	}
	return out, nil
}

// dayBounds returns the local day of date: with an offset taken from a
// localized timestamp of the same record when there is one, otherwise in
// zone.
func dayBounds(date, localized string, zone *time.Location) (string, string, error) {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return "", "", fmt.Errorf("day %q: %w", date, err)
	}
	loc := zone
	if localized != "" {
		ts, err := time.Parse(time.RFC3339, localized)
		if err != nil {
			return "", "", fmt.Errorf("timestamp %q: %w", localized, err)
		}
		_, off := ts.Zone()
		loc = time.FixedZone("", off)
	}
	start := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	end := time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc)
	return format(start), format(end), nil
}

// format writes an instant with its offset ("Z" for UTC), the form a push
// carries.
func format(t time.Time) string { return t.Format(time.RFC3339) }

func sample(t metric.Type, start, end string, value float64, unit string) ingest.Sample {
	return ingest.Sample{Type: string(t), Start: start, End: end, Value: value, Unit: unit}
}

type activityRecord struct {
	Day            string   `json:"day"`
	Timestamp      string   `json:"timestamp"`
	Steps          *float64 `json:"steps"`
	ActiveCalories *float64 `json:"active_calories"`
	Score          *float64 `json:"score"`
}

// dailyActivity: steps (count) and active calories (kcal) over the local
// day of `day`. Oura's activity day starts at 04:00 local (its timestamp),
// but it names the day by its date, so the totals count for that date.
func dailyActivity(raw []byte, zone *time.Location, out *Normalized) error {
	var r activityRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	start, end, err := dayBounds(r.Day, r.Timestamp, zone)
	if err != nil {
		return err
	}
	if r.Steps != nil {
		out.Batch.Samples = append(out.Batch.Samples, sample(metric.Steps, start, end, *r.Steps, "count"))
	}
	if r.ActiveCalories != nil {
		out.Batch.Samples = append(out.Batch.Samples, sample(metric.ActiveEnergy, start, end, *r.ActiveCalories, "kcal"))
	}
	if r.Score != nil {
		out.Scores = append(out.Scores, provider.Score{Provider: provider.Oura, Kind: "activity", Day: r.Day, Value: *r.Score})
	}
	return nil
}

type heartRateRow struct {
	BPM       float64 `json:"bpm"`
	Source    string  `json:"source"`
	Timestamp string  `json:"timestamp"`
}

// heartRate: one heart_rate sample per row (bpm, an instant in UTC). The
// record is a page of the heartrate collection ({"data": [...]}): heart
// rate rows have no id of their own.
func heartRate(raw []byte, out *Normalized) error {
	var page struct {
		Data []heartRateRow `json:"data"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return err
	}
	for _, r := range page.Data {
		ts, err := time.Parse(time.RFC3339, r.Timestamp)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", r.Timestamp, err)
		}
		at := format(ts)
		out.Batch.Samples = append(out.Batch.Samples, sample(metric.HeartRate, at, at, r.BPM, "bpm"))
	}
	return nil
}

type sleepRecord struct {
	Type               string   `json:"type"`
	Day                string   `json:"day"`
	BedtimeStart       string   `json:"bedtime_start"`
	BedtimeEnd         string   `json:"bedtime_end"`
	AwakeTime          *float64 `json:"awake_time"`
	LightSleepDuration *float64 `json:"light_sleep_duration"`
	DeepSleepDuration  *float64 `json:"deep_sleep_duration"`
	RemSleepDuration   *float64 `json:"rem_sleep_duration"`
	AverageHRV         *float64 `json:"average_hrv"`
	LowestHeartRate    *float64 `json:"lowest_heart_rate"`
	AverageBreath      *float64 `json:"average_breath"`
	SleepPhase5Min     string   `json:"sleep_phase_5_min"`
	Readiness          *struct {
		Score                *float64 `json:"score"`
		TemperatureDeviation *float64 `json:"temperature_deviation"`
	} `json:"readiness"`
}

// phaseStage maps sleep_phase_5_min characters to stages.
var phaseStage = map[byte]string{'1': "deep", '2': "light", '3': "rem", '4': "awake"}

// sleep: one sleep session from bedtime_start to bedtime_end (local times
// with offsets). Stages come from sleep_phase_5_min (one character per
// 5 minutes from bedtime_start; runs of one stage become one stage); when
// the hypnogram is missing, stages are laid end to end in the order awake,
// light, deep, rem from the durations (minutes exact, order not). Beside
// it: average_hrv as hrv_rmssd (ms, Oura's HRV is RMSSD), lowest_heart_rate
// as resting_heart_rate and average_breath as respiratory_rate, each over
// the session. A record of type "deleted" says nothing.
func sleep(raw []byte, out *Normalized) error {
	var r sleepRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.Type == "deleted" {
		return nil
	}
	start, err := time.Parse(time.RFC3339, r.BedtimeStart)
	if err != nil {
		return fmt.Errorf("bedtime_start %q: %w", r.BedtimeStart, err)
	}
	end, err := time.Parse(time.RFC3339, r.BedtimeEnd)
	if err != nil {
		return fmt.Errorf("bedtime_end %q: %w", r.BedtimeEnd, err)
	}
	if end.Before(start) {
		return fmt.Errorf("bedtime_end %s before bedtime_start %s", r.BedtimeEnd, r.BedtimeStart)
	}
	session := ingest.SleepSession{Start: format(start), End: format(end)}
	if r.SleepPhase5Min != "" {
		session.Stages = hypnogram(r.SleepPhase5Min, start, end)
	} else {
		session.Stages = fromDurations(start, end, r.AwakeTime, r.LightSleepDuration, r.DeepSleepDuration, r.RemSleepDuration)
	}
	out.Batch.SleepSessions = append(out.Batch.SleepSessions, session)
	s, e := format(start), format(end)
	if r.AverageHRV != nil {
		out.Batch.Samples = append(out.Batch.Samples, sample(metric.HRVRMSSD, s, e, *r.AverageHRV, "ms"))
	}
	if r.LowestHeartRate != nil {
		out.Batch.Samples = append(out.Batch.Samples, sample(metric.RestingHeartRate, s, e, *r.LowestHeartRate, "bpm"))
	}
	if r.AverageBreath != nil {
		out.Batch.Samples = append(out.Batch.Samples, sample(metric.RespiratoryRate, s, e, *r.AverageBreath, "breaths/min"))
	}
	return nil
}

// hypnogram turns sleep_phase_5_min into stages, clipped to the session's
// end; unknown characters end the current stage without starting one.
func hypnogram(phases string, start, end time.Time) []ingest.Stage {
	var stages []ingest.Stage
	const step = 5 * time.Minute
	for i := 0; i < len(phases); {
		j := i
		for j < len(phases) && phases[j] == phases[i] {
			j++
		}
		stage, ok := phaseStage[phases[i]]
		from := start.Add(time.Duration(i) * step)
		to := start.Add(time.Duration(j) * step)
		if to.After(end) {
			to = end
		}
		if ok && from.Before(to) {
			stages = append(stages, ingest.Stage{Stage: stage, Start: format(from), End: format(to)})
		}
		i = j
	}
	return stages
}

// fromDurations lays the stage durations (seconds) end to end from start,
// clipped to end.
func fromDurations(start, end time.Time, awake, light, deep, rem *float64) []ingest.Stage {
	var stages []ingest.Stage
	at := start
	for _, d := range []struct {
		stage string
		secs  *float64
	}{{"awake", awake}, {"light", light}, {"deep", deep}, {"rem", rem}} {
		if d.secs == nil || *d.secs <= 0 || !at.Before(end) {
			continue
		}
		to := at.Add(time.Duration(*d.secs) * time.Second)
		if to.After(end) {
			to = end
		}
		stages = append(stages, ingest.Stage{Stage: d.stage, Start: format(at), End: format(to)})
		at = to
	}
	return stages
}

// dailySpO2: the night's average SpO2 (%) over the local day of `day`
// (Oura gives no offset for it: the user's zone decides).
func dailySpO2(raw []byte, zone *time.Location, out *Normalized) error {
	var r struct {
		Day            string `json:"day"`
		SpO2Percentage *struct {
			Average *float64 `json:"average"`
		} `json:"spo2_percentage"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.SpO2Percentage == nil || r.SpO2Percentage.Average == nil || *r.SpO2Percentage.Average == 0 {
		return nil // no reading that night
	}
	start, end, err := dayBounds(r.Day, "", zone)
	if err != nil {
		return err
	}
	out.Batch.Samples = append(out.Batch.Samples, sample(metric.SpO2, start, end, *r.SpO2Percentage.Average, "%"))
	return nil
}

// dailyReadiness: the temperature deviation (°C from the user's baseline)
// as skin_temperature_deviation over the day; the readiness score is
// Oura's and stays a provider score.
func dailyReadiness(raw []byte, zone *time.Location, out *Normalized) error {
	var r struct {
		Day                  string   `json:"day"`
		Timestamp            string   `json:"timestamp"`
		Score                *float64 `json:"score"`
		TemperatureDeviation *float64 `json:"temperature_deviation"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.TemperatureDeviation != nil {
		start, end, err := dayBounds(r.Day, r.Timestamp, zone)
		if err != nil {
			return err
		}
		out.Batch.Samples = append(out.Batch.Samples, sample(metric.SkinTemperatureDeviation, start, end, *r.TemperatureDeviation, "degC"))
	}
	if r.Score != nil {
		out.Scores = append(out.Scores, provider.Score{Provider: provider.Oura, Kind: "readiness", Day: r.Day, Value: *r.Score})
	}
	return nil
}

// dailySleep holds only Oura's sleep score (the measurements are in the
// sleep documents).
func dailySleep(raw []byte, out *Normalized) error {
	var r struct {
		Day   string   `json:"day"`
		Score *float64 `json:"score"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.Score != nil {
		out.Scores = append(out.Scores, provider.Score{Provider: provider.Oura, Kind: "sleep", Day: r.Day, Value: *r.Score})
	}
	return nil
}

// RecordID returns the id of a usercollection document ("id"), "" when it
// has none (heart rate rows).
func RecordID(record []byte) string {
	var r struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(record, &r) != nil {
		return ""
	}
	return strings.TrimSpace(r.ID)
}
