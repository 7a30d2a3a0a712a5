package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/biosync/biosync/domain"
	djournal "github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// Name is the stable name of the journal projector (checkpoints, registry,
// consistency waits).
const Name = "journal"

// NoteField names the sealed note (associated data of
// journal_entries_g<N>.note_sealed).
const NoteField = "journal.note"

// Projector projects journal events into journal_entries_g<N>: each entry
// is the whole entry of its last event in log order (later log offset
// wins, so redeliveries and replays change nothing); a deletion leaves a
// tombstone without note and tags.
//
// It also raises the command-side claim (journal_days) to each event it
// applies: an append whose outcome was unknown to its handler (timeout)
// rolled the claim back, yet the record may have landed; without this,
// clients would read a version the command side does not know.
type Projector struct {
	Gen int
	// Fields seals the note; the runtime sets it (WithFields).
	Fields engine.Fields
}

// WithFields implements engine.Sealing.
func (p Projector) WithFields(f engine.Fields) engine.Projector {
	p.Fields = f
	return p
}

// errNoFields: a projector made without the key ring (the runtime always
// gives it one). Not the events' fault, so retried, never parked.
var errNoFields = fmt.Errorf("journal projector has no key ring to seal notes with: %w", domain.ErrUnavailable)

// Name implements engine.Projector.
func (p Projector) Name() string { return Name }

// Generation implements engine.Projector.
func (p Projector) Generation() int { return max(p.Gen, 1) }

// Tables implements engine.Projector.
func (p Projector) Tables() []string { return Tables() }

// Tables lists the base names of the journal read model's tables.
func Tables() []string { return []string{"journal_entries"} }

// Wants implements engine.Selective: only the two journal events.
func (p Projector) Wants(eventType string) bool {
	return eventType == djournal.EventEntryWritten || eventType == djournal.EventEntryDeleted
}

// row is an entry as the batch leaves it.
type row struct {
	user    uuid.UUID
	entry   djournal.Entry
	version int64
	deleted bool
	created time.Time // the entry's first event in this batch
	at      time.Time
	offset  int64
}

