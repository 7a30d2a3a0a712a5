package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/domain/provider/oura"
	"github.com/biosync/biosync/domain/settings"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Name is the stable name of the metrics projector (checkpoints, registry,
// consistency waits, the dashboard cache's versions).
const Name = "metrics"

// RollupVersion versions the daily rollup and sleep derivations; it is
// stored on every rollup and session row.
const RollupVersion = 1

// Projector projects samples.pushed (and the timezone facts of
// user.registered and user.settings_changed) into normalized samples, daily rollups per local day,
// sleep sessions and source freshness, and removes what samples.deleted
// selects again (see deletion.go). Every write is an upsert on a natural
// key where the later log position wins, and a deletion removes only rows
// from earlier log positions, so replays and duplicate deliveries change
// nothing. Daily rollups are kept per source by the exact
// difference each batch makes against the stored samples (see rollups.go),
// so a batch costs what it holds, not what its days already hold.
type Projector struct {
	Gen int
	// Cache, when set, is refreshed after each commit.
	Cache *DashboardCache
	// history caches users' timezone histories (this projector is the
	// only writer of tz_history; entries are replaced when it applies a
	// timezone fact), saving a query per batch.
	historyMu sync.Mutex
	history   map[uuid.UUID][]metric.TimezoneChange

	// Derivation overrides the normalization (and the version stored with
	// its results); zero means domain/ingest.Normalize at
	// metric.NormalizationVersion. A new derivation is deployed by building
	// a new generation with it and switching reads.
	Derivation Derivation
}

// Derivation is a versioned normalization function.
type Derivation struct {
	Version   int
	Normalize func(ingest.Batch) ([]ingest.Point, []ingest.Night, int)
}

func (m *Projector) derivation() Derivation {
	if m.Derivation.Normalize == nil {
		return Derivation{Version: metric.NormalizationVersion, Normalize: ingest.Normalize}
	}
	return m.Derivation
}

// Name implements engine.Projector.
func (m *Projector) Name() string { return Name }

// Generation implements engine.Projector.
func (m *Projector) Generation() int { return max(m.Gen, 1) }

// Tables implements engine.Projector.
func (m *Projector) Tables() []string { return Tables() }

// Tables lists the base names of the metrics read model's tables.
func Tables() []string {
	return []string{"tz_history", "samples", "daily_rollups", "daily_source_rollups", "sleep_sessions", "source_freshness", "pushes_applied", "nights"}
}

func (m *Projector) table(base string) string { return engine.Table(base, m.Generation()) }

type sampleKey struct {
	user       uuid.UUID
	typ        metric.Type
	start, end time.Time
	source     string
}

type sampleRow struct {
	key       sampleKey
	value     float64
	unit      string
	offset    int
	day       metric.LocalDay
	partition int32
	logOffset int64
	eventID   uuid.UUID
}

type sleepKey struct {
	user       uuid.UUID
	start, end time.Time
	source     string
}

type sleepRow struct {
	key       sleepKey
	wake      string
	offset    int
	minutes   map[string]float64
	firstAt   time.Time // the first stage that is not awake; zero: none
	logOffset int64
	eventID   uuid.UUID
}

type freshKey struct {
	user             uuid.UUID
	provider, device string
}

type dayKey struct {
	user uuid.UUID
	typ  metric.Type
	date string
}

// Apply implements engine.Projector. If it fails, the timezone histories it may
// have cached for the batch's users are forgotten (the transaction rolls
// back; the next attempt reloads them).
func (m *Projector) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) (err error) {
	defer func() {
		if err != nil {
			m.historyMu.Lock()
			for _, e := range events {
				delete(m.history, e.UserID)
			}
			m.historyMu.Unlock()
		}
	}()
	return m.apply(ctx, tx, events)
}

