package metrics

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/nights"
)

// Nights (issue 11): one nights row per user and wake date, derived by
// domain/nights from that date's sleep sessions and the samples inside its
// main session (HRV, heart rate, respiratory rate) or on the wake date
// (resting heart rate, skin temperature deviation). A row is recomputed
// whole, in the batch's transaction, from what sleep_sessions and samples
// hold after the batch's writes, for every night the batch may change:
//   - the wake dates of the sleep sessions it writes, and the stored wake
//     dates of those sessions (a corrected offset may move one);
//   - the wake dates of stored sessions that contain a new HRV, heart rate
//     or respiratory sample's start (a session in the same batch is
//     already covered by the first rule);
//   - the local day of a new resting heart rate or skin temperature
//     sample;
//   - after a deletion, the user's stored nights from two days before its
//     range to two days after it (wake dates are local days, at most
//     ±18 hours from UTC, and a session runs less than a day).
//
// The row holds no log position and is computed from rows read in a fixed
// order, so it does not depend on batch boundaries, redeliveries or
// rewinds, and a rebuild gives the same bytes.

// windowTypes are measured during the night: the main session's window
// decides which samples count.
var windowTypes = []string{string(metric.HRVRMSSD), string(metric.HeartRate), string(metric.RespiratoryRate)}

// dayTypes are reported by the provider for the wake date.
var dayTypes = []string{string(metric.RestingHeartRate), string(metric.SkinTemperatureDeviation)}

// sessionSpan bounds how far before a sample its containing session can
// start, so the lookup is an index range: a session longer than this is
// not found by its samples (its own writes still recompute its night).
const sessionSpan = 48 * time.Hour

type nightKey struct {
	user uuid.UUID
	date string
}

// nightsTouched collects the nights w may change, before w is written.
func (m *Projector) nightsTouched(ctx context.Context, tx pgx.Tx, w *pending) (map[nightKey]bool, error) {
	touched := map[nightKey]bool{}
	var users [][16]byte
	var starts, ends []time.Time
	var sources []string
	for k, s := range w.nights {
		touched[nightKey{k.user, s.wake}] = true
		users, starts, ends, sources = append(users, k.user), append(starts, k.start), append(ends, k.end), append(sources, k.source)
	}
	if len(users) > 0 {
		rows, err := tx.Query(ctx, `SELECT s.user_id, s.wake_date::text FROM `+m.table("sleep_sessions")+` s
			JOIN unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[]) AS x(u, st, en, so)
			ON s.user_id = x.u AND s.start_at = x.st AND s.end_at = x.en AND s.source = x.so`, users, starts, ends, sources)
		if err := collectNights(rows, err, touched); err != nil {
			return nil, fmt.Errorf("nights of stored sessions: %w", err)
		}
	}
	type span struct{ from, to time.Time }
	window := map[uuid.UUID]*span{}
	for k, s := range w.samples {
		switch k.typ {
		case metric.HRVRMSSD, metric.HeartRate, metric.RespiratoryRate:
			sp := window[k.user]
			if sp == nil {
				window[k.user] = &span{k.start, k.start}
				continue
			}
			if k.start.Before(sp.from) {
				sp.from = k.start
			}
			if k.start.After(sp.to) {
				sp.to = k.start
			}
		case metric.RestingHeartRate, metric.SkinTemperatureDeviation:
			touched[nightKey{k.user, s.day.Date}] = true
		}
	}
	for user, sp := range window {
		// The sessions that may hold one of the user's new samples; which
		// ones do is decided below against each sample.
		rows, err := tx.Query(ctx, `SELECT wake_date::text, start_at, end_at FROM `+m.table("sleep_sessions")+`
			WHERE user_id = $1 AND start_at <= $2 AND start_at > $3 AND end_at > $4`,
			user, sp.to, sp.from.Add(-sessionSpan), sp.from)
		if err != nil {
			return nil, fmt.Errorf("sessions around new samples: %w", err)
		}
		type stored struct {
			date       string
			start, end time.Time
		}
		var sessions []stored
		for rows.Next() {
			var s stored
			if err := rows.Scan(&s.date, &s.start, &s.end); err != nil {
				rows.Close()
				return nil, err
			}
			sessions = append(sessions, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sessions around new samples: %w", err)
		}
		if len(sessions) == 0 {
			continue
		}
		for k := range w.samples {
			if k.user != user || (k.typ != metric.HRVRMSSD && k.typ != metric.HeartRate && k.typ != metric.RespiratoryRate) {
				continue
			}
			for _, s := range sessions {
				if !k.start.Before(s.start) && k.start.Before(s.end) {
					touched[nightKey{user, s.date}] = true
				}
			}
		}
	}
	return touched, nil
}

// nightsAround collects a user's stored nights near a deletion's range
// (see the rules above), before the deletion removes anything.
func (m *Projector) nightsAround(ctx context.Context, tx pgx.Tx, user uuid.UUID, from, to time.Time) (map[nightKey]bool, error) {
	touched := map[nightKey]bool{}
	rows, err := tx.Query(ctx, `SELECT user_id, wake_date::text FROM `+m.table("nights")+`
		WHERE user_id = $1 AND wake_date >= $2::date AND wake_date <= $3::date`,
		user, from.UTC().Add(-2*24*time.Hour).Format(time.DateOnly), to.UTC().Add(2*24*time.Hour).Format(time.DateOnly))
	if err := collectNights(rows, err, touched); err != nil {
		return nil, fmt.Errorf("nights around a deletion: %w", err)
	}
	return touched, nil
}

func collectNights(rows pgx.Rows, err error, into map[nightKey]bool) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k nightKey
		if err := rows.Scan(&k.user, &k.date); err != nil {
			return err
		}
		into[k] = true
	}
	return rows.Err()
}