// Apply implements engine.Projector.
func (p Projector) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Stored) error {
	if p.Fields == nil {
		return errNoFields
	}
	rows := map[uuid.UUID]row{}
	var order []uuid.UUID
	for _, e := range events { // log order: a later event replaces an earlier one
		var id string
		r := row{user: e.UserID, at: e.OccurredAt.UTC(), offset: e.Offset}
		switch e.Type {
		case djournal.EventEntryWritten:
			var w djournal.EntryWritten
			if err := json.Unmarshal(e.Payload, &w); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			id, r.entry, r.version = w.ID, w.Entry.Normalize(), w.Version
		case djournal.EventEntryDeleted:
			var d djournal.EntryDeleted
			if err := json.Unmarshal(e.Payload, &d); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			id, r.entry, r.version, r.deleted = d.ID, djournal.Entry{Date: d.Date, Tags: []djournal.Tag{}}, d.Version, true
		default:
			continue
		}
		entryID, err := uuid.Parse(id)
		if err != nil {
			return fmt.Errorf("event %s: entry id %q: %w", e.ID, id, err)
		}
		if prev, seen := rows[entryID]; seen {
			r.created = prev.created
		} else {
			order = append(order, entryID)
			r.created = r.at
		}
		rows[entryID] = r
	}
	if len(rows) == 0 {
		return nil
	}
	var (
		users, ids                [][16]byte
		dates                     []string
		tags                      [][]byte
		moods, energies, stresses []*int32
		notes                     [][]byte
		versions, offsets         []int64
		deleted                   []bool
		createds, ats             []time.Time
	)
	for _, id := range order {
		r := rows[id]
		var note []byte
		if r.entry.Note != "" {
			sealed, err := p.Fields.SealField(ctx, r.user, NoteField, []byte(r.entry.Note))
			if errors.Is(err, eventstore.ErrErased) {
				continue // erased since the event was read: no row (the purges remove any)
			}
			if err != nil {
				// The key opened this user's event a moment ago: a failure
				// here is the key store's, not the event's (retried).
				return fmt.Errorf("%w: seal the journal note of user %s: %v", domain.ErrUnavailable, r.user, err)
			}
			note = sealed
		}
		t, err := json.Marshal(r.entry.Tags)
		if err != nil {
			return err
		}
		users, ids, dates, tags = append(users, r.user), append(ids, id), append(dates, r.entry.Date), append(tags, t)
		moods, energies, stresses = append(moods, ptr32(r.entry.Mood)), append(energies, ptr32(r.entry.Energy)), append(stresses, ptr32(r.entry.Stress))
		notes, versions, deleted = append(notes, note), append(versions, r.version), append(deleted, r.deleted)
		createds, ats, offsets = append(createds, r.created), append(ats, r.at), append(offsets, r.offset)
	}
	t := engine.Table("journal_entries", p.Generation())
	if _, err := tx.Exec(ctx, `INSERT INTO `+t+` (user_id, entry_id, local_date, tags, mood, energy, stress, note_sealed, version, deleted, created_at, updated_at, log_offset)
		SELECT u, i, d::date, tg, m, en, st, n, v, del, c, a, o
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::int[], $6::int[], $7::int[], $8::bytea[], $9::bigint[], $10::bool[], $11::timestamptz[], $12::timestamptz[], $13::bigint[])
			AS x(u, i, d, tg, m, en, st, n, v, del, c, a, o)
		ON CONFLICT (user_id, entry_id) DO UPDATE SET local_date = EXCLUDED.local_date, tags = EXCLUDED.tags, mood = EXCLUDED.mood,
			energy = EXCLUDED.energy, stress = EXCLUDED.stress, note_sealed = EXCLUDED.note_sealed, version = EXCLUDED.version,
			deleted = EXCLUDED.deleted, updated_at = EXCLUDED.updated_at, log_offset = EXCLUDED.log_offset
		WHERE `+t+`.log_offset <= EXCLUDED.log_offset`,
		users, ids, dates, tags, moods, energies, stresses, notes, versions, deleted, createds, ats, offsets); err != nil {
		return fmt.Errorf("upsert journal entries: %w", err)
	}
	// The command-side claims: first the existing ones (versions only
	// rise, so replays and rebuilds change nothing; a deletion frees its
	// day before the batch's new claims are made, and a deleted entry's
	// row stays, so an old event of it never claims its day again).
	// A moved entry takes its new day only while no other live entry
	// holds it (the command side decided that already; this matters only
	// when a rebuild restores a lost table).
	if _, err := tx.Exec(ctx, `UPDATE journal_days j SET version = x.v, deleted = j.deleted OR x.del, updated_at = now(),
			local_date = CASE WHEN j.deleted OR x.del OR NOT EXISTS (SELECT 1 FROM journal_days o
				WHERE o.user_id = j.user_id AND o.local_date = x.d AND NOT o.deleted AND o.entry_id <> j.entry_id)
				THEN x.d ELSE j.local_date END
		FROM unnest($1::uuid[], $2::bigint[], $3::bool[], $4::date[]) AS x(i, v, del, d)
		WHERE j.entry_id = x.i AND j.version < x.v`, ids, versions, deleted, dates); err != nil {
		return fmt.Errorf("raise journal day versions: %w", err)
	}
	// Then the missing claims: a landed event whose handler saw a timeout
	// gets its claim (unless its day is taken), as does every entry when
	// journal_days was lost and a rebuild restores it.
	if _, err := tx.Exec(ctx, `INSERT INTO journal_days (user_id, entry_id, local_date, version, deleted)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::bigint[], $5::bool[])
		ON CONFLICT DO NOTHING`, users, ids, dates, versions, deleted); err != nil {
		return fmt.Errorf("claim journal days: %w", err)
	}
	return nil
}

func ptr32(v *int) *int32 {
	if v == nil {
		return nil
	}
	n := int32(*v)
	return &n
}
