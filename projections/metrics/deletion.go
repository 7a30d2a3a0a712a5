package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
)

// A deletion (samples.deleted) removes the user's samples and sleep
// sessions it selects (start in [from, to), the provider's sources, the
// type) that lie earlier in the log than the deletion itself. Everything a
// batch gathered before the deletion is written first (see apply), so in
// log order the rows it meets are exactly the ones pushed before it; the
// log position condition keeps rows written by later events during a
// replay (a rewind applies the deletion again after later pushes were
// stored), so replays change nothing.
//
// Later log position wins, as for every natural key: a push after the
// deletion stores what it carries, even inside the deleted range. A
// record of an older delivery that lands after the deletion (a copy of an
// event applied before it) is skipped by admit (pushes.go), so the
// deletion holds, live and in a rebuild alike.
//
// What the deletion corrects besides the rows:
//   - daily_source_rollups of every (type, local day, source) it removed
//     samples from are recomputed from the samples that remain, with the
//     recompute of rollups.go, and those days' daily_rollups re-derived:
//     a clean build without the deleted samples gives the same rows;
//   - source_freshness.last_sample_at of a source that lost its newest
//     sample is set to the newest end among the source's remaining
//     samples and sleep sessions, or the zero instant (0001-01-01, what a
//     push without any usable item stores) when none remain; the row and
//     last_received_at stay (the source did deliver then), which keeps
//     rewinds byte-identical;
//   - the nights around the range are derived again (nights.go);
//   - the dashboard cache is refreshed after the commit like after a push
//     (AfterCommit covers every user of the batch).

// deleteRows applies one samples.deleted event.
func (m *Projector) deleteRows(ctx context.Context, tx pgx.Tx, e eventstore.Stored, d ingest.Deletion) error {
	user := [16]byte(e.UserID)
	touched, err := m.nightsAround(ctx, tx, e.UserID, d.From, d.To)
	if err != nil {
		return err
	}
	// The provider's sources as the rows name them ("provider" or
	// "provider/device"), from the freshness rows every push writes, so a
	// provider whose name continues another's ("oura/x") is not taken
	// for one of its devices.
	sourceFilter := ""
	args := []any{user, d.From, d.To, e.Offset}
	if d.Provider != "" {
		args = append(args, d.Provider)
		sourceFilter = ` AND x.source IN (SELECT ` + freshnessSource("f") + ` FROM ` + m.table("source_freshness") + ` f WHERE f.user_id = $1 AND f.provider = $5)`
	}
	gone := map[string]time.Time{} // source -> the latest end among its deleted rows
	keep := func(source string, end time.Time) {
		if end.After(gone[source]) {
			gone[source] = end
		}
	}

	if types := d.SampleTypes(); len(types) > 0 {
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = string(t)
		}
		// type = ANY(...) even for every type: the primary key starts with
		// (user_id, type, start_at), so each type's range is one index
		// range instead of a scan of all the user's samples.
		rows, err := tx.Query(ctx, `WITH gone AS (
				DELETE FROM `+m.table("samples")+` x
				WHERE x.user_id = $1 AND x.type = ANY($`+fmt.Sprint(len(args)+1)+`::text[]) AND x.start_at >= $2 AND x.start_at < $3 AND x.log_offset < $4`+sourceFilter+`
				RETURNING x.type, x.local_date, x.source, x.end_at)
			SELECT type, local_date::text, source, max(end_at) FROM gone GROUP BY 1, 2, 3`, append(args, names)...)
		if err != nil {
			return fmt.Errorf("delete samples: %w", err)
		}
		var keys keyArrays
		days := map[dayKey]bool{}
		for rows.Next() {
			var k srcKey
			var typ string
			var end time.Time
			if err := rows.Scan(&typ, &k.date, &k.source, &end); err != nil {
				rows.Close()
				return err
			}
			k.user, k.typ = e.UserID, metric.Type(typ)
			keys.add(k)
			days[dayKey{k.user, k.typ, k.date}] = true
			keep(k.source, end)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("delete samples: %w", err)
		}
		if len(days) > 0 {
			b := &pgx.Batch{}
			m.queueRecompute(b, keys)
			m.queueDays(b, days)
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("recompute rollups after a deletion: %w", err)
			}
		}
	}

	if d.Sleep() {
		rows, err := tx.Query(ctx, `WITH gone AS (
				DELETE FROM `+m.table("sleep_sessions")+` x
				WHERE x.user_id = $1 AND x.start_at >= $2 AND x.start_at < $3 AND x.log_offset < $4`+sourceFilter+`
				RETURNING x.source, x.end_at)
			SELECT source, max(end_at) FROM gone GROUP BY 1`, args...)
		if err != nil {
			return fmt.Errorf("delete sleep sessions: %w", err)
		}
		for rows.Next() {
			var source string
			var end time.Time
			if err := rows.Scan(&source, &end); err != nil {
				rows.Close()
				return err
			}
			keep(source, end)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("delete sleep sessions: %w", err)
		}
	}
	if err := m.correctFreshness(ctx, tx, user, gone); err != nil {
		return err
	}
	return m.recomputeNights(ctx, tx, touched)
}

// correctFreshness recomputes last_sample_at of the sources whose newest
// sample or sleep session was among the deleted rows (gone: source -> the
// latest end deleted) from what remains of them; the zero instant when
// nothing does. A source whose deleted rows all ended before its newest
// one keeps its value: the newest is still stored.
func (m *Projector) correctFreshness(ctx context.Context, tx pgx.Tx, user [16]byte, gone map[string]time.Time) error {
	if len(gone) == 0 {
		return nil
	}
	sources, ends := make([]string, 0, len(gone)), make([]time.Time, 0, len(gone))
	for s, end := range gone {
		sources, ends = append(sources, s), append(ends, end)
	}
	var all []string
	for _, t := range metric.Types() {
		all = append(all, string(t))
	}
	_, err := tx.Exec(ctx, `UPDATE `+m.table("source_freshness")+` f SET last_sample_at = coalesce(greatest(
			(SELECT max(s.end_at) FROM `+m.table("samples")+` s WHERE s.user_id = $1 AND s.type = ANY($4::text[]) AND s.source = x.so),
			(SELECT max(z.end_at) FROM `+m.table("sleep_sessions")+` z WHERE z.user_id = $1 AND z.source = x.so)),
			'0001-01-01 00:00:00+00'::timestamptz)
		FROM unnest($2::text[], $3::timestamptz[]) AS x(so, gone_end)
		WHERE f.user_id = $1 AND `+freshnessSource("f")+` = x.so AND f.last_sample_at <= x.gone_end`,
		user, sources, ends, all)
	if err != nil {
		return fmt.Errorf("correct source freshness: %w", err)
	}
	return nil
}

// freshnessSource is the SQL of the source name that a freshness row's
// provider and device give samples and sleep sessions (see apply).
func freshnessSource(alias string) string {
	return `(CASE WHEN ` + alias + `.device = '' THEN ` + alias + `.provider ELSE ` + alias + `.provider || '/' || ` + alias + `.device END)`
}
