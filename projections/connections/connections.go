package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/domain/provider/oura"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Name is the stable name of the connections projector.
const Name = "connections"

// Projector projects provider links and scores. Rows are upserted by
// natural key with the later log offset winning, so replays and rebuilds
// give the same rows.
type Projector struct{ Gen int }

// Name implements engine.Projector.
func (p Projector) Name() string { return Name }

// Generation implements engine.Projector.
func (p Projector) Generation() int { return max(p.Gen, 1) }

// Tables implements engine.Projector.
func (p Projector) Tables() []string { return Tables() }

// Tables lists the base names of the read model's tables.
func Tables() []string { return []string{"provider_links", "provider_scores"} }

// Wants implements engine.Selective.
func (p Projector) Wants(eventType string) bool {
	switch eventType {
	case provider.EventConnectionEstablished, provider.EventConnectionRevoked, provider.EventRecordFetched:
		return true
	}
	return false
}

func (p Projector) table(base string) string { return engine.Table(base, p.Generation()) }

type linkKey struct {
	user     uuid.UUID
	provider provider.Name
}

type link struct {
	status      string
	connectedAt *time.Time
	revokedAt   *time.Time
	offset      int64
}

type scoreKey struct {
	user     uuid.UUID
	provider provider.Name
	kind     string
	day      string
}

// Apply implements engine.Projector.
func (p Projector) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	links := map[linkKey]link{}
	data := map[linkKey]time.Time{}
	scores := map[scoreKey][2]float64{} // value, log offset
	for _, e := range events {
		switch e.Type {
		case provider.EventConnectionEstablished:
			var b provider.ConnectionEstablished
			if err := json.Unmarshal(e.Payload, &b); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			at := b.ConnectedAt.UTC()
			links[linkKey{e.UserID, b.Provider}] = link{status: string(provider.StatusConnected), connectedAt: &at, offset: e.Offset}
		case provider.EventConnectionRevoked:
			var b provider.ConnectionRevoked
			if err := json.Unmarshal(e.Payload, &b); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			at := b.RevokedAt.UTC()
			k := linkKey{e.UserID, b.Provider}
			prev := links[k]
			links[k] = link{status: string(provider.StatusRevoked), connectedAt: prev.connectedAt, revokedAt: &at, offset: e.Offset}
		case provider.EventRecordFetched:
			var r provider.RecordFetched
			if err := json.Unmarshal(e.Payload, &r); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			k := linkKey{e.UserID, r.Provider}
			if r.FetchedAt.After(data[k]) {
				data[k] = r.FetchedAt.UTC()
			}
			if r.Provider != provider.Oura {
				continue
			}
			n, err := oura.Normalize(r.DataType, r.Record, time.UTC)
			if errors.Is(err, oura.ErrUnknownType) {
				continue
			}
			if err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			for _, s := range n.Scores {
				scores[scoreKey{e.UserID, s.Provider, s.Kind, s.Day}] = [2]float64{s.Value, float64(e.Offset)}
			}
		}
	}
	if err := p.writeLinks(ctx, tx, links, data); err != nil {
		return err
	}
	return p.writeScores(ctx, tx, scores)
}

func (p Projector) writeLinks(ctx context.Context, tx pgx.Tx, links map[linkKey]link, data map[linkKey]time.Time) error {
	t := p.table("provider_links")
	var users []uuid.UUID
	var provs, statuses []string
	var connected, revoked []*time.Time
	var offsets []int64
	for k, l := range links {
		users, provs, statuses = append(users, k.user), append(provs, string(k.provider)), append(statuses, l.status)
		connected, revoked, offsets = append(connected, l.connectedAt), append(revoked, l.revokedAt), append(offsets, l.offset)
	}
	if len(users) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, provider, status, connected_at, revoked_at, log_offset)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::bigint[])
			ON CONFLICT (user_id, provider) DO UPDATE SET status = EXCLUDED.status,
				connected_at = COALESCE(EXCLUDED.connected_at, `+t+`.connected_at), revoked_at = EXCLUDED.revoked_at, log_offset = EXCLUDED.log_offset
			WHERE `+t+`.log_offset <= EXCLUDED.log_offset`, users, provs, statuses, connected, revoked, offsets); err != nil {
			return fmt.Errorf("upsert provider links: %w", err)
		}
	}
	users, provs = nil, nil
	var at []time.Time
	for k, d := range data {
		users, provs, at = append(users, k.user), append(provs, string(k.provider)), append(at, d)
	}
	if len(users) > 0 {
		// A record can arrive before the link in a rebuild of an old log
		// (never in one partition's order, but a link row may be missing
		// after a partial purge): the row is created as connected.
		if _, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, provider, status, last_data_at, log_offset)
			SELECT u, p, 'connected', d, -1 FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS x(u, p, d)
			ON CONFLICT (user_id, provider) DO UPDATE SET last_data_at = GREATEST(`+t+`.last_data_at, EXCLUDED.last_data_at)`,
			users, provs, at); err != nil {
			return fmt.Errorf("provider links' last data: %w", err)
		}
	}
	return nil
}

func (p Projector) writeScores(ctx context.Context, tx pgx.Tx, scores map[scoreKey][2]float64) error {
	if len(scores) == 0 {
		return nil
	}
	t := p.table("provider_scores")
	var users []uuid.UUID
	var provs, kinds, days []string
	var values []float64
	var offsets []int64
	for k, v := range scores {
		users, provs, kinds, days = append(users, k.user), append(provs, string(k.provider)), append(kinds, k.kind), append(days, k.day)
		values, offsets = append(values, v[0]), append(offsets, int64(v[1]))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, provider, kind, day, value, log_offset)
		SELECT u, p, k, d::date, v, o FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bigint[]) AS x(u, p, k, d, v, o)
		ON CONFLICT (user_id, provider, kind, day) DO UPDATE SET value = EXCLUDED.value, log_offset = EXCLUDED.log_offset
		WHERE `+t+`.log_offset <= EXCLUDED.log_offset`, users, provs, kinds, days, values, offsets); err != nil {
		return fmt.Errorf("upsert provider scores: %w", err)
	}
	return nil
}
