package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Reader answers the metrics read model's queries (series, sleep sessions,
// the dashboard) from its live generation, with the dashboard cached in
// two levels: in process (1 s) in front of Cache (Redis).
type Reader struct {
	Pool       *pgxpool.Pool
	Cache      Cache // optional
	Partitions int32 // partition count of the event topic (to find a user's partition)
	Now        func() time.Time
	// CacheTTL bounds how long a cached dashboard may be served (default 10m).
	CacheTTL time.Duration
	// Versions tells which generation is live; nil means generation 1.
	Versions *engine.Versions

	// l1 holds recently read dashboards in this process for l1TTL, in
	// front of Redis: a hit costs neither a round trip nor JSON decoding.
	// Entries carry their log position like Redis entries, so a read with
	// a consistency token is never served from an older one.
	l1     sync.Map // uuid.UUID -> l1Entry
	l1Size atomic.Int64
}

type l1Entry struct {
	c   cachedDashboard
	exp time.Time
}

// l1TTL bounds how stale an eventual (tokenless) dashboard read can be on
// an instance that did not project the change itself.
const l1TTL = time.Second

func (r *Reader) l1Put(c cachedDashboard) {
	if r.l1Size.Add(1) > 100_000 {
		r.l1.Clear()
		r.l1Size.Store(0)
	}
	c.Dashboard.Stamp = stamps.Add(1)
	r.l1.Store(c.Dashboard.UserID, l1Entry{c: c, exp: time.Now().Add(l1TTL)})
}

// stamps numbers the summaries put in the in-process cache (see
// Dashboard.Stamp).
var stamps atomic.Uint64

// gen resolves the live generation once per request, so one answer never
// mixes tables of two generations across a blue/green switch.
func (r *Reader) gen(ctx context.Context) (int, error) {
	return r.Versions.Live(ctx, Name)
}

func tbl(base string, gen int) string { return engine.Table(base, gen) }

func unavailable(err error) error { return pgerr.Classify(err) }

