package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
	djournal "github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
)

// MaxPage bounds one page of GET /v1/journal/entries (the spec's maximum
// repeats it): more than a year of days.
const MaxPage = 500

// MaxRangeDays bounds the local days one entry list may span (the spec
// says so): the range the day series of the metrics allow.
const MaxRangeDays = 400

// Reader answers the journal read model's queries from its live
// generation; it implements the HTTP adapter's journal queries port.
type Reader struct {
	Pool *pgxpool.Pool
	// Versions tells which generation is live; nil means generation 1.
	Versions *engine.Versions
	// Fields opens the sealed notes (the key ring; required).
	Fields engine.Fields
}

// EntryView is one entry as stored, with its id and version (the ETag).
type EntryView struct {
	ID uuid.UUID
	djournal.Entry
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EntryKey is an entry's position in list order: its local day, then its
// id (unique, so pages never skip or repeat an entry).
type EntryKey struct {
	Date string
	ID   uuid.UUID
}

// EntryQuery selects one page of a user's entries whose local day lies in
// [From, To] (both "YYYY-MM-DD", inclusive), after After when set.
type EntryQuery struct {
	UserID   uuid.UUID
	From, To string
	Limit    int
	After    *EntryKey
}

// EntryPage is one page of entries, oldest day first; Next is set when
// more follow (the key of the last entry on this page).
type EntryPage struct {
	Entries []EntryView
	Next    *EntryKey
}

// TagUse is how a user has used one tag: in how many live entries, on
// which local day last, and the amounts' total.
type TagUse struct {
	Name        string
	Count       int64
	LastUsed    string
	TotalAmount float64
}

const entryColumns = `entry_id, local_date::text, tags, mood, energy, stress, note_sealed, version, created_at, updated_at`

// Entry returns one of the user's entries; domain.ErrNotFound when the
// user has no such entry (never written, deleted, someone else's, or the
// user erased).
func (r *Reader) Entry(ctx context.Context, userID, entryID uuid.UUID) (EntryView, error) {
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return EntryView{}, err
	}
	row := r.Pool.QueryRow(ctx, `SELECT `+entryColumns+` FROM `+engine.Table("journal_entries", gen)+`
		WHERE user_id = $1 AND entry_id = $2 AND NOT deleted`, userID, entryID)
	v, err := r.scan(ctx, userID, row)
	if errors.Is(err, pgx.ErrNoRows) {
		return EntryView{}, domain.ErrNotFound
	}
	return v, err
}

// Entries lists one page of the user's entries by (local day, id).
func (r *Reader) Entries(ctx context.Context, q EntryQuery) (EntryPage, error) {
	out := EntryPage{Entries: []EntryView{}}
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return out, err
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	args := []any{q.UserID, q.From, q.To, limit + 1}
	after := ""
	if q.After != nil {
		after = ` AND (local_date, entry_id) > ($5::date, $6)`
		args = append(args, q.After.Date, q.After.ID)
	}
	rows, err := r.Pool.Query(ctx, `SELECT `+entryColumns+` FROM `+engine.Table("journal_entries", gen)+`
		WHERE user_id = $1 AND local_date BETWEEN $2::date AND $3::date AND NOT deleted`+after+`
		ORDER BY local_date, entry_id LIMIT $4`, args...)
	if err != nil {
		return out, pgerr.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := r.scan(ctx, q.UserID, rows)
		if errors.Is(err, domain.ErrNotFound) {
			return EntryPage{Entries: []EntryView{}}, err
		}
		if err != nil {
			return out, err
		}
		if len(out.Entries) == limit {
			last := out.Entries[limit-1]
			out.Next = &EntryKey{Date: last.Date, ID: last.ID}
			break
		}
		out.Entries = append(out.Entries, v)
	}
	return out, pgerr.Classify(rows.Err())
}

// Tags lists the tags of the user's live entries, most used first (then
// by name).
func (r *Reader) Tags(ctx context.Context, userID uuid.UUID) ([]TagUse, error) {
	out := []TagUse{}
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return out, err
	}
	rows, err := r.Pool.Query(ctx, `SELECT t->>'name', count(*), max(local_date)::text, sum((t->>'amount')::float8)
		FROM `+engine.Table("journal_entries", gen)+`, jsonb_array_elements(tags) AS t
		WHERE user_id = $1 AND NOT deleted GROUP BY 1 ORDER BY 2 DESC, 1`, userID)
	if err != nil {
		return out, pgerr.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var u TagUse
		if err := rows.Scan(&u.Name, &u.Count, &u.LastUsed, &u.TotalAmount); err != nil {
			return out, err
		}
		out = append(out, u)
	}
	return out, pgerr.Classify(rows.Err())
}

// scan reads one row and opens its note; domain.ErrNotFound once the user
// is erased (the key is destroyed before the rows are purged).
func (r *Reader) scan(ctx context.Context, userID uuid.UUID, row pgx.Row) (EntryView, error) {
	var v EntryView
	var tags []byte
	var mood, energy, stress *int32
	var sealed []byte
	if err := row.Scan(&v.ID, &v.Date, &tags, &mood, &energy, &stress, &sealed, &v.Version, &v.CreatedAt, &v.UpdatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return v, err
		}
		return v, pgerr.Classify(err)
	}
	if err := json.Unmarshal(tags, &v.Tags); err != nil {
		return v, fmt.Errorf("journal: tags of entry %s: %w", v.ID, err)
	}
	v.Mood, v.Energy, v.Stress = intPtr(mood), intPtr(energy), intPtr(stress)
	if sealed != nil {
		if r.Fields == nil {
			return v, errors.New("journal: the reader has no key ring to open notes with")
		}
		note, err := r.Fields.OpenField(ctx, userID, NoteField, sealed)
		if errors.Is(err, eventstore.ErrErased) {
			return EntryView{}, domain.ErrNotFound
		}
		if err != nil {
			return EntryView{}, fmt.Errorf("journal: open the note of entry %s: %w", v.ID, err)
		}
		v.Note = string(note)
	}
	v.CreatedAt, v.UpdatedAt = v.CreatedAt.UTC(), v.UpdatedAt.UTC()
	return v, nil
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	n := int(*v)
	return &n
}