func (m *Projector) apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	history, err := m.loadHistory(ctx, tx, events)
	if err != nil {
		return err
	}
	pushes, err := m.admit(ctx, tx, events)
	if err != nil {
		return err
	}
	w := newPending()
	for i, e := range events {
		switch e.Type {
		case identity.EventRegistered:
			var r identity.Registered
			if err := json.Unmarshal(e.Payload, &r); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			history[e.UserID] = addChange(history[e.UserID], metric.TimezoneChange{From: r.RegisteredAt, Zone: r.Timezone})
			// A rolled-back batch is applied again, so caching its facts now
			// is safe: they are in the log and will be in the table.
			m.remember([][16]byte{e.UserID}, history)
			w.timezone(e.UserID, r.RegisteredAt, r.Timezone)
		case settings.EventProfileChanged:
			c, changed, err := timezoneChange(e, history[e.UserID])
			if err != nil {
				return err
			}
			if changed {
				history[e.UserID] = addChange(history[e.UserID], c)
				m.remember([][16]byte{e.UserID}, history)
				w.timezone(e.UserID, c.From, c.Zone)
			}
		case ingest.EventPushed:
			p, ok := pushes[i]
			if !ok {
				continue // skipped or refused by admit
			}
			m.collect(e, p.Batch, p.ReceivedAt, history[e.UserID], w)
		case provider.EventRecordFetched:
			r, batch, ok, err := providerBatch(e, history[e.UserID])
			if err != nil {
				return err
			}
			if ok {
				m.collect(e, batch, r.FetchedAt, history[e.UserID], w)
			}
		case ingest.EventDeleted:
			var d ingest.Deletion
			if err := json.Unmarshal(e.Payload, &d); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			// The deletion meets everything before it in the log: what
			// this batch gathered so far is written first, and what
			// follows is gathered anew (a push after the deletion
			// re-adds what it carries).
			if err := m.write(ctx, tx, w); err != nil {
				return err
			}
			w = newPending()
			if err := m.deleteRows(ctx, tx, e, d); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
		}
	}
	return m.write(ctx, tx, w)
}

// pending is what a stretch of a batch writes: the later log position of
// each natural key, gathered in log order, written together by write.
type pending struct {
	tzZones []string
	tzUsers [][16]byte
	tzFrom  []time.Time
	samples map[sampleKey]sampleRow
	nights  map[sleepKey]sleepRow
	fresh   map[freshKey][2]time.Time
}

func newPending() *pending {
	return &pending{samples: map[sampleKey]sampleRow{}, nights: map[sleepKey]sleepRow{}, fresh: map[freshKey][2]time.Time{}}
}

func (w *pending) timezone(user uuid.UUID, from time.Time, zone string) {
	w.tzUsers, w.tzFrom, w.tzZones = append(w.tzUsers, user), append(w.tzFrom, from), append(w.tzZones, zone)
}

