package metrics

import (
	"context"

	"github.com/google/uuid"
)

// MaxNightsPage is the largest page of nights one read returns (a year
// and more; the HTTP spec publishes the same maximum).
const MaxNightsPage = 500

// NightsQuery asks for one user's nights whose wake date lies in
// [From, To] (YYYY-MM-DD, inclusive, as the journal's lists).
type NightsQuery struct {
	UserID   uuid.UUID
	From, To string
	// Limit bounds the page (0, or more than MaxNightsPage, reads
	// MaxNightsPage).
	Limit int
	// After continues a list after the night of this wake date.
	After string
}

// NightsPage answers a NightsQuery: nights by wake date; Next, when set, is
// the wake date after which the next page starts.
type NightsPage struct {
	Nights []Night
	Next   string
}

// Night is one night's derived values (domain/nights); nil is a value
// whose input is missing.
type Night struct {
	Date                     string // the wake date, YYYY-MM-DD
	Source                   string // the main session's
	SleepMinutes             float64
	InBedMinutes             float64
	DeepSleepMinutes         float64
	REMSleepMinutes          float64
	SleepLatencyMinutes      *float64
	SleepEfficiency          *float64
	HRVRMSSD                 *float64
	RestingHeartRate         *float64
	RespiratoryRate          *float64
	SkinTemperatureDeviation *float64
	Naps                     int
	AlgorithmVersion         int
}

// Nights reads one page of a user's nights in the live generation, keyset
// by wake date (one row per user and date, so a page boundary never skips
// or repeats a night).
func (r *Reader) Nights(ctx context.Context, q NightsQuery) (NightsPage, error) {
	out := NightsPage{Nights: []Night{}}
	gen, err := r.gen(ctx)
	if err != nil {
		return out, err
	}
	limit := pageLimit(q.Limit, MaxNightsPage)
	args := []any{q.UserID, q.From, q.To, limit + 1}
	after := ""
	if q.After != "" {
		after = ` AND wake_date > $5::date`
		args = append(args, q.After)
	}
	rows, err := r.Pool.Query(ctx, `SELECT wake_date::text, source, sleep_minutes, in_bed_minutes, deep_sleep_minutes, rem_sleep_minutes,
			sleep_latency_minutes, sleep_efficiency, hrv_rmssd, resting_heart_rate, respiratory_rate, skin_temperature_deviation, naps, algorithm_version
		FROM `+tbl("nights", gen)+` WHERE user_id = $1 AND wake_date >= $2::date AND wake_date <= $3::date`+after+`
		ORDER BY wake_date LIMIT $4`, args...)
	if err != nil {
		return out, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n Night
		var naps int32
		var v int16
		if err := rows.Scan(&n.Date, &n.Source, &n.SleepMinutes, &n.InBedMinutes, &n.DeepSleepMinutes, &n.REMSleepMinutes,
			&n.SleepLatencyMinutes, &n.SleepEfficiency, &n.HRVRMSSD, &n.RestingHeartRate, &n.RespiratoryRate, &n.SkinTemperatureDeviation, &naps, &v); err != nil {
			return out, err
		}
		if len(out.Nights) == limit {
			out.Next = out.Nights[limit-1].Date
			break
		}
		n.Naps, n.AlgorithmVersion = int(naps), int(v)
		out.Nights = append(out.Nights, n)
	}
	return out, unavailable(rows.Err())
}
