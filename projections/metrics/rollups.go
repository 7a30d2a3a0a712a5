package metrics

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain/metric"
)

// Daily rollups are derived in two steps, both idempotent by natural key:
//
//  1. daily_source_rollups holds, per (user, type, local day, source), the
//     exact sum of the samples' values (integers of 1e-9 units), their
//     count, min, max and the day columns. A batch changes these rows by
//     the difference it makes against the stored samples: a new sample is
//     added, a replaced one is subtracted and its successor added, one that
//     moved to another local day is subtracted from the old day. Integer
//     sums do not depend on the order of additions and subtractions, so
//     the rows never depend on batch boundaries or redeliveries. A min or
//     max (or a day column) that a departing sample held is recomputed
//     from that source's samples of that day, the only case that reads a
//     whole day.
//  2. daily_rollups of every changed day is recomputed from its few
//     source rows: cumulative types take the source with the largest
//     total, level types average over all sources.
//
// A deletion (samples.deleted) recomputes the partial aggregates of the
// days it removed samples from with the same SQL as step 1's recompute,
// then re-derives those days as in step 2: the result is what a clean
// build without those samples gives (a day deleted whole loses its rows).
//
// The SQL expression that turns a value into 1e-9 units must stay exactly
// the one in migration 00006, which filled the table for existing data.
const nanoSQL = `round(%s * 1e9::float8)::bigint`

// nanoUnits is the value in 1e-9 units as PostgreSQL's nanoSQL computes it
// (float8 product, round half to even); ok is false outside int64.
func nanoUnits(v float64) (int64, bool) {
	x := math.RoundToEven(v * 1e9)
	if !(x >= -(1<<63) && x < 1<<63) {
		return 0, false
	}
	return int64(x), true
}

// srcKey identifies one partial aggregate.
type srcKey struct {
	user   uuid.UUID
	typ    metric.Type
	date   string
	source string
}

// contrib is what one stored sample contributes to its partial aggregate.
type contrib struct {
	value            float64
	dayStart, dayEnd time.Time
	dayOffset        int32
	unit             string
}

func (c contrib) same(o contrib) bool {
	return c.value == o.value && c.dayStart.Equal(o.dayStart) && c.dayEnd.Equal(o.dayEnd) && c.dayOffset == o.dayOffset && c.unit == o.unit
}

// srcChange is what one batch adds to and removes from one partial.
type srcChange struct {
	added, removed []contrib
}

// partial is the stored state of a partial aggregate except its total.
type partial struct {
	count            int
	min, max         float64
	dayStart, dayEnd time.Time
	dayOffset        int32
	unit             string
}

// rollupChange is the difference a batch's samples make to the partial
// aggregates, gathered before the samples are written.
type rollupChange map[srcKey]*srcChange

func (rc rollupChange) at(k srcKey) *srcChange {
	c := rc[k]
	if c == nil {
		c = &srcChange{}
		rc[k] = c
	}
	return c
}

