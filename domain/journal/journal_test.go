package journal

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
)

var now = time.Date(2026, 12, 8, 23, 30, 0, 0, time.UTC)

func fields(v *domain.ValidationError) []string {
	var out []string
	for _, p := range v.Problems {
		out = append(out, p.Field)
	}
	return out
}

func rate(n int) *int { return &n }

func TestEntryRules(t *testing.T) {
	ok := Entry{Date: "2026-12-07", Tags: []Tag{{"alcohol_drinks", 2}, {"caffeine_after_2pm", 1}, {"meditation", 20}},
		Mood: rate(7), Energy: rate(1), Stress: rate(10), Note: "Two glasses of wine.\nSlept badly."}
	cases := []struct {
		name string
		edit func(*Entry)
		want []string // fields named, in order; nil = valid
	}{
		{"a full valid entry", func(*Entry) {}, nil},
		{"only a date", func(e *Entry) { *e = Entry{Date: "2026-12-07"} }, nil},
		{"tomorrow in UTC (already today in Kiribati)", func(e *Entry) { e.Date = "2026-12-09" }, nil},
		{"the day after tomorrow", func(e *Entry) { e.Date = "2026-12-10" }, []string{"/date"}},
		{"a day before 1900", func(e *Entry) { e.Date = "1899-12-31" }, []string{"/date"}},
		{"no date", func(e *Entry) { e.Date = "" }, []string{"/date"}},
		{"a timestamp instead of a day", func(e *Entry) { e.Date = "2026-12-07T00:00:00Z" }, []string{"/date"}},
		{"February 30th", func(e *Entry) { e.Date = "2026-02-30" }, []string{"/date"}},
		{"a day without leading zeros", func(e *Entry) { e.Date = "2026-1-7" }, []string{"/date"}},
		{"an amount of zero (logged as not happening)", func(e *Entry) { e.Tags[0].Amount = 0 }, nil},
		{"a fractional amount", func(e *Entry) { e.Tags[0].Amount = 1.5 }, nil},
		{"a negative amount", func(e *Entry) { e.Tags[1].Amount = -1 }, []string{"/tags/1/amount"}},
		{"an infinite amount", func(e *Entry) { e.Tags[1].Amount = math.Inf(1) }, []string{"/tags/1/amount"}},
		{"NaN", func(e *Entry) { e.Tags[1].Amount = math.NaN() }, []string{"/tags/1/amount"}},
		{"an amount over the bound", func(e *Entry) { e.Tags[1].Amount = MaxAmount + 1 }, []string{"/tags/1/amount"}},
		{"a camelCase tag", func(e *Entry) { e.Tags[0].Name = "alcoholDrinks" }, []string{"/tags/0/name"}},
		{"a tag with a space", func(e *Entry) { e.Tags[2].Name = "late meal" }, []string{"/tags/2/name"}},
		{"a tag starting with a digit", func(e *Entry) { e.Tags[0].Name = "2pm_coffee" }, []string{"/tags/0/name"}},
		{"a double underscore", func(e *Entry) { e.Tags[0].Name = "late__meal" }, []string{"/tags/0/name"}},
		{"a trailing underscore", func(e *Entry) { e.Tags[0].Name = "late_" }, []string{"/tags/0/name"}},
		{"an empty tag name", func(e *Entry) { e.Tags[0].Name = "" }, []string{"/tags/0/name"}},
		{"a 64-character tag", func(e *Entry) { e.Tags[0].Name = strings.Repeat("a", 64) }, nil},
		{"a 65-character tag", func(e *Entry) { e.Tags[0].Name = strings.Repeat("a", 65) }, []string{"/tags/0/name"}},
		{"the same tag twice", func(e *Entry) { e.Tags[2].Name = "alcohol_drinks" }, []string{"/tags/2/name"}},
		{"50 tags", func(e *Entry) { e.Tags = manyTags(50) }, nil},
		{"51 tags", func(e *Entry) { e.Tags = manyTags(51) }, []string{"/tags"}},
		{"mood 0", func(e *Entry) { e.Mood = rate(0) }, []string{"/mood"}},
		{"energy 11", func(e *Entry) { e.Energy = rate(11) }, []string{"/energy"}},
		{"stress -1", func(e *Entry) { e.Stress = rate(-1) }, []string{"/stress"}},
		{"a note of 10,000 characters", func(e *Entry) { e.Note = strings.Repeat("ü", MaxNoteLength) }, nil},
		{"a note of 10,001 characters", func(e *Entry) { e.Note = strings.Repeat("ü", MaxNoteLength+1) }, []string{"/note"}},
		{"a note with tabs and CRLF", func(e *Entry) { e.Note = "a\tb\r\nc" }, nil},
		{"a note with a NUL byte", func(e *Entry) { e.Note = "a\x00" }, []string{"/note"}},
		{"a note with a terminal escape", func(e *Entry) { e.Note = "\x1b[31mred" }, []string{"/note"}},
		{"a note of broken UTF-8", func(e *Entry) { e.Note = "\xff" }, []string{"/note"}},
		{"every rule broken at once", func(e *Entry) {
			*e = Entry{Date: "x", Tags: []Tag{{"Bad", -1}}, Mood: rate(0), Energy: rate(0), Stress: rate(0), Note: "\x00"}
		}, []string{"/date", "/tags/0/name", "/tags/0/amount", "/mood", "/energy", "/stress", "/note"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			e.Tags = append([]Tag(nil), ok.Tags...)
			tc.edit(&e)
			v := &domain.ValidationError{}
			e.Validate(v, now)
			assert.Equal(t, tc.want, fields(v))
		})
	}
}

func manyTags(n int) []Tag {
	out := make([]Tag, n)
	for i := range out {
		out[i] = Tag{Name: "tag_" + strings.Repeat("x", i+1), Amount: 1}
	}
	return out
}

func TestAnEntryWithoutTagsHasOneForm(t *testing.T) {
	assert.Equal(t, []Tag{}, Entry{Date: "2026-12-07"}.Normalize().Tags)
	assert.Equal(t, []Tag{{"nap", 20}}, Entry{Date: "2026-12-07", Tags: []Tag{{"nap", 20}}}.Normalize().Tags)
}

func TestEverySuggestedTagIsAValidNameAndListedOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Catalog {
		assert.Truef(t, ValidTagName(s.Name), "%s", s.Name)
		assert.NotEmpty(t, s.DisplayName, s.Name)
		assert.False(t, seen[s.Name], "%s twice", s.Name)
		seen[s.Name] = true
	}
	require.True(t, seen["alcohol_drinks"])
	require.True(t, seen["caffeine_after_2pm"])
	require.True(t, seen["hard_workout"])
	require.True(t, seen["late_meal"])
	require.True(t, seen["meditation"])
}
