package journal

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/biosync/biosync/domain"
)

// Stable event type names (schema version 1 each).
const (
	EventEntryWritten = "journal.entry_written"
	EventEntryDeleted = "journal.entry_deleted"
)

// Bounds of one entry: enough for any real day, small enough that one
// entry stays one small event and one read-model row.
const (
	// MaxTags bounds the tags of one entry.
	MaxTags = 50
	// MaxTagNameLength bounds a tag name in bytes (names are ASCII).
	MaxTagNameLength = 64
	// MaxNoteLength bounds the note in characters (runes).
	MaxNoteLength = 10_000
	// MaxAmount bounds a tag's amount: no drink count, cup count or minute
	// total of one day comes near it, and it keeps sums exact in float64.
	MaxAmount = 1_000_000
	// MinRating and MaxRating bound mood, energy and stress.
	MinRating, MaxRating = 1, 10
)

// DefaultAmount is a tag's amount when the client names none: the tag
// happened once (one drink, one workout).
const DefaultAmount = 1.0

// DateLayout is the local day of an entry, "YYYY-MM-DD".
const DateLayout = time.DateOnly

// earliestDate is the first local day an entry may name; earlier dates are
// typing mistakes, not journal entries.
const earliestDate = "1900-01-01"

// Tag is one thing that happened on the day, with how much of it
// (drinks, cups, minutes; 1 when it simply happened).
type Tag struct {
	Name   string  `json:"name"`
	Amount float64 `json:"amount"`
}

// Entry is the whole journal entry of one local day (what a PUT replaces).
// Ratings are nil when not given; Note is "" when there is none. The note
// and the tag names are personal data: they live in encrypted events and
// in the read model (the note sealed with the user's data key).
type Entry struct {
	Date   string `json:"date"`
	Tags   []Tag  `json:"tags"`
	Mood   *int   `json:"mood,omitempty"`
	Energy *int   `json:"energy,omitempty"`
	Stress *int   `json:"stress,omitempty"`
	Note   string `json:"note,omitempty"`
}

// tagName is lower_snake_case: a lower-case letter, then lower-case
// letters and digits in words joined by single underscores
// (caffeine_after_2pm).
var tagName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// ValidTagName reports whether name is a tag name this API accepts.
func ValidTagName(name string) bool {
	return len(name) <= MaxTagNameLength && tagName.MatchString(name)
}

// Normalize gives an entry its canonical form: a nil tag list becomes
// empty, so an entry without tags has one representation.
func (e Entry) Normalize() Entry {
	if e.Tags == nil {
		e.Tags = []Tag{}
	}
	return e
}

// Validate records every broken rule in v (fields as JSON pointers). now
// bounds the date: a local day may be at most one day after now's UTC day
// (the timezones furthest east are 14 hours ahead), never later.
func (e Entry) Validate(v *domain.ValidationError, now time.Time) {
	if d, err := time.Parse(DateLayout, e.Date); err != nil || d.Format(DateLayout) != e.Date {
		v.Add("/date", "must be a calendar date YYYY-MM-DD (the local day the entry is about)")
	} else if latest := now.UTC().AddDate(0, 0, 1).Format(DateLayout); e.Date > latest || e.Date < earliestDate {
		v.Add("/date", "must be a day between %s and %s (no entries for days that have not begun anywhere)", earliestDate, latest)
	}
	if len(e.Tags) > MaxTags {
		v.Add("/tags", "must hold at most %d tags", MaxTags)
	}
	seen := map[string]int{}
	for i, t := range e.Tags {
		if i >= MaxTags {
			break
		}
		switch {
		case !ValidTagName(t.Name):
			v.Add(pointer("/tags", i, "name"), "must be lower_snake_case (a-z, 0-9 and single underscores, starting with a letter), at most %d characters", MaxTagNameLength)
		default:
			if j, dup := seen[t.Name]; dup {
				v.Add(pointer("/tags", i, "name"), "repeats the tag at /tags/%d (give one tag with the total amount)", j)
			}
			seen[t.Name] = i
		}
		if math.IsNaN(t.Amount) || math.IsInf(t.Amount, 0) || t.Amount < 0 || t.Amount > MaxAmount {
			v.Add(pointer("/tags", i, "amount"), "must be a number from 0 to %d", MaxAmount)
		}
	}
	rating(v, "/mood", e.Mood)
	rating(v, "/energy", e.Energy)
	rating(v, "/stress", e.Stress)
	switch n := e.Note; {
	case !utf8.ValidString(n):
		v.Add("/note", "must be valid UTF-8")
	case utf8.RuneCountInString(n) > MaxNoteLength:
		v.Add("/note", "must be at most %d characters", MaxNoteLength)
	case strings.IndexFunc(n, forbiddenInNote) >= 0:
		v.Add("/note", "must not contain control characters other than line breaks and tabs")
	}
}

func rating(v *domain.ValidationError, field string, r *int) {
	if r != nil && (*r < MinRating || *r > MaxRating) {
		v.Add(field, "must be an integer from %d to %d", MinRating, MaxRating)
	}
}

// forbiddenInNote rejects control characters a note has no use for (a NUL
// byte, terminal escapes); line breaks and tabs are text.
func forbiddenInNote(r rune) bool {
	return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
}

func pointer(base string, i int, field string) string {
	return base + "/" + strconv.Itoa(i) + "/" + field
}

// EntryWritten is the body of journal.entry_written: the whole entry as
// it now is, its id and the version it got (1 when created).
type EntryWritten struct {
	ID string `json:"id"`
	Entry
	Version int64 `json:"version"`
}

// EntryDeleted is the body of journal.entry_deleted: which entry, the day
// it held (free again from now on), and the version the deletion got.
type EntryDeleted struct {
	ID      string `json:"id"`
	Date    string `json:"date"`
	Version int64  `json:"version"`
}