// write stores what w gathered: timezone facts, samples (and the
// difference they make to the rollups), sleep sessions and freshness,
// then the nights they touch (nights.go).
func (m *Projector) write(ctx context.Context, tx pgx.Tx, w *pending) error {
	touched, err := m.nightsTouched(ctx, tx, w)
	if err != nil {
		return err
	}
	if len(w.tzUsers) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO `+m.table("tz_history")+` (user_id, valid_from, zone)
			SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) ON CONFLICT DO NOTHING`, w.tzUsers, w.tzFrom, w.tzZones); err != nil {
			return fmt.Errorf("timezone history: %w", err)
		}
	}
	change, err := m.upsertSamples(ctx, tx, w.samples)
	if err != nil {
		return err
	}
	if err := m.upsertSleep(ctx, tx, w.nights); err != nil {
		return err
	}
	if err := m.upsertFreshness(ctx, tx, w.fresh); err != nil {
		return err
	}
	if err := m.updateRollups(ctx, tx, change); err != nil {
		return err
	}
	return m.recomputeNights(ctx, tx, touched)
}

// collect folds one batch (pushed, or normalized from a provider's record)
// into the rows of the transaction: samples and nights keyed by their
// natural keys (a later log offset wins), and the source's freshness.
func (m *Projector) collect(e eventstore.Stored, batch ingest.Batch, receivedAt time.Time, history []metric.TimezoneChange, w *pending) {
	source := batch.Source.Provider
	if batch.Source.Device != "" {
		source += "/" + batch.Source.Device
	}
	points, sessions, _ := m.derivation().Normalize(batch)
	var lastSample time.Time
	for _, pt := range points {
		loc := zoneAt(history, pt.Start)
		day := metric.AttributeDay(pt.Start, pt.Offset, pt.HasOffset, loc)
		off := pt.Offset
		if !pt.HasOffset {
			_, off = pt.Start.In(loc).Zone()
		}
		k := sampleKey{e.UserID, pt.Type, pt.Start, pt.End, source}
		w.samples[k] = sampleRow{key: k, value: pt.Value, unit: pt.Unit, offset: off, day: day, partition: e.Partition, logOffset: e.Offset, eventID: e.ID}
		if pt.End.After(lastSample) {
			lastSample = pt.End
		}
	}
	for _, n := range sessions {
		loc := zoneAt(history, n.End)
		wake := metric.AttributeDay(n.End, n.Offset, n.HasOffset, loc)
		off := n.Offset
		if !n.HasOffset {
			_, off = n.End.In(loc).Zone()
		}
		k := sleepKey{e.UserID, n.Start, n.End, source}
		w.nights[k] = sleepRow{key: k, wake: wake.Date, offset: off, minutes: n.StageMinutes, firstAt: n.FirstSleep, logOffset: e.Offset, eventID: e.ID}
		if n.End.After(lastSample) {
			lastSample = n.End
		}
	}
	fk := freshKey{e.UserID, batch.Source.Provider, batch.Source.Device}
	cur := w.fresh[fk]
	if lastSample.After(cur[0]) {
		cur[0] = lastSample
	}
	if receivedAt.After(cur[1]) {
		cur[1] = receivedAt
	}
	w.fresh[fk] = cur
}

// providerBatch normalizes a provider.record_fetched event with the
// provider's pure mapping. ok is false for a record that maps to nothing
// (a type BioSync does not map yet, a deleted document): skipped, not
// poison. A record that is not its documented shape is poison (a dead
// letter operators can see), never a silent gap.
func providerBatch(e eventstore.Stored, history []metric.TimezoneChange) (provider.RecordFetched, ingest.Batch, bool, error) {
	var r provider.RecordFetched
	if err := json.Unmarshal(e.Payload, &r); err != nil {
		return r, ingest.Batch{}, false, fmt.Errorf("event %s: %w", e.ID, err)
	}
	switch r.Provider {
	case provider.Oura:
		n, err := oura.Normalize(r.DataType, r.Record, zoneAt(history, r.FetchedAt))
		if errors.Is(err, oura.ErrUnknownType) {
			return r, ingest.Batch{}, false, nil
		}
		if err != nil {
			return r, ingest.Batch{}, false, fmt.Errorf("event %s: %w", e.ID, err)
		}
		return r, n.Batch, len(n.Batch.Samples)+len(n.Batch.SleepSessions) > 0, nil
	default:
		return r, ingest.Batch{}, false, nil
	}
}

// timezoneChange reads a settings change as a timezone fact: a zone other
// than the latest one applies from the moment of the change (the event's
// occurred time, in microseconds like the table) on. Samples measured
// before it keep their days; later ones (with UTC timestamps) land on the
// new zone's days. Log order decides between changes: one stamped before
// the latest change (clock skew between instances) takes effect just
// after it instead.
func timezoneChange(e eventstore.Stored, history []metric.TimezoneChange) (metric.TimezoneChange, bool, error) {
	var c settings.ProfileChanged
	if err := json.Unmarshal(e.Payload, &c); err != nil {
		return metric.TimezoneChange{}, false, fmt.Errorf("event %s: %w", e.ID, err)
	}
	from := e.OccurredAt.UTC().Truncate(time.Microsecond)
	if n := len(history); n > 0 {
		if c.Timezone == history[n-1].Zone {
			return metric.TimezoneChange{}, false, nil
		}
		if !from.After(history[n-1].From) {
			from = history[n-1].From.Add(time.Microsecond)
		}
	}
	if c.Timezone == "" {
		return metric.TimezoneChange{}, false, nil
	}
	return metric.TimezoneChange{From: from, Zone: c.Timezone}, true, nil
}

func addChange(h []metric.TimezoneChange, c metric.TimezoneChange) []metric.TimezoneChange {
	h = append(h, c)
	sort.SliceStable(h, func(i, j int) bool { return h[i].From.Before(h[j].From) })
	return h
}

// locations caches loaded zones (LoadLocation reads tzdata each time).
var locations sync.Map

func zoneAt(h []metric.TimezoneChange, t time.Time) *time.Location {
	return loadZone(metric.ZoneAt(h, t))
}

func loadZone(name string) *time.Location {
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	locations.Store(name, loc)
	return loc
}

// loadHistory returns the timezone history of every user in the batch,
// from the cache or (for users not cached) one query.
func (m *Projector) loadHistory(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) (map[uuid.UUID][]metric.TimezoneChange, error) {
	seen := map[uuid.UUID]bool{}
	out := map[uuid.UUID][]metric.TimezoneChange{}
	var ids [][16]byte
	m.historyMu.Lock()
	for _, e := range events {
		if seen[e.UserID] {
			continue
		}
		seen[e.UserID] = true
		if h, ok := m.history[e.UserID]; ok {
			out[e.UserID] = h
			continue
		}
		ids = append(ids, e.UserID)
	}
	m.historyMu.Unlock()
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT user_id, valid_from, zone FROM `+m.table("tz_history")+` WHERE user_id = ANY($1::uuid[]) ORDER BY user_id, valid_from`, ids)
	if err != nil {
		return nil, fmt.Errorf("load timezone history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var c metric.TimezoneChange
		if err := rows.Scan(&id, &c.From, &c.Zone); err != nil {
			return nil, err
		}
		out[id] = append(out[id], c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	m.remember(ids, out)
	return out, nil
}

// maxHistories bounds the timezone history cache.
const maxHistories = 100_000

func (m *Projector) remember(ids [][16]byte, h map[uuid.UUID][]metric.TimezoneChange) {
	m.historyMu.Lock()
	defer m.historyMu.Unlock()
	if m.history == nil || len(m.history) > maxHistories {
		m.history = map[uuid.UUID][]metric.TimezoneChange{}
	}
	for _, id := range ids {
		m.history[uuid.UUID(id)] = h[uuid.UUID(id)]
	}
}

func (m *Projector) upsertSleep(ctx context.Context, tx pgx.Tx, nights map[sleepKey]sleepRow) error {
	if len(nights) == 0 {
		return nil
	}
	var users, eventIDs [][16]byte
	var sources, wakes []string
	var starts, ends []time.Time
	var offsets []int32
	var awake, light, deep, rem []float64
	var logOffsets []int64
	var firsts []*time.Time
	for _, s := range nights {
		users = append(users, s.key.user)
		starts = append(starts, s.key.start)
		ends = append(ends, s.key.end)
		sources = append(sources, s.key.source)
		wakes = append(wakes, s.wake)
		offsets = append(offsets, int32(s.offset))
		awake = append(awake, s.minutes["awake"])
		light = append(light, s.minutes["light"])
		deep = append(deep, s.minutes["deep"])
		rem = append(rem, s.minutes["rem"])
		logOffsets = append(logOffsets, s.logOffset)
		eventIDs = append(eventIDs, s.eventID)
		var first *time.Time
		if !s.firstAt.IsZero() {
			first = &s.firstAt
		}
		firsts = append(firsts, first)
	}
	t := m.table("sleep_sessions")
	_, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, start_at, end_at, source, wake_date, utc_offset, awake_minutes, light_minutes, deep_minutes, rem_minutes, log_offset, event_id, algorithm_version, first_sleep_at)
		SELECT u, st, en, so, wd::date, uo, aw, li, de, re, lo, ev, $13::smallint, fs
		FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::text[], $6::int[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::bigint[], $12::uuid[], $14::timestamptz[])
			AS x(u, st, en, so, wd, uo, aw, li, de, re, lo, ev, fs)
		ON CONFLICT (user_id, start_at, end_at, source) DO UPDATE SET
			wake_date = EXCLUDED.wake_date, utc_offset = EXCLUDED.utc_offset, awake_minutes = EXCLUDED.awake_minutes,
			light_minutes = EXCLUDED.light_minutes, deep_minutes = EXCLUDED.deep_minutes, rem_minutes = EXCLUDED.rem_minutes,
			log_offset = EXCLUDED.log_offset, event_id = EXCLUDED.event_id, algorithm_version = EXCLUDED.algorithm_version,
			first_sleep_at = EXCLUDED.first_sleep_at
		WHERE `+t+`.log_offset <= EXCLUDED.log_offset`,
		users, starts, ends, sources, wakes, offsets, awake, light, deep, rem, logOffsets, eventIDs, RollupVersion, firsts)
	if err != nil {
		return fmt.Errorf("upsert sleep sessions: %w", err)
	}
	return nil
}

func (m *Projector) upsertFreshness(ctx context.Context, tx pgx.Tx, fresh map[freshKey][2]time.Time) error {
	if len(fresh) == 0 {
		return nil
	}
	var users [][16]byte
	var providers, devices []string
	var lastSample, lastReceived []time.Time
	for k, v := range fresh {
		users, providers, devices = append(users, k.user), append(providers, k.provider), append(devices, k.device)
		lastSample, lastReceived = append(lastSample, v[0]), append(lastReceived, v[1])
	}
	t := m.table("source_freshness")
	_, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, provider, device, last_sample_at, last_received_at)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
		ON CONFLICT (user_id, provider, device) DO UPDATE SET
			last_sample_at = GREATEST(`+t+`.last_sample_at, EXCLUDED.last_sample_at),
			last_received_at = GREATEST(`+t+`.last_received_at, EXCLUDED.last_received_at)`,
		users, providers, devices, lastSample, lastReceived)
	if err != nil {
		return fmt.Errorf("upsert freshness: %w", err)
	}
	return nil
}

// AfterCommit implements engine.AfterCommitter: it refreshes the cached dashboards of the users in the batch.
func (m *Projector) AfterCommit(ctx context.Context, events []eventstore.Stored, partition int32, next int64, catchingUp bool) {
	if m.Cache == nil {
		return
	}
	seen := map[uuid.UUID]bool{}
	var users []uuid.UUID
	for _, e := range events {
		if !seen[e.UserID] {
			seen[e.UserID] = true
			users = append(users, e.UserID)
		}
	}
	m.Cache.Refresh(ctx, users, m.Generation(), partition, next, catchingUp)
}