// upsertSamples writes samples (the later log position wins) and returns
// the difference they make to the partial aggregates: for each sample that
// wins, its stored predecessor (if any) leaves its day's aggregate and the
// new one joins its own.
func (m *Projector) upsertSamples(ctx context.Context, tx pgx.Tx, samples map[sampleKey]sampleRow) (rollupChange, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	n := len(samples)
	rows := make([]sampleRow, 0, n)
	users := make([][16]byte, 0, n)
	types, sources := make([]string, 0, n), make([]string, 0, n)
	starts, ends := make([]time.Time, 0, n), make([]time.Time, 0, n)
	for _, s := range samples {
		rows = append(rows, s)
		users = append(users, s.key.user)
		types = append(types, string(s.key.typ))
		starts = append(starts, s.key.start)
		ends = append(ends, s.key.end)
		sources = append(sources, s.key.source)
	}
	t := m.table("samples")
	// The stored versions of the batch's samples (primary key lookups).
	type stored struct {
		c         contrib
		date      string
		logOffset int64
	}
	old := make([]*stored, n)
	// One primary key probe per sample, whatever the planner believes
	// about the table: LIMIT keeps the LATERAL subquery from being
	// flattened into a join, which a large batch would turn into a hash
	// join over a sequential scan of every sample ever stored.
	q, err := tx.Query(ctx, `SELECT x.i, s.value, s.local_date::text, s.log_offset, s.day_start, s.day_end, s.day_offset, s.unit
		FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[]) WITH ORDINALITY AS x(u, ty, st, en, so, i)
		CROSS JOIN LATERAL (SELECT * FROM `+t+` s WHERE s.user_id = x.u AND s.type = x.ty AND s.start_at = x.st AND s.end_at = x.en AND s.source = x.so LIMIT 1) s`,
		users, types, starts, ends, sources)
	if err != nil {
		return nil, fmt.Errorf("read stored samples: %w", err)
	}
	for q.Next() {
		var i int64
		o := &stored{}
		if err := q.Scan(&i, &o.c.value, &o.date, &o.logOffset, &o.c.dayStart, &o.c.dayEnd, &o.c.dayOffset, &o.c.unit); err != nil {
			q.Close()
			return nil, err
		}
		old[i-1] = o
	}
	q.Close()
	if err := q.Err(); err != nil {
		return nil, err
	}
	change := rollupChange{}
	// The later log position always wins (also for an identical resend),
	// so the final rows depend only on the log, never on where batch
	// boundaries fell: a clean rebuild is byte-identical. New samples and
	// replaced ones are written separately: see writeSamples.
	fresh, replaced := make([]sampleRow, 0, n), make([]sampleRow, 0, n)
	for i, s := range rows {
		c := contrib{value: s.value, dayStart: s.day.Start, dayEnd: s.day.End, dayOffset: int32(s.day.Offset), unit: s.unit}
		k := srcKey{s.key.user, s.key.typ, s.day.Date, s.key.source}
		o := old[i]
		if o == nil {
			fresh = append(fresh, s)
			change.at(k).added = append(change.at(k).added, c)
			continue
		}
		if o.logOffset > s.logOffset {
			continue // the stored sample is later in the log and stays
		}
		replaced = append(replaced, s)
		if o.date == s.day.Date && o.c.same(c) {
			continue // same contribution (a redelivery or a replay)
		}
		ok := k
		ok.date = o.date
		change.at(ok).removed = append(change.at(ok).removed, o.c)
		change.at(k).added = append(change.at(k).added, c)
	}
	if err := m.writeSamples(ctx, tx, fresh, replaced); err != nil {
		return nil, err
	}
	return change, nil
}

// copyFrom is the number of new samples from which a batch writes them with
// COPY. COPY is what a rebuild is measured against (make bench): a
// speculative INSERT ... ON CONFLICT costs about twice as much per row in
// PostgreSQL. Below it, COPY's extra round trip (pgx first asks for the
// column types) costs more than it saves, so small live batches use one
// INSERT for everything.
const copyFrom = 64

