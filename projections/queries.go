package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
)

// Cache is the summary cache port (Redis in production). Losing it loses
// nothing: every entry can be recomputed from PostgreSQL.
//
// Entries are versioned by the read model position they reflect, so that
// several instances refreshing the same entry cannot replace a newer one
// with an older one: the cache is shared, the computations are not ordered.
type Cache interface {
	// Get returns ErrCacheMiss when the key is absent or only marks a
	// version (see Invalidate).
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value unless the entry holds a newer version of the same
	// generation (a larger Next); it reports whether it stored.
	Put(ctx context.Context, key string, v CacheVersion, value []byte, ttl time.Duration) (bool, error)
	// Invalidate replaces the entries of keys by version marks unless they
	// are newer: readers miss, and a computation older than v that
	// finishes later cannot store its result.
	Invalidate(ctx context.Context, v CacheVersion, ttl time.Duration, keys ...string) error
}

// CacheVersion is the read model position a cached entry reflects: the
// projector generation and that generation's checkpoint (next offset) of
// the user's partition.
type CacheVersion struct {
	Generation int
	Next       int64
}

// ErrCacheMiss is returned by Cache.Get for an absent key.
var ErrCacheMiss = errors.New("cache miss")

// Reader answers the query side from the read models. It implements the
// HTTP adapter's Queries port.
type Reader struct {
	Pool       *pgxpool.Pool
	Cache      Cache // optional
	Partitions int32 // partition count of the event topic (to find a user's partition)
	Now        func() time.Time
	// CacheTTL bounds how long a cached dashboard may be served (default 10m).
	CacheTTL time.Duration
	// Versions tells which generation of each projector is live; nil
	// means generation 1.
	Versions *Versions
	// Progress, when followed (Checkpoints.Follow), ends consistency waits
	// at the projector's commit instead of the next poll.
	Progress *Checkpoints
	// LiveRecheck is how often a consistency wait re-checks on its own
	// while Progress is live, in case the feed died without an error
	// (default 250ms).
	LiveRecheck time.Duration

	// l1 holds recently read dashboards in this process for l1TTL, in
	// front of Redis: a hit costs neither a round trip nor JSON decoding.
	// Entries carry their log position like Redis entries, so a read with
	// a consistency token is never served from an older one.
	l1     sync.Map // uuid.UUID -> l1Entry
	l1Size atomic.Int64

	// units holds recently read unit systems (see Units).
	units     sync.Map // uuid.UUID -> unitsEntry
	unitsSize atomic.Int64
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
	c.Dashboard.Rendered = &Rendered{}
	r.l1.Store(c.Dashboard.UserID, l1Entry{c: c, exp: time.Now().Add(l1TTL)})
}

// gen resolves the live generation once per request, so one answer never
// mixes tables of two generations across a blue/green switch.
func (r *Reader) gen(ctx context.Context, name string) (int, error) {
	return r.Versions.Live(ctx, name)
}

func tbl(base string, gen int) string { return fmt.Sprintf("%s_g%d", base, gen) }