// recomputeNights derives the touched nights again from the stored rows
// and replaces them; a night without a session any more is deleted.
func (m *Projector) recomputeNights(ctx context.Context, tx pgx.Tx, touched map[nightKey]bool) error {
	byUser := map[uuid.UUID][]string{}
	for k := range touched {
		byUser[k.user] = append(byUser[k.user], k.date)
	}
	users := make([]uuid.UUID, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool { return users[i].String() < users[j].String() })
	for _, u := range users {
		dates := byUser[u]
		sort.Strings(dates)
		if err := m.recomputeUserNights(ctx, tx, u, dates); err != nil {
			return fmt.Errorf("nights: %w", err)
		}
	}
	return nil
}

func (m *Projector) recomputeUserNights(ctx context.Context, tx pgx.Tx, user uuid.UUID, dates []string) error {
	inputs := map[string]*nights.Input{}
	rows, err := tx.Query(ctx, `SELECT wake_date::text, start_at, end_at, source, first_sleep_at, awake_minutes, light_minutes, deep_minutes, rem_minutes
		FROM `+m.table("sleep_sessions")+` WHERE user_id = $1 AND wake_date = ANY($2::date[])
		ORDER BY wake_date, start_at, end_at, source`, user, dates)
	if err != nil {
		return err
	}
	for rows.Next() {
		var date string
		var s nights.Session
		var first *time.Time
		if err := rows.Scan(&date, &s.Start, &s.End, &s.Source, &first, &s.Awake, &s.Light, &s.Deep, &s.REM); err != nil {
			rows.Close()
			return err
		}
		if first != nil {
			s.FirstSleep = *first
		}
		in := inputs[date]
		if in == nil {
			in = &nights.Input{}
			inputs[date] = in
		}
		in.Sessions = append(in.Sessions, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	// The samples inside each main session, and the wake dates' day values.
	var mainDates []string
	var mainStarts, mainEnds []time.Time
	for _, date := range dates {
		if in := inputs[date]; in != nil {
			main, _, _ := nights.Main(in.Sessions)
			mainDates, mainStarts, mainEnds = append(mainDates, date), append(mainStarts, main.Start), append(mainEnds, main.End)
		}
	}
	if len(mainDates) > 0 {
		rows, err := tx.Query(ctx, `SELECT x.d, s.type, s.start_at, s.end_at, s.source, s.value
			FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[]) AS x(d, st, en)
			CROSS JOIN LATERAL (SELECT type, start_at, end_at, source, value FROM `+m.table("samples")+`
				WHERE user_id = $1 AND type = ANY($5::text[]) AND start_at >= x.st AND start_at < x.en) s
			UNION ALL
			SELECT local_date::text, type, start_at, end_at, source, value FROM `+m.table("samples")+`
			WHERE user_id = $1 AND type = ANY($6::text[]) AND local_date = ANY($2::date[])
				AND start_at >= $7 AND start_at < $8
			ORDER BY 1, 2, 3, 4, 5`,
			user, mainDates, mainStarts, mainEnds, windowTypes, dayTypes,
			mustDay(mainDates[0]).Add(-2*24*time.Hour), mustDay(mainDates[len(mainDates)-1]).Add(3*24*time.Hour))
		if err != nil {
			return err
		}
		for rows.Next() {
			var date, typ string
			var x nights.Sample
			if err := rows.Scan(&date, &typ, &x.Start, &x.End, &x.Source, &x.Value); err != nil {
				rows.Close()
				return err
			}
			in := inputs[date]
			switch metric.Type(typ) {
			case metric.HRVRMSSD:
				in.HRVRMSSD = append(in.HRVRMSSD, x)
			case metric.HeartRate:
				in.HeartRate = append(in.HeartRate, x)
			case metric.RespiratoryRate:
				in.Respiratory = append(in.Respiratory, x)
			case metric.RestingHeartRate:
				in.RestingHeartRate = append(in.RestingHeartRate, x)
			case metric.SkinTemperatureDeviation:
				in.SkinTemperatureDeviation = append(in.SkinTemperatureDeviation, x)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}

	var gone, wd, src []string
	var sleep, inBed, deep, rem []float64
	var latency, eff, hrv, rhr, resp, skin []*float64
	var naps []int32
	for _, date := range dates {
		in := inputs[date]
		if in == nil {
			gone = append(gone, date)
			continue
		}
		n, _ := nights.Derive(*in)
		wd, src = append(wd, date), append(src, n.Source)
		sleep, inBed, deep, rem = append(sleep, n.SleepMinutes), append(inBed, n.InBedMinutes), append(deep, n.DeepSleepMinutes), append(rem, n.REMSleepMinutes)
		latency, eff, hrv = append(latency, n.SleepLatencyMinutes), append(eff, n.SleepEfficiency), append(hrv, n.HRVRMSSD)
		rhr, resp, skin = append(rhr, n.RestingHeartRate), append(resp, n.RespiratoryRate), append(skin, n.SkinTemperatureDeviation)
		naps = append(naps, int32(n.Naps))
	}
	t := m.table("nights")
	if len(gone) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE user_id = $1 AND wake_date = ANY($2::date[])`, user, gone); err != nil {
			return err
		}
	}
	if len(wd) == 0 {
		return nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+t+` (user_id, wake_date, source, sleep_minutes, in_bed_minutes, deep_sleep_minutes, rem_sleep_minutes,
			sleep_latency_minutes, sleep_efficiency, hrv_rmssd, resting_heart_rate, respiratory_rate, skin_temperature_deviation, naps, algorithm_version)
		SELECT $1, d::date, so, sl, ib, de, re, la, ef, hr, rh, rr, sk, na, $15::smallint
		FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[],
			$10::float8[], $11::float8[], $12::float8[], $13::float8[], $14::int[]) AS x(d, so, sl, ib, de, re, la, ef, hr, rh, rr, sk, na)
		ON CONFLICT (user_id, wake_date) DO UPDATE SET source = EXCLUDED.source, sleep_minutes = EXCLUDED.sleep_minutes,
			in_bed_minutes = EXCLUDED.in_bed_minutes, deep_sleep_minutes = EXCLUDED.deep_sleep_minutes, rem_sleep_minutes = EXCLUDED.rem_sleep_minutes,
			sleep_latency_minutes = EXCLUDED.sleep_latency_minutes, sleep_efficiency = EXCLUDED.sleep_efficiency, hrv_rmssd = EXCLUDED.hrv_rmssd,
			resting_heart_rate = EXCLUDED.resting_heart_rate, respiratory_rate = EXCLUDED.respiratory_rate,
			skin_temperature_deviation = EXCLUDED.skin_temperature_deviation, naps = EXCLUDED.naps, algorithm_version = EXCLUDED.algorithm_version`,
		user, wd, src, sleep, inBed, deep, rem, latency, eff, hrv, rhr, resp, skin, naps, nights.Version)
	return err
}

// mustDay parses a date the database produced.
func mustDay(date string) time.Time {
	t, err := time.Parse(time.DateOnly, date)
	if err != nil {
		panic(fmt.Sprintf("nights: date %q from the database: %v", date, err))
	}
	return t
}