// writeSamples stores a batch's samples: fresh ones (no stored version,
// found by the probe in the same transaction) and replaced ones (a stored
// version at an earlier log position). Only this partition's worker writes
// these users' samples, and the checkpoint row it locked first fences off
// any other instance, so a fresh sample cannot appear between the probe and
// the COPY. Were it to happen anyway, COPY fails on the primary key (a
// permanent error): the batch is applied again user by user and the user
// whose sample collided is parked with the error in `biosync deadletters
// list`; nothing is half-written or silently lost.
func (m *Projector) writeSamples(ctx context.Context, tx pgx.Tx, fresh, replaced []sampleRow) error {
	t := m.table("samples")
	version := m.derivation().Version
	upsert := replaced
	if len(fresh) >= copyFrom {
		dates := map[string]time.Time{} // a batch spans few days
		_, err := tx.CopyFrom(ctx, pgx.Identifier{t}, sampleColumns, pgx.CopyFromSlice(len(fresh), func(i int) ([]any, error) {
			s := fresh[i]
			date, ok := dates[s.day.Date]
			if !ok {
				var err error
				if date, err = time.Parse(time.DateOnly, s.day.Date); err != nil {
					return nil, fmt.Errorf("local date %q: %w", s.day.Date, err)
				}
				dates[s.day.Date] = date
			}
			// [16]byte, not uuid.UUID: pgx encodes those directly, while a
			// uuid.UUID goes through its driver.Valuer (a string, parsed
			// again), which was a third of the projector's CPU.
			return []any{[16]byte(s.key.user), string(s.key.typ), s.key.start, s.key.end, s.key.source, s.value, s.unit, int32(s.offset),
				date, s.day.Start, s.day.End, int32(s.day.Offset), s.partition, s.logOffset, [16]byte(s.eventID), int16(version)}, nil
		}))
		if err != nil {
			return fmt.Errorf("copy new samples: %w", err)
		}
	} else {
		upsert = append(upsert, fresh...)
	}
	if len(upsert) == 0 {
		return nil
	}
	n := len(upsert)
	users, eventIDs := make([][16]byte, 0, n), make([][16]byte, 0, n)
	types, sources, units := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	starts, ends, dayStarts, dayEnds, dates := make([]time.Time, 0, n), make([]time.Time, 0, n), make([]time.Time, 0, n), make([]time.Time, 0, n), make([]string, 0, n)
	values := make([]float64, 0, n)
	offsets, dayOffsets, parts := make([]int32, 0, n), make([]int32, 0, n), make([]int32, 0, n)
	logOffsets := make([]int64, 0, n)
	for _, s := range upsert {
		users = append(users, s.key.user)
		types = append(types, string(s.key.typ))
		starts = append(starts, s.key.start)
		ends = append(ends, s.key.end)
		sources = append(sources, s.key.source)
		values = append(values, s.value)
		units = append(units, s.unit)
		offsets = append(offsets, int32(s.offset))
		dates = append(dates, s.day.Date)
		dayStarts = append(dayStarts, s.day.Start)
		dayEnds = append(dayEnds, s.day.End)
		dayOffsets = append(dayOffsets, int32(s.day.Offset))
		parts = append(parts, s.partition)
		logOffsets = append(logOffsets, s.logOffset)
		eventIDs = append(eventIDs, s.eventID)
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, type, start_at, end_at, source, value, unit, utc_offset, local_date, day_start, day_end, day_offset, log_partition, log_offset, event_id, norm_version)
		SELECT u, ty, st, en, so, va, un, uo, ld::date, ds, de, dof, lp, lo, ev, $16::smallint
		FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::float8[], $7::text[], $8::int[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::int[], $13::int[], $14::bigint[], $15::uuid[])
			AS x(u, ty, st, en, so, va, un, uo, ld, ds, de, dof, lp, lo, ev)
		ON CONFLICT (user_id, type, start_at, end_at, source) DO UPDATE SET
			value = EXCLUDED.value, unit = EXCLUDED.unit, utc_offset = EXCLUDED.utc_offset, local_date = EXCLUDED.local_date,
			day_start = EXCLUDED.day_start, day_end = EXCLUDED.day_end, day_offset = EXCLUDED.day_offset, log_partition = EXCLUDED.log_partition,
			log_offset = EXCLUDED.log_offset, event_id = EXCLUDED.event_id, norm_version = EXCLUDED.norm_version
		WHERE `+t+`.log_offset <= EXCLUDED.log_offset`,
		users, types, starts, ends, sources, values, units, offsets, dates, dayStarts, dayEnds, dayOffsets, parts, logOffsets, eventIDs, version)
	if err != nil {
		return fmt.Errorf("upsert samples: %w", err)
	}
	return nil
}

// sampleColumns are the samples table's columns in writeSamples' order.
var sampleColumns = []string{"user_id", "type", "start_at", "end_at", "source", "value", "unit", "utc_offset",
	"local_date", "day_start", "day_end", "day_offset", "log_partition", "log_offset", "event_id", "norm_version"}

// keyArrays is a set of partial keys as query parameters.
type keyArrays struct {
	users        [][16]byte
	types, dates []string
	sources      []string
}

func (a *keyArrays) add(k srcKey) {
	a.users, a.types, a.dates, a.sources = append(a.users, k.user), append(a.types, string(k.typ)), append(a.dates, k.date), append(a.sources, k.source)
}

// updateRollups applies change to the partial aggregates (after the samples
// were written), then recomputes the daily rollups of the days it touched
// from their partial aggregates.
func (m *Projector) updateRollups(ctx context.Context, tx pgx.Tx, change rollupChange) error {
	if len(change) == 0 {
		return nil
	}
	p := m.table("daily_source_rollups")
	var keys keyArrays
	for k := range change {
		keys.add(k)
	}
	have := make(map[srcKey]partial, len(change))
	q, err := tx.Query(ctx, `SELECT p.user_id, p.type, p.local_date::text, p.source, p.count, p.min, p.max, p.day_start, p.day_end, p.day_offset, p.unit
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS x(u, ty, ld, so)
		CROSS JOIN LATERAL (SELECT * FROM `+p+` p WHERE p.user_id = x.u AND p.type = x.ty AND p.local_date = x.ld::date AND p.source = x.so LIMIT 1) p`,
		keys.users, keys.types, keys.dates, keys.sources)
	if err != nil {
		return fmt.Errorf("read source rollups: %w", err)
	}
	for q.Next() {
		var k srcKey
		var typ string
		var s partial
		if err := q.Scan(&k.user, &typ, &k.date, &k.source, &s.count, &s.min, &s.max, &s.dayStart, &s.dayEnd, &s.dayOffset, &s.unit); err != nil {
			q.Close()
			return err
		}
		k.typ = metric.Type(typ)
		have[k] = s
	}
	q.Close()
	if err := q.Err(); err != nil {
		return err
	}

	var (
		upsert, gone, redo keyArrays
		deltas             []int64
		counts, dayOffs    []int32
		mins, maxs         []float64
		dayStarts, dayEnds []time.Time
		units              []string
		days               = map[dayKey]bool{}
	)
	for k, c := range change {
		days[dayKey{k.user, k.typ, k.date}] = true
		s, exists := have[k]
		next, delta, ok := fold(s, exists, c)
		switch {
		case !ok:
			redo.add(k)
		case next.count == 0:
			gone.add(k)
		default:
			upsert.add(k)
			deltas, counts = append(deltas, delta), append(counts, int32(next.count))
			mins, maxs = append(mins, plusZero(next.min)), append(maxs, plusZero(next.max))
			dayStarts, dayEnds, dayOffs, units = append(dayStarts, next.dayStart), append(dayEnds, next.dayEnd), append(dayOffs, next.dayOffset), append(units, next.unit)
		}
	}
	b := &pgx.Batch{}
	if len(upsert.users) > 0 {
		b.Queue(`INSERT INTO `+p+` AS p (user_id, type, local_date, source, total_nano, count, min, max, day_start, day_end, day_offset, unit)
			SELECT u, ty, ld::date, so, dt, n, mn, mx, ds, de, dof, un
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[], $7::float8[], $8::float8[], $9::timestamptz[], $10::timestamptz[], $11::int[], $12::text[])
				AS x(u, ty, ld, so, dt, n, mn, mx, ds, de, dof, un)
			ON CONFLICT (user_id, type, local_date, source) DO UPDATE SET
				total_nano = p.total_nano + EXCLUDED.total_nano, count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max,
				day_start = EXCLUDED.day_start, day_end = EXCLUDED.day_end, day_offset = EXCLUDED.day_offset, unit = EXCLUDED.unit`,
			upsert.users, upsert.types, upsert.dates, upsert.sources, deltas, counts, mins, maxs, dayStarts, dayEnds, dayOffs, units)
	}
	if len(gone.users) > 0 {
		b.Queue(`DELETE FROM `+p+` p USING unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS x(u, ty, ld, so)
			WHERE p.user_id = x.u AND p.type = x.ty AND p.local_date = x.ld::date AND p.source = x.so`,
			gone.users, gone.types, gone.dates, gone.sources)
	}
	if len(redo.users) > 0 {
		// A departing sample held an extreme (or the stored state did not
		// account for it): recompute these sources' days from the samples.
		m.queueRecompute(b, redo)
	}
	m.queueDays(b, days)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("update rollups: %w", err)
	}
	return nil
}

// queueRecompute queues the recomputation of the partial aggregates keys
// from the stored samples of their days (a partial left without samples is
// deleted): the expressions a clean build's sums, counts and extremes
// agree with.
func (m *Projector) queueRecompute(b *pgx.Batch, keys keyArrays) {
	p, s := m.table("daily_source_rollups"), m.table("samples")
	b.Queue(`WITH g AS (
			SELECT u, ty, ld::date AS ld, so FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS x(u, ty, ld, so)
		), agg AS (
			SELECT s.user_id, s.type, s.local_date, s.source, sum(`+fmt.Sprintf(nanoSQL, "s.value")+`) AS total_nano, count(*) AS n,
				min(s.value) + 0::float8 AS mn, max(s.value) + 0::float8 AS mx, min(s.day_start) AS ds, min(s.day_end) AS de, min(s.day_offset) AS dof, min(s.unit) AS un
			FROM g JOIN `+s+` s ON s.user_id = g.u AND s.type = g.ty AND s.local_date = g.ld AND s.source = g.so
			GROUP BY 1, 2, 3, 4
		), emptied AS (
			DELETE FROM `+p+` p USING g WHERE p.user_id = g.u AND p.type = g.ty AND p.local_date = g.ld AND p.source = g.so
				AND NOT EXISTS (SELECT 1 FROM agg WHERE agg.user_id = g.u AND agg.type = g.ty AND agg.local_date = g.ld AND agg.source = g.so)
		)
		INSERT INTO `+p+` AS p (user_id, type, local_date, source, total_nano, count, min, max, day_start, day_end, day_offset, unit)
		SELECT * FROM agg
		ON CONFLICT (user_id, type, local_date, source) DO UPDATE SET
			total_nano = EXCLUDED.total_nano, count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max,
			day_start = EXCLUDED.day_start, day_end = EXCLUDED.day_end, day_offset = EXCLUDED.day_offset, unit = EXCLUDED.unit`,
		keys.users, keys.types, keys.dates, keys.sources)
}

// queueDays queues the derivation of the daily rollups of days from their
// partial aggregates.
func (m *Projector) queueDays(b *pgx.Batch, days map[dayKey]bool) {
	p := m.table("daily_source_rollups")
	var du [][16]byte
	var dt, dd []string
	for k := range days {
		du, dt, dd = append(du, k.user), append(dt, string(k.typ)), append(dd, k.date)
	}
	// Days left without any source (their samples moved to another day
	// or were deleted) lose their rollup; the others are derived from
	// their source rows.
	b.Queue(`DELETE FROM `+m.table("daily_rollups")+` r USING unnest($1::uuid[], $2::text[], $3::text[]) AS x(u, ty, ld)
		WHERE r.user_id = x.u AND r.type = x.ty AND r.local_date = x.ld::date
			AND NOT EXISTS (SELECT 1 FROM `+p+` p WHERE p.user_id = x.u AND p.type = x.ty AND p.local_date = x.ld::date)`, du, dt, dd)
	b.Queue(`WITH touched AS (
			SELECT u AS user_id, ty AS type, ld::date AS local_date FROM unnest($1::uuid[], $2::text[], $3::text[]) AS x(u, ty, ld)
		), per_source AS (
			SELECT p.* FROM `+p+` p JOIN touched t ON p.user_id = t.user_id AND p.type = t.type AND p.local_date = t.local_date
		), cumulative AS (
			SELECT DISTINCT ON (user_id, type, local_date) user_id, type, local_date, day_start, day_end, day_offset,
				(total_nano * 0.000000001)::float8 AS value, min AS mn, max AS mx, count AS n, source, unit
			FROM per_source WHERE type = ANY($4::text[])
			ORDER BY user_id, type, local_date, total_nano DESC, source
		), level AS (
			SELECT user_id, type, local_date, min(day_start) AS day_start, min(day_end) AS day_end, min(day_offset) AS day_offset,
				(sum(total_nano) * 0.000000001 / sum(count))::float8 AS value, min(min) AS mn, max(max) AS mx, sum(count) AS n,
				(array_agg(source ORDER BY count DESC, source))[1] AS source, min(unit) AS unit
			FROM per_source WHERE NOT (type = ANY($4::text[]))
			GROUP BY 1, 2, 3
		)
		INSERT INTO `+m.table("daily_rollups")+` (user_id, type, local_date, day_start, day_end, day_offset, value, min, max, count, source, unit, algorithm_version)
		SELECT user_id, type, local_date, day_start, day_end, day_offset, value, mn, mx, n, source, unit, $5::smallint FROM cumulative
		UNION ALL
		SELECT user_id, type, local_date, day_start, day_end, day_offset, value, mn, mx, n, source, unit, $5::smallint FROM level
		ON CONFLICT (user_id, type, local_date) DO UPDATE SET
			day_start = EXCLUDED.day_start, day_end = EXCLUDED.day_end, day_offset = EXCLUDED.day_offset, value = EXCLUDED.value, min = EXCLUDED.min,
			max = EXCLUDED.max, count = EXCLUDED.count, source = EXCLUDED.source, unit = EXCLUDED.unit,
			algorithm_version = EXCLUDED.algorithm_version`,
		du, dt, dd, cumulativeTypes(), RollupVersion)
}

// fold applies one batch's change to a stored partial. It returns the new
// state and the change of the total in 1e-9 units, or ok false when the
// partial must be recomputed from the samples: a departing sample held an
// extreme that no arriving sample holds, the stored state cannot account
// for a departure, or the arithmetic leaves int64.
func fold(s partial, exists bool, c *srcChange) (next partial, delta int64, ok bool) {
	if len(c.removed) > 0 {
		if !exists || s.count < len(c.removed) {
			return s, 0, false
		}
		// An extreme survives when at least as many arriving samples hold
		// it as departing ones do.
		held := func(f func(contrib) bool) bool {
			n := 0
			for _, r := range c.removed {
				if f(r) {
					n++
				}
			}
			for _, a := range c.added {
				if f(a) {
					n--
				}
			}
			return n > 0
		}
		if held(func(x contrib) bool { return x.value == s.min }) || held(func(x contrib) bool { return x.value == s.max }) ||
			held(func(x contrib) bool { return x.dayStart.Equal(s.dayStart) }) || held(func(x contrib) bool { return x.dayEnd.Equal(s.dayEnd) }) ||
			held(func(x contrib) bool { return x.dayOffset == s.dayOffset }) || held(func(x contrib) bool { return x.unit == s.unit }) {
			return s, 0, false
		}
	}
	next = s
	if !exists {
		next = partial{}
	}
	for _, r := range c.removed {
		v, in := nanoUnits(r.value)
		if !in || (v > 0 && delta < math.MinInt64+v) || (v < 0 && delta > math.MaxInt64+v) {
			return s, 0, false
		}
		delta -= v
		next.count--
	}
	for i, a := range c.added {
		v, in := nanoUnits(a.value)
		if !in || (v > 0 && delta > math.MaxInt64-v) || (v < 0 && delta < math.MinInt64-v) {
			return s, 0, false
		}
		delta += v
		if i == 0 && next.count == 0 {
			next = partial{min: a.value, max: a.value, dayStart: a.dayStart, dayEnd: a.dayEnd, dayOffset: a.dayOffset, unit: a.unit}
		}
		next.count++
		next.min, next.max = min(next.min, a.value), max(next.max, a.value)
		if a.dayStart.Before(next.dayStart) {
			next.dayStart = a.dayStart
		}
		if a.dayEnd.Before(next.dayEnd) {
			next.dayEnd = a.dayEnd
		}
		next.dayOffset = min(next.dayOffset, a.dayOffset)
		next.unit = min(next.unit, a.unit)
	}
	return next, delta, true
}

// plusZero turns -0 into 0: SQL's min and max do not tell them apart, so
// which one they return would depend on the order rows were read in.
func plusZero(v float64) float64 {
	if v == 0 {
		return 0
	}
	return v
}

// cumulativeTypes lists the types whose day value is a sum. A day total
// takes ONE source per (user, type, day), the one with the largest total,
// rather than adding phone and watch (source priority comes later).
func cumulativeTypes() []string {
	var out []string
	for _, t := range metric.Types() {
		if d, _ := metric.Lookup(t); d.Cumulative() {
			out = append(out, string(t))
		}
	}
	return out
}