func (r *Reader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func unavailable(err error) error { return ClassifyPG(err) }

// ClassifyPG wraps PostgreSQL errors that mean "the database cannot be
// reached right now" (connection failures, SQLSTATE classes 08, 53, 57)
// as domain.ErrUnavailable (503, retry). Any other server error (a data
// exception, a bug in SQL) stays a plain error (500), so a client is not
// told to retry something that will never work.
func ClassifyPG(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, domain.ErrUnavailable) {
		return err
	}
	if transient(err) {
		return fmt.Errorf("%w: postgres: %v", domain.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// transient reports errors that mean the database could not be reached or
// asked us to come back: connection failures, SQLSTATE classes 08
// (connection), 40 (serialization), 53 (resources), 57 (shutdown).
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "40", "53", "57":
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.Is(err, domain.ErrUnavailable) || errors.As(err, &connErr) || errors.As(err, &netErr) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed)
}

// Me returns the profile of a user.
func (r *Reader) Me(ctx context.Context, userID uuid.UUID) (UserView, error) {
	u := UserView{ID: userID}
	gen, err := r.gen(ctx, NameUsers)
	if err != nil {
		return u, err
	}
	err = r.Pool.QueryRow(ctx, `SELECT email, timezone, created_at, email_verified_at FROM `+tbl("users", gen)+` WHERE user_id = $1`, userID).
		Scan(&u.Email, &u.Timezone, &u.CreatedAt, &u.EmailVerifiedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, domain.ErrNotFound
	}
	return u, unavailable(err)
}

// WaitFor blocks until every projector behind readModels has applied every
// position in token (bounded by ctx; domain.ErrTimeout when it runs out).
func (r *Reader) WaitFor(ctx context.Context, token eventstore.Token, readModels ...string) error {
	if len(token) == 0 {
		return nil
	}
	delay := 5 * time.Millisecond
	for {
		var woken <-chan struct{}
		wait := delay
		if r.Progress != nil {
			var live bool
			if woken, live = r.Progress.Changed(); live {
				// Announcements end the wait; the timer only guards
				// against a feed that died without an error.
				wait = r.LiveRecheck
				if wait <= 0 {
					wait = 250 * time.Millisecond
				}
			}
		}
		ok, err := r.reached(ctx, token, readModels)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for consistency token: %w", domain.ErrTimeout)
		case <-woken:
		case <-time.After(wait):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

func (r *Reader) reached(ctx context.Context, token eventstore.Token, readModels []string) (bool, error) {
	parts := make([]int32, len(token))
	for i, p := range token {
		parts[i] = p.Partition
	}
	for _, name := range readModels {
		gen, err := r.gen(ctx, name)
		if err != nil {
			return false, err
		}
		rows, err := r.Pool.Query(ctx, `SELECT partition, next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2 AND partition = ANY($3)`, name, gen, parts)
		if err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("waiting for consistency token: %w", domain.ErrTimeout)
			}
			return false, unavailable(err)
		}
		next := map[int32]int64{}
		for rows.Next() {
			var p int32
			var o int64
			if err := rows.Scan(&p, &o); err != nil {
				rows.Close()
				return false, err
			}
			next[p] = o
		}
		rows.Close()
		for _, pos := range token {
			if next[pos.Partition] <= pos.Offset {
				return false, nil
			}
		}
	}
	return true, nil
}

// Metrics reads one metric series.
func (r *Reader) Metrics(ctx context.Context, q MetricQuery) (MetricSeries, error) {
	def, ok := metric.Lookup(q.Type)
	if !ok {
		return MetricSeries{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/type", Detail: fmt.Sprintf("unknown metric type %q", q.Type)}}}
	}
	out := MetricSeries{Type: q.Type, Unit: def.Unit, Bucket: q.Bucket, Points: []MetricPoint{}}
	gen, err := r.gen(ctx, NameMetrics)
	if err != nil {
		return out, err
	}
	var rows pgx.Rows
	samples, rollups := tbl("samples", gen), tbl("daily_rollups", gen)
	switch q.Bucket {
	case BucketRaw:
		rows, err = r.Pool.Query(ctx, `SELECT start_at, end_at, utc_offset, value, value, value, 1, source FROM `+samples+`
			WHERE user_id = $1 AND type = $2 AND start_at >= $3 AND start_at < $4 ORDER BY start_at, source LIMIT 50000`,
			q.UserID, string(q.Type), q.From, q.To)
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

// SleepSessions lists sessions that ended in [from, to).
func (r *Reader) SleepSessions(ctx context.Context, userID uuid.UUID, from, to time.Time) ([]SleepSession, error) {
	gen, err := r.gen(ctx, NameMetrics)
	if err != nil {
		return nil, err
	}
	rows, err := r.Pool.Query(ctx, `SELECT start_at, end_at, wake_date::text, source, utc_offset, awake_minutes, light_minutes, deep_minutes, rem_minutes, algorithm_version
		FROM `+tbl("sleep_sessions", gen)+` WHERE user_id = $1 AND end_at >= $2 AND end_at < $3 ORDER BY end_at LIMIT 5000`, userID, from, to)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := []SleepSession{}
	for rows.Next() {
		var s SleepSession
		var off int32
		var v int16
		if err := rows.Scan(&s.Start, &s.End, &s.Date, &s.Source, &off, &s.AwakeMinutes, &s.LightMinutes, &s.DeepMinutes, &s.REMMinutes, &v); err != nil {
			return nil, err
		}
		zone := time.FixedZone("", int(off))
		s.Start, s.End = s.Start.In(zone), s.End.In(zone)
		s.AlgorithmVersion = int(v)
		s.AsleepMinutes = s.LightMinutes + s.DeepMinutes + s.REMMinutes
		s.InBedMinutes = s.End.Sub(s.Start).Minutes()
		out = append(out, s)
	}
	return out, unavailable(rows.Err())
}

// PartitionOf returns the partition holding a user's events: sarama's
// default hash partitioner (FNV-1a 32 of the key, the user id string).
func PartitionOf(userID uuid.UUID, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(userID.String()))
	p := int32(h.Sum32()) % partitions
	if p < 0 {
		p = -p
	}
	return p
}

type cachedDashboard struct {
	Generation int       `json:"g"` // the metrics generation it was computed from
	Partition  int32     `json:"p"`
	Next       int64     `json:"next"` // the metrics checkpoint the summary reflects
	Dashboard  Dashboard `json:"d"`
}

func dashboardKey(userID uuid.UUID) string { return "biosync:dashboard:v1:" + userID.String() }

// Dashboard returns the summary, from the cache when the cached entry
// reflects at least the positions in token (and is for today), otherwise
// computed from PostgreSQL and cached.
func (r *Reader) Dashboard(ctx context.Context, userID uuid.UUID, token eventstore.Token) (Dashboard, error) {
	p := PartitionOf(userID, r.Partitions)
	need := int64(-1)
	for _, pos := range token {
		if pos.Partition == p && pos.Offset > need {
			need = pos.Offset
		}
	}
	gen, err := r.gen(ctx, NameMetrics)
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
			var c cachedDashboard
			if json.Unmarshal(raw, &c) == nil && c.Generation == gen && c.Partition == p && c.Next > need && c.Dashboard.Date == r.today(c.Dashboard.Timezone) {
				c.Dashboard.UserID = userID
				r.l1Put(c)
				return c.Dashboard, nil
			}
		}
	}
	var next int64
	err = r.Pool.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2 AND partition = $3`, NameMetrics, gen, p).Scan(&next)
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
	raw, err := json.Marshal(c)
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

// DashboardCache refreshes cached dashboards after the metrics projector
// commits (see Metrics.AfterCommit). Refreshing is off the projector's hot
// path: at most two refreshes run in the background; when both are busy (or
// the projector is catching up) the entries are only deleted, in one call,
// and the next read recomputes them.
type DashboardCache struct {
	Reader *Reader

	once     sync.Once
	sem      chan struct{}
	mu       sync.Mutex
	last     map[uuid.UUID]time.Time // last recompute per user
	newest   map[refreshKey]int64    // newest committed position seen per user
	trailing map[uuid.UUID]bool      // a trailing recompute is scheduled
}

type refreshKey struct {
	user      uuid.UUID
	gen       int
	partition int32
}

// Refresh recomputes and stores the dashboards of users from generation gen,
// reflecting at least checkpoint next of partition (they are computed after
// the commit, so they may reflect more).
func (c *DashboardCache) Refresh(ctx context.Context, users []uuid.UUID, gen int, partition int32, next int64, catchingUp bool) {
	if c == nil || c.Reader == nil || c.Reader.Cache == nil || len(users) == 0 {
		return
	}
	c.once.Do(func() { c.sem = make(chan struct{}, 2) })
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = dashboardKey(u)
	}
	for _, u := range users {
		c.Reader.l1.Delete(u)
	}
	mark := CacheVersion{Generation: gen, Next: next}
	if catchingUp {
		_ = c.Reader.Cache.Invalidate(ctx, mark, c.Reader.cacheTTL(), keys...)
		return
	}
	select {
	case c.sem <- struct{}{}:
	default:
		_ = c.Reader.Cache.Invalidate(ctx, mark, c.Reader.cacheTTL(), keys...)
		return
	}
	// Recompute a user at most once per second; within that window the
	// entry is only invalidated and the next read recomputes it. A busy
	// user would otherwise cost a summary query set per batch.
	now := time.Now()
	var due []uuid.UUID
	var stale []string
	c.mu.Lock()
	if c.last == nil || len(c.last) > 100_000 {
		c.last, c.newest, c.trailing = map[uuid.UUID]time.Time{}, map[refreshKey]int64{}, map[uuid.UUID]bool{}
	}
	for _, u := range users {
		if k := (refreshKey{u, gen, partition}); next > c.newest[k] {
			c.newest[k] = next
		}
		if now.Sub(c.last[u]) >= time.Second {
			c.last[u] = now
			due = append(due, u)
			continue
		}
		stale = append(stale, dashboardKey(u))
		if !c.trailing[u] { // recompute once more when the window ends
			c.trailing[u] = true
			u := u
			time.AfterFunc(time.Second, func() {
				c.mu.Lock()
				delete(c.trailing, u)
				n := c.newest[refreshKey{u, gen, partition}]
				c.mu.Unlock()
				c.Refresh(context.WithoutCancel(ctx), []uuid.UUID{u}, gen, partition, n, false)
			})
		}
	}
	c.mu.Unlock()
	if len(stale) > 0 {
		_ = c.Reader.Cache.Invalidate(ctx, mark, c.Reader.cacheTTL(), stale...)
	}
	if len(due) == 0 {
		<-c.sem
		return
	}
	users = due
	go func() {
		defer func() { <-c.sem }()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, u := range users {
			d, err := c.Reader.computeDashboard(rctx, u, gen)
			if err != nil {
				_ = c.Reader.Cache.Invalidate(rctx, mark, c.Reader.cacheTTL(), dashboardKey(u))
				continue
			}
			c.mu.Lock()
			newer := c.newest[refreshKey{u, gen, partition}] > next
			c.mu.Unlock()
			if newer { // a later commit happened meanwhile: its refresh will store
				continue
			}
			c.Reader.store(rctx, cachedDashboard{Generation: gen, Partition: partition, Next: next, Dashboard: d})
		}
	}()
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