func (r *Reader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Metrics reads one metric series: a raw series one page at a time (see
// MetricQuery.Limit and After), hour and day series whole (their ranges
// bound them). Each page reads the generation live when it is read: a
// blue/green switch between two pages continues the next page in the new
// generation after the same natural key, so no sample is skipped or
// repeated, and the later pages show the new generation's values.
func (r *Reader) Metrics(ctx context.Context, q MetricQuery) (MetricSeries, error) {
	def, ok := metric.Lookup(q.Type)
	if !ok {
		return MetricSeries{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/type", Detail: fmt.Sprintf("unknown metric type %q", q.Type)}}}
	}
	out := MetricSeries{Type: q.Type, Unit: def.Unit, Bucket: q.Bucket, Points: []MetricPoint{}}
	gen, err := r.gen(ctx)
	if err != nil {
		return out, err
	}
	var rows pgx.Rows
	samples, rollups := tbl("samples", gen), tbl("daily_rollups", gen)
	switch q.Bucket {
	case BucketRaw:
		return r.rawPage(ctx, q, samples, out)
	case BucketHour:
		// Hours are local hours (the sample's effective offset). For
		// cumulative types only the day's winning source counts, so phone
		// and watch are not added together.
		agg := "avg(s.value)"
		join := ""
		if def.Cumulative() {
			agg = "sum(s.value)"
			join = `JOIN ` + rollups + ` d ON d.user_id = s.user_id AND d.type = s.type AND d.local_date = s.local_date AND d.source = s.source`
		}
		rows, err = r.Pool.Query(ctx, `SELECT date_trunc('hour', (s.start_at AT TIME ZONE 'UTC') + make_interval(secs => s.utc_offset)) AS local_hour,
				s.utc_offset, `+agg+`, min(s.value), max(s.value), count(*)::int, min(s.source)
			FROM `+samples+` s `+join+`
			WHERE s.user_id = $1 AND s.type = $2 AND s.start_at >= $3 AND s.start_at < $4
			GROUP BY 1, 2 ORDER BY 1`, q.UserID, string(q.Type), q.From, q.To)
		if err != nil {
			return out, unavailable(err)
		}
		defer rows.Close()
		for rows.Next() {
			var wall time.Time
			var off int32
			var p MetricPoint
			if err := rows.Scan(&wall, &off, &p.Value, &p.Min, &p.Max, &p.Count, &p.Source); err != nil {
				return out, err
			}
			zone := time.FixedZone("", int(off))
			p.Start = time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), 0, 0, 0, zone)
			p.End = p.Start.Add(time.Hour)
			out.Points = append(out.Points, p)
		}
		return out, unavailable(rows.Err())
	default: // day
		rows, err = r.Pool.Query(ctx, `SELECT day_start, day_end, day_offset, value, min, max, count, source FROM `+rollups+`
			WHERE user_id = $1 AND type = $2 AND day_end > $3 AND day_start < $4 ORDER BY local_date`,
			q.UserID, string(q.Type), q.From, q.To)
	}
	if err != nil {
		return out, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p MetricPoint
		var off int32
		if err := rows.Scan(&p.Start, &p.End, &off, &p.Value, &p.Min, &p.Max, &p.Count, &p.Source); err != nil {
			return out, err
		}
		zone := time.FixedZone("", int(off))
		p.Start, p.End = p.Start.In(zone), p.End.In(zone)
		out.Points = append(out.Points, p)
	}
	return out, unavailable(rows.Err())
}

// rawPage reads one page of a raw series by keyset: the samples after
// q.After in (start_at, end_at, source) order, the samples table's primary
// key after (user_id, type), so the page is one index range scan and
// samples sharing a start are ordered, never skipped or repeated at a
// page boundary. One row beyond the limit is read to tell whether another
// page follows; no OFFSET, so a late page costs what an early one does.
func (r *Reader) rawPage(ctx context.Context, q MetricQuery, samples string, out MetricSeries) (MetricSeries, error) {
	limit := pageLimit(q.Limit, MaxRawPage)
	args := []any{q.UserID, string(q.Type), q.From, q.To, limit + 1}
	after := ""
	if q.After != nil {
		after = ` AND (start_at, end_at, source) > ($6, $7, $8)`
		args = append(args, q.After.Start, q.After.End, q.After.Source)
	}
	rows, err := r.Pool.Query(ctx, `SELECT start_at, end_at, utc_offset, value, source FROM `+samples+`
		WHERE user_id = $1 AND type = $2 AND start_at >= $3 AND start_at < $4`+after+`
		ORDER BY start_at, end_at, source LIMIT $5`, args...)
	if err != nil {
		return out, unavailable(err)
	}
	defer rows.Close()
	var last SampleKey
	for rows.Next() {
		var p MetricPoint
		var off int32
		if err := rows.Scan(&p.Start, &p.End, &off, &p.Value, &p.Source); err != nil {
			return out, err
		}
		if len(out.Points) == limit {
			out.Next = &last
			break
		}
		last = SampleKey{Start: p.Start, End: p.End, Source: p.Source}
		zone := time.FixedZone("", int(off))
		p.Start, p.End = p.Start.In(zone), p.End.In(zone)
		p.Min, p.Max, p.Count = p.Value, p.Value, 1
		out.Points = append(out.Points, p)
	}
	return out, unavailable(rows.Err())
}

// pageLimit is the page size a query asked for, at most bound.
func pageLimit(asked, bound int) int {
	if asked <= 0 || asked > bound {
		return bound
	}
	return asked
}

// SleepSessions lists one page of the sessions that ended in [q.From,
// q.To), by keyset in (end_at, start_at, source) order: the table's
// natural key, so sessions ending at the same instant are neither skipped
// nor repeated at a page boundary.
func (r *Reader) SleepSessions(ctx context.Context, q SleepQuery) (SleepPage, error) {
	out := SleepPage{Sessions: []SleepSession{}}
	gen, err := r.gen(ctx)
	if err != nil {
		return out, err
	}
	limit := pageLimit(q.Limit, MaxSleepPage)
	args := []any{q.UserID, q.From, q.To, limit + 1}
	after := ""
	if q.After != nil {
		after = ` AND (end_at, start_at, source) > ($5, $6, $7)`
		args = append(args, q.After.End, q.After.Start, q.After.Source)
	}
	rows, err := r.Pool.Query(ctx, `SELECT start_at, end_at, wake_date::text, source, utc_offset, awake_minutes, light_minutes, deep_minutes, rem_minutes, algorithm_version
		FROM `+tbl("sleep_sessions", gen)+` WHERE user_id = $1 AND end_at >= $2 AND end_at < $3`+after+`
		ORDER BY end_at, start_at, source LIMIT $4`, args...)
	if err != nil {
		return out, unavailable(err)
	}
	defer rows.Close()
	var last SleepKey
	for rows.Next() {
		var s SleepSession
		var off int32
		var v int16
		if err := rows.Scan(&s.Start, &s.End, &s.Date, &s.Source, &off, &s.AwakeMinutes, &s.LightMinutes, &s.DeepMinutes, &s.REMMinutes, &v); err != nil {
			return out, err
		}
		if len(out.Sessions) == limit {
			out.Next = &last
			break
		}
		last = SleepKey{End: s.End, Start: s.Start, Source: s.Source}
		zone := time.FixedZone("", int(off))
		s.Start, s.End = s.Start.In(zone), s.End.In(zone)
		s.AlgorithmVersion = int(v)
		s.AsleepMinutes = s.LightMinutes + s.DeepMinutes + s.REMMinutes
		s.InBedMinutes = s.End.Sub(s.Start).Minutes()
		out.Sessions = append(out.Sessions, s)
	}
	return out, unavailable(rows.Err())
}

// cachedDashboard is a summary with the read model position it reflects,
// as the two cache levels keep it.
type cachedDashboard struct {
	Generation int // the metrics generation it was computed from
	Partition  int32
	Next       int64 // the metrics checkpoint the summary reflects
	Dashboard  Dashboard
}

func dashboardKey(userID uuid.UUID) string { return "biosync:dashboard:v1:" + userID.String() }

// Dashboard returns the summary, from the cache when the cached entry
// reflects at least the positions in token (and is for today), otherwise
// computed from PostgreSQL and cached.
func (r *Reader) Dashboard(ctx context.Context, userID uuid.UUID, token eventstore.Token) (Dashboard, error) {
	p := engine.PartitionOf(userID, r.Partitions)
	need := int64(-1)
	for _, pos := range token {
		if pos.Partition == p && pos.Offset > need {
			need = pos.Offset
		}
	}
	gen, err := r.gen(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	if v, ok := r.l1.Load(userID); ok {
		e := v.(l1Entry)
		c := e.c
		if time.Now().Before(e.exp) && c.Generation == gen && c.Partition == p && c.Next > need && c.Dashboard.Date == r.today(c.Dashboard.Timezone) {
			return c.Dashboard, nil
		}
	}
	if r.Cache != nil {
		if raw, err := r.Cache.Get(ctx, dashboardKey(userID)); err == nil {
			if c, err := decodeCached(raw); err == nil && c.Generation == gen && c.Partition == p && c.Next > need && c.Dashboard.Date == r.today(c.Dashboard.Timezone) {
				c.Dashboard.UserID = userID
				r.l1Put(c)
				return c.Dashboard, nil
			}
		}
	}
	var next int64
	err = r.Pool.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2 AND partition = $3`, Name, gen, p).Scan(&next)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Dashboard{}, unavailable(err)
	}
	d, err := r.computeDashboard(ctx, userID, gen)
	if err != nil {
		return d, err
	}
	r.store(ctx, cachedDashboard{Generation: gen, Partition: p, Next: next, Dashboard: d})
	return d, nil
}

func (r *Reader) store(ctx context.Context, c cachedDashboard) {
	r.l1Put(c)
	if r.Cache == nil {
		return
	}
	raw, err := encodeCached(c)
	if err != nil {
		return
	}
	_, _ = r.Cache.Put(ctx, dashboardKey(c.Dashboard.UserID), CacheVersion{c.Generation, c.Next}, raw, r.cacheTTL())
}

func (r *Reader) cacheTTL() time.Duration {
	if r.CacheTTL == 0 {
		return 10 * time.Minute
	}
	return r.CacheTTL
}

func (r *Reader) today(zone string) string {
	return r.now().In(loadZone(zone)).Format("2006-01-02")
}

// computeDashboard builds the summary from the read models. "Today" is the
// local date in the user's latest timezone.
func (r *Reader) computeDashboard(ctx context.Context, userID uuid.UUID, gen int) (Dashboard, error) {
	d := Dashboard{UserID: userID, Timezone: "UTC", Freshness: []Freshness{}, GeneratedAt: r.now().UTC()}
	err := r.Pool.QueryRow(ctx, `SELECT zone FROM `+tbl("tz_history", gen)+` WHERE user_id = $1 ORDER BY valid_from DESC LIMIT 1`, userID).Scan(&d.Timezone)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return d, unavailable(err)
	}
	loc := loadZone(d.Timezone)
	today := r.now().In(loc)
	d.Date = today.Format("2006-01-02")
	rollups := tbl("daily_rollups", gen)

	for _, x := range []struct {
		typ metric.Type
		dst **DayValue
	}{{metric.Steps, &d.Steps}, {metric.ActiveEnergy, &d.ActiveEnergy}} {
		var v DayValue
		err := r.Pool.QueryRow(ctx, `SELECT local_date::text, value, source FROM `+rollups+` WHERE user_id = $1 AND type = $2 AND local_date = $3::date`, userID, string(x.typ), d.Date).
			Scan(&v.Date, &v.Value, &v.Source)
		if err == nil {
			*x.dst = &v
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return d, unavailable(err)
		}
	}

	var s SleepSummary
	err = r.Pool.QueryRow(ctx, `SELECT wake_date::text, start_at, end_at, light_minutes + deep_minutes + rem_minutes, deep_minutes, rem_minutes, light_minutes, awake_minutes, source, utc_offset
		FROM `+tbl("sleep_sessions", gen)+` WHERE user_id = $1 AND wake_date BETWEEN $2::date - 1 AND $2::date
		ORDER BY wake_date DESC, (end_at - start_at) DESC LIMIT 1`, userID, d.Date).
		Scan(&s.Date, &s.Start, &s.End, &s.AsleepMinutes, &s.DeepMinutes, &s.REMMinutes, &s.LightMinutes, &s.AwakeMinutes, &s.Source, new(int32))
	if err == nil {
		s.Start, s.End = s.Start.In(loc), s.End.In(loc)
		d.LastNight = &s
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return d, unavailable(err)
	}

	for _, x := range []struct {
		typ metric.Type
		dst *Baseline
	}{{metric.HRVRMSSD, &d.HRV}, {metric.RestingHeartRate, &d.RestingHR}} {
		def, _ := metric.Lookup(x.typ)
		x.dst.Unit = def.Unit
		var date, source *string
		var value, avg7, avg28 *float64
		err := r.Pool.QueryRow(ctx, `WITH days AS (
				SELECT local_date, value, source FROM `+rollups+` WHERE user_id = $1 AND type = $2 AND local_date <= $3::date AND local_date > $3::date - 28)
			SELECT (SELECT local_date::text FROM days ORDER BY local_date DESC LIMIT 1),
				(SELECT value FROM days ORDER BY local_date DESC LIMIT 1),
				(SELECT source FROM days ORDER BY local_date DESC LIMIT 1),
				(SELECT avg(value) FROM days WHERE local_date > $3::date - 7),
				(SELECT avg(value) FROM days)`, userID, string(x.typ), d.Date).
			Scan(&date, &value, &source, &avg7, &avg28)
		if err != nil {
			return d, unavailable(err)
		}
		if date != nil && value != nil {
			x.dst.Latest = &DayValue{Date: *date, Value: *value}
			if source != nil {
				x.dst.Latest.Source = *source
			}
		}
		x.dst.Avg7, x.dst.Avg28 = avg7, avg28
	}

	rows, err := r.Pool.Query(ctx, `SELECT provider, device, last_sample_at, last_received_at FROM `+tbl("source_freshness", gen)+` WHERE user_id = $1 ORDER BY provider, device`, userID)
	if err != nil {
		return d, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var f Freshness
		if err := rows.Scan(&f.Provider, &f.Device, &f.LastSampleAt, &f.LastReceivedAt); err != nil {
			return d, err
		}
		d.Freshness = append(d.Freshness, f)
	}
	return d, unavailable(rows.Err())
}
