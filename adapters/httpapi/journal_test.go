package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/adapters/httpapi/journal"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	djournal "github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/eventstore"
	journalrm "github.com/biosync/biosync/projections/journal"
)

// fakeJournal is both journal ports: entries in memory, decided like the
// command side decides them (one live entry per user and day, versions
// compared and set under a mutex; the real ones are row locks, see
// adapters/postgres), validated by the domain's rules.
type fakeJournal struct {
	mu      sync.Mutex
	entries map[uuid.UUID]fakeEntry
	offset  int64
	writes  int
}

type fakeEntry struct {
	user    uuid.UUID
	view    journalrm.EntryView
	deleted bool
}

func newFakeJournal() *fakeJournal { return &fakeJournal{entries: map[uuid.UUID]fakeEntry{}} }

func withJournal(f *fakeJournal) option {
	return func(_ *Config, d *Deps) { d.Journal = journal.Deps{Commands: f, Queries: f} }
}

func (f *fakeJournal) holder(user uuid.UUID, date string, except uuid.UUID) *commands.DayTaken {
	for id, e := range f.entries {
		if e.user == user && e.view.Date == date && !e.deleted && id != except {
			return &commands.DayTaken{Date: date, Existing: id}
		}
	}
	return nil
}

func (f *fakeJournal) saved(id uuid.UUID, e djournal.Entry, version int64) commands.JournalEntrySaved {
	f.offset++
	f.writes++
	return commands.JournalEntrySaved{EntryWritten: djournal.EntryWritten{ID: id.String(), Entry: e, Version: version},
		At: testNow, Token: eventstore.Token{{Partition: 2, Offset: f.offset}}}
}

func (f *fakeJournal) live(user, id uuid.UUID, ifMatch int64) (fakeEntry, error) {
	e, ok := f.entries[id]
	if !ok || e.user != user || e.deleted {
		return e, domain.ErrNotFound
	}
	if e.view.Version != ifMatch {
		return e, &commands.StaleVersion{Document: "journal_entry", Current: e.view.Version}
	}
	return e, nil
}

func valid(e djournal.Entry) (djournal.Entry, error) {
	e = e.Normalize()
	v := &domain.ValidationError{}
	e.Validate(v, testNow)
	return e, v.Err()
}

func (f *fakeJournal) Write(_ context.Context, cmd commands.WriteJournalEntry) (commands.JournalEntrySaved, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := valid(cmd.Entry)
	if err != nil {
		return commands.JournalEntrySaved{}, err
	}
	if taken := f.holder(cmd.UserID, e.Date, uuid.Nil); taken != nil {
		return commands.JournalEntrySaved{}, taken
	}
	id := uuid.New()
	f.entries[id] = fakeEntry{user: cmd.UserID, view: journalrm.EntryView{ID: id, Entry: e, Version: 1, CreatedAt: testNow, UpdatedAt: testNow}}
	return f.saved(id, e, 1), nil
}

func (f *fakeJournal) Replace(_ context.Context, cmd commands.ReplaceJournalEntry) (commands.JournalEntrySaved, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := valid(cmd.Entry)
	if err != nil {
		return commands.JournalEntrySaved{}, err
	}
	cur, err := f.live(cmd.UserID, cmd.EntryID, cmd.IfMatch)
	if err != nil {
		return commands.JournalEntrySaved{}, err
	}
	if taken := f.holder(cmd.UserID, e.Date, cmd.EntryID); taken != nil {
		return commands.JournalEntrySaved{}, taken
	}
	cur.view.Entry, cur.view.Version = e, cur.view.Version+1
	f.entries[cmd.EntryID] = cur
	return f.saved(cmd.EntryID, e, cur.view.Version), nil
}

func (f *fakeJournal) Delete(_ context.Context, cmd commands.DeleteJournalEntry) (commands.JournalEntrySaved, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, err := f.live(cmd.UserID, cmd.EntryID, cmd.IfMatch)
	if err != nil {
		return commands.JournalEntrySaved{}, err
	}
	cur.deleted, cur.view.Version = true, cur.view.Version+1
	f.entries[cmd.EntryID] = cur
	return f.saved(cmd.EntryID, djournal.Entry{Date: cur.view.Date}, cur.view.Version), nil
}

func (f *fakeJournal) Entry(_ context.Context, user, id uuid.UUID) (journalrm.EntryView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[id]
	if !ok || e.user != user || e.deleted {
		return journalrm.EntryView{}, domain.ErrNotFound
	}
	return e.view, nil
}

func (f *fakeJournal) Entries(_ context.Context, q journalrm.EntryQuery) (journalrm.EntryPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []journalrm.EntryView
	for _, e := range f.entries {
		if e.user == q.UserID && !e.deleted && e.view.Date >= q.From && e.view.Date <= q.To &&
			(q.After == nil || e.view.Date > q.After.Date || e.view.Date == q.After.Date && e.view.ID.String() > q.After.ID.String()) {
			all = append(all, e.view)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		return all[i].Date < all[j].Date || all[i].Date == all[j].Date && all[i].ID.String() < all[j].ID.String()
	})
	out := journalrm.EntryPage{Entries: []journalrm.EntryView{}}
	for _, v := range all {
		if len(out.Entries) == q.Limit {
			last := out.Entries[q.Limit-1]
			out.Next = &journalrm.EntryKey{Date: last.Date, ID: last.ID}
			break
		}
		out.Entries = append(out.Entries, v)
	}
	return out, nil
}

func (f *fakeJournal) Tags(_ context.Context, user uuid.UUID) ([]journalrm.TagUse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	uses := map[string]*journalrm.TagUse{}
	for _, e := range f.entries {
		if e.user != user || e.deleted {
			continue
		}
		for _, t := range e.view.Tags {
			u := uses[t.Name]
			if u == nil {
				u = &journalrm.TagUse{Name: t.Name}
				uses[t.Name] = u
			}
			u.Count++
			u.TotalAmount += t.Amount
			u.LastUsed = max(u.LastUsed, e.view.Date)
		}
	}
	out := []journalrm.TagUse{}
	for _, u := range uses {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

const wineEntry = `{"date":"2026-11-19","tags":[{"name":"alcohol_drinks","amount":2},{"name":"late_meal"}],"mood":6,"note":"Two glasses of Rioja"}`

func decodeEntry(t *testing.T, body []byte) gen.JournalEntry {
	t.Helper()
	var e gen.JournalEntry
	require.NoError(t, json.Unmarshal(body, &e))
	return e
}

func TestAJournalEntryIsCreatedWithAVersionAndReadBack(t *testing.T) {
	h := newHarness(t, withJournal(newFakeJournal()), waitsFor())
	rec := h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(aliceToken)...))
	require.Equalf(t, http.StatusCreated, rec.Code, "%s", rec.Body)
	created := decodeEntry(t, rec.Body.Bytes())
	assert.EqualValues(t, 1, created.Version)
	assert.Equal(t, `"1"`, rec.Header().Get("ETag"))
	assert.Equal(t, "/v1/journal/entries/"+created.Id.String(), rec.Header().Get("Location"))
	tok := rec.Header().Get("X-Consistency-Token")
	assert.NotEmpty(t, tok)
	require.Len(t, created.Tags, 2)
	assert.Equal(t, 1.0, created.Tags[1].Amount, "a tag without an amount happened once")
	require.NotNil(t, created.Note)
	assert.Equal(t, "Two glasses of Rioja", *created.Note)

	rec = h.do(req(http.MethodGet, "/v1/journal/entries/"+created.Id.String(), nil, headers(aliceToken, "X-Consistency-Token", tok)...))
	require.Equalf(t, http.StatusOK, rec.Code, "%s", rec.Body)
	assert.Equal(t, `"1"`, rec.Header().Get("ETag"))
	got := decodeEntry(t, rec.Body.Bytes())
	assert.Equal(t, created.Tags, got.Tags)
	assert.Equal(t, "2026-11-19", got.Date)

	rec = h.do(req(http.MethodGet, "/v1/journal/entries/"+created.Id.String(), nil, headers(bobToken)...))
	problemOf(t, rec, http.StatusNotFound, "not-found")
}

// waitsFor lets the harness's consistency waits succeed at once.
func waitsFor() option {
	return func(_ *Config, d *Deps) {
		if q, ok := d.Queries.Reader.(*fakeQueries); ok {
			q.waitFor = func(context.Context, eventstore.Token, ...string) error { return nil }
		}
	}
}

func TestASecondEntryForTheSameDayIsAConflictNamingTheFirst(t *testing.T) {
	f := newFakeJournal()
	h := newHarness(t, withJournal(f))
	rec := h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(aliceToken)...))
	require.Equal(t, http.StatusCreated, rec.Code)
	first := decodeEntry(t, rec.Body.Bytes())

	rec = h.do(req(http.MethodPost, "/v1/journal/entries", `{"date":"2026-11-19","tags":[{"name":"nap","amount":20}]}`, headers(aliceToken)...))
	p := problemOf(t, rec, http.StatusConflict, "conflict")
	assert.Equal(t, first.Id.String(), p.ExistingID)
	assert.Contains(t, p.Detail, first.Id.String())
	hasField(t, p, "/date")
	assert.Equal(t, "/v1/journal/entries/"+first.Id.String(), rec.Header().Get("Location"))
	assert.Equal(t, 1, f.writes, "nothing written for the refused entry")

	rec = h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(bobToken)...))
	assert.Equal(t, http.StatusCreated, rec.Code, "another user's day is another day")
}

func TestChangingAnEntryNeedsTheCurrentIfMatch(t *testing.T) {
	h := newHarness(t, withJournal(newFakeJournal()))
	rec := h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(aliceToken)...))
	require.Equal(t, http.StatusCreated, rec.Code)
	path := "/v1/journal/entries/" + decodeEntry(t, rec.Body.Bytes()).Id.String()
	calmer := `{"date":"2026-11-19","tags":[{"name":"meditation","amount":15}],"stress":3}`

	rec = h.do(req(http.MethodPut, path, calmer, headers(aliceToken)...))
	p := problemOf(t, rec, http.StatusPreconditionRequired, "precondition-required")
	hasField(t, p, "If-Match")
	rec = h.do(req(http.MethodPut, path, calmer, headers(aliceToken, ifMatchHeader("*")...)...))
	problemOf(t, rec, http.StatusPreconditionRequired, "precondition-required")
	rec = h.do(req(http.MethodPut, path, calmer, headers(aliceToken, ifMatchHeader(`W/"1"`)...)...))
	problemOf(t, rec, http.StatusBadRequest, "malformed-request")

	rec = h.do(req(http.MethodPut, path, calmer, headers(aliceToken, ifMatchHeader(`"1"`)...)...))
	require.Equalf(t, http.StatusOK, rec.Code, "%s", rec.Body)
	assert.Equal(t, `"2"`, rec.Header().Get("ETag"))
	replaced := decodeEntry(t, rec.Body.Bytes())
	assert.EqualValues(t, 2, replaced.Version)
	assert.Nil(t, replaced.Note, "the whole entry: the note not sent is gone")
	assert.Nil(t, replaced.Mood)

	rec = h.do(req(http.MethodPut, path, wineEntry, headers(aliceToken, ifMatchHeader(`"1"`)...)...))
	p = problemOf(t, rec, http.StatusConflict, "conflict")
	hasField(t, p, "If-Match")
	assert.Contains(t, p.Detail, "current version 2")

	rec = h.do(req(http.MethodPut, path, `{"date":"2026-11-19","version":1}`, headers(aliceToken, ifMatchHeader(`"2"`)...)...))
	p = problemOf(t, rec, http.StatusUnprocessableEntity, "validation")
	hasField(t, p, "/version")

	rec = h.do(req(http.MethodPut, path, calmer, headers(bobToken, ifMatchHeader(`"2"`)...)...))
	problemOf(t, rec, http.StatusNotFound, "not-found")
}

func TestMovingAnEntryToATakenDayIsAConflictNamingTheOther(t *testing.T) {
	h := newHarness(t, withJournal(newFakeJournal()))
	rec := h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(aliceToken)...))
	require.Equal(t, http.StatusCreated, rec.Code)
	monday := decodeEntry(t, rec.Body.Bytes())
	rec = h.do(req(http.MethodPost, "/v1/journal/entries", `{"date":"2026-11-18"}`, headers(aliceToken)...))
	require.Equal(t, http.StatusCreated, rec.Code)
	sunday := decodeEntry(t, rec.Body.Bytes())

	rec = h.do(req(http.MethodPut, "/v1/journal/entries/"+sunday.Id.String(), `{"date":"2026-11-19"}`, headers(aliceToken, ifMatchHeader(`"1"`)...)...))
	p := problemOf(t, rec, http.StatusConflict, "conflict")
	assert.Equal(t, monday.Id.String(), p.ExistingID)
}

func TestDeletingAnEntryNeedsIfMatchAndFreesItsDay(t *testing.T) {
	h := newHarness(t, withJournal(newFakeJournal()))
	rec := h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(aliceToken)...))
	require.Equal(t, http.StatusCreated, rec.Code)
	path := "/v1/journal/entries/" + decodeEntry(t, rec.Body.Bytes()).Id.String()

	rec = h.do(req(http.MethodDelete, path, nil, headers(aliceToken)...))
	problemOf(t, rec, http.StatusPreconditionRequired, "precondition-required")
	rec = h.do(req(http.MethodDelete, path, nil, headers(aliceToken, ifMatchHeader(`"7"`)...)...))
	problemOf(t, rec, http.StatusConflict, "conflict")
	rec = h.do(req(http.MethodDelete, path, nil, headers(bobToken, ifMatchHeader(`"1"`)...)...))
	problemOf(t, rec, http.StatusNotFound, "not-found")

	rec = h.do(req(http.MethodDelete, path, nil, headers(aliceToken, ifMatchHeader(`"1"`)...)...))
	require.Equalf(t, http.StatusNoContent, rec.Code, "%s", rec.Body)
	assert.NotEmpty(t, rec.Header().Get("X-Consistency-Token"))
	rec = h.do(req(http.MethodDelete, path, nil, headers(aliceToken, ifMatchHeader(`"2"`)...)...))
	problemOf(t, rec, http.StatusNotFound, "not-found")
	rec = h.do(req(http.MethodGet, path, nil, headers(aliceToken)...))
	problemOf(t, rec, http.StatusNotFound, "not-found")
	rec = h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(aliceToken)...))
	assert.Equal(t, http.StatusCreated, rec.Code, "the day is free again")
}

// Every broken rule is one 422 naming its field, and nothing is written.
func TestAnInvalidEntryNamesEveryBrokenField(t *testing.T) {
	f := newFakeJournal()
	h := newHarness(t, withJournal(f))
	cases := []struct {
		name, body string
		fields     []string
	}{
		{"camelCase tag", `{"date":"2026-11-19","tags":[{"name":"alcoholDrinks"}]}`, []string{"/tags/0/name"}},
		{"negative amount", `{"date":"2026-11-19","tags":[{"name":"nap","amount":20},{"name":"sauna","amount":-1}]}`, []string{"/tags/1/amount"}},
		{"the same tag twice", `{"date":"2026-11-19","tags":[{"name":"nap"},{"name":"nap"}]}`, []string{"/tags/1/name"}},
		{"ratings out of range", `{"date":"2026-11-19","mood":0,"energy":11,"stress":-2}`, []string{"/mood", "/energy", "/stress"}},
		{"not a day", `{"date":"19.11.2026"}`, []string{"/date"}},
		{"a day that has not begun anywhere", `{"date":"2026-11-25"}`, []string{"/date"}},
		{"a note too long", `{"date":"2026-11-19","note":"` + strings.Repeat("x", djournal.MaxNoteLength+1) + `"}`, []string{"/note"}},
		{"too many tags", `{"date":"2026-11-19","tags":[` + manyTags(djournal.MaxTags+1) + `]}`, []string{"/tags"}},
		{"a version on a creation", `{"date":"2026-11-19","version":1}`, []string{"/version"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.do(req(http.MethodPost, "/v1/journal/entries", tc.body, headers(aliceToken)...))
			p := problemOf(t, rec, http.StatusUnprocessableEntity, "validation")
			for _, field := range tc.fields {
				hasField(t, p, field)
			}
		})
	}
	assert.Zero(t, f.writes)
}

func manyTags(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf(`{"name":"tag_%d"}`, i)
	}
	return strings.Join(tags, ",")
}

// A list comes in pages by (local day, id), each with next and Link, and
// together they hold every entry of the range once.
func TestFollowingNextListsEveryJournalEntryOnce(t *testing.T) {
	h := newHarness(t, withJournal(newFakeJournal()))
	var want []string
	for i := range 7 {
		date := fmt.Sprintf("2026-11-%02d", 10+i)
		rec := h.do(req(http.MethodPost, "/v1/journal/entries", `{"date":"`+date+`"}`, headers(aliceToken)...))
		require.Equal(t, http.StatusCreated, rec.Code)
		want = append(want, date)
	}
	rec := h.do(req(http.MethodPost, "/v1/journal/entries", `{"date":"2026-10-01"}`, headers(aliceToken)...))
	require.Equal(t, http.StatusCreated, rec.Code)

	var got []string
	next := "/v1/journal/entries?from=2026-11-01&to=2026-11-30&limit=3"
	for pages := 1; ; pages++ {
		rec := h.do(req(http.MethodGet, next, nil, headers(aliceToken)...))
		require.Equalf(t, http.StatusOK, rec.Code, "%s", rec.Body)
		var page gen.JournalEntryList
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		for _, e := range page.Entries {
			got = append(got, e.Date)
		}
		if page.Next == nil {
			assert.Empty(t, rec.Header().Get("Link"))
			assert.Equal(t, 3, pages)
			break
		}
		assert.Equal(t, "<"+*page.Next+`>; rel="next"`, rec.Header().Get("Link"))
		next = *page.Next
	}
	assert.Equal(t, want, got)

	// The default range is the 30 days up to tomorrow (UTC).
	rec = h.do(req(http.MethodGet, "/v1/journal/entries", nil, headers(aliceToken)...))
	require.Equal(t, http.StatusOK, rec.Code)
	var page gen.JournalEntryList
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	assert.Len(t, page.Entries, 7, "2026-10-01 is before the default range")

	// Timestamps, as the other lists take them, stand for the days they name.
	rec = h.do(req(http.MethodGet, "/v1/journal/entries?from=2026-11-12T23:30:00-05:00&to=2026-11-14T08:00:00%2B09:00", nil, headers(aliceToken)...))
	require.Equalf(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	require.Len(t, page.Entries, 3)
	assert.Equal(t, "2026-11-12", page.Entries[0].Date)
	rec = h.do(req(http.MethodGet, "/v1/journal/entries?from=yesterday", nil, headers(aliceToken)...))
	hasField(t, problemOf(t, rec, http.StatusUnprocessableEntity, "validation"), "/from")

	rec = h.do(req(http.MethodGet, "/v1/journal/entries?from=2026-11-01&to=2026-11-30&cursor=garbage", nil, headers(aliceToken)...))
	p := problemOf(t, rec, http.StatusBadRequest, "malformed-request")
	hasField(t, p, "/cursor")
	rec = h.do(req(http.MethodGet, "/v1/journal/entries?from=2026-11-30&to=2026-11-01", nil, headers(aliceToken)...))
	hasField(t, problemOf(t, rec, http.StatusUnprocessableEntity, "validation"), "/from")
	rec = h.do(req(http.MethodGet, "/v1/journal/entries?from=2024-01-01&to=2026-11-01", nil, headers(aliceToken)...))
	hasField(t, problemOf(t, rec, http.StatusUnprocessableEntity, "validation"), "/to")
}

// A cursor of one caller's list is not another caller's (nor another
// range's).
func TestAJournalCursorContinuesOnlyItsOwnQuery(t *testing.T) {
	h := newHarness(t, withJournal(newFakeJournal()))
	for _, date := range []string{"2026-11-10", "2026-11-11"} {
		require.Equal(t, http.StatusCreated, h.do(req(http.MethodPost, "/v1/journal/entries", `{"date":"`+date+`"}`, headers(aliceToken)...)).Code)
	}
	rec := h.do(req(http.MethodGet, "/v1/journal/entries?from=2026-11-01&to=2026-11-30&limit=1", nil, headers(aliceToken)...))
	var page gen.JournalEntryList
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	require.NotNil(t, page.Next)
	rec = h.do(req(http.MethodGet, *page.Next, nil, headers(bobToken)...))
	hasField(t, problemOf(t, rec, http.StatusUnprocessableEntity, "validation"), "/cursor")
	rec = h.do(req(http.MethodGet, strings.Replace(*page.Next, "to=2026-11-30", "to=2026-11-29", 1), nil, headers(aliceToken)...))
	hasField(t, problemOf(t, rec, http.StatusUnprocessableEntity, "validation"), "/cursor")
}

func TestJournalTagsListCountsAndTheCatalog(t *testing.T) {
	h := newHarness(t, withJournal(newFakeJournal()))
	for _, body := range []string{wineEntry, `{"date":"2026-11-18","tags":[{"name":"alcohol_drinks","amount":1}]}`} {
		require.Equal(t, http.StatusCreated, h.do(req(http.MethodPost, "/v1/journal/entries", body, headers(aliceToken)...)).Code)
	}
	rec := h.do(req(http.MethodGet, "/v1/journal/tags", nil, headers(aliceToken)...))
	require.Equalf(t, http.StatusOK, rec.Code, "%s", rec.Body)
	var tags gen.JournalTags
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &tags))
	require.Len(t, tags.Tags, 2)
	assert.Equal(t, "alcohol_drinks", tags.Tags[0].Name)
	assert.EqualValues(t, 2, tags.Tags[0].Count)
	assert.Equal(t, "2026-11-19", tags.Tags[0].LastUsed)
	assert.Equal(t, 3.0, tags.Tags[0].TotalAmount)
	require.Len(t, tags.Catalog, len(djournal.Catalog))
	assert.Equal(t, "alcohol_drinks", tags.Catalog[0].Name)
	require.NotNil(t, tags.Catalog[0].Unit)
	assert.Equal(t, "drinks", *tags.Catalog[0].Unit)

	rec = h.do(req(http.MethodGet, "/v1/journal/tags", nil, headers(bobToken)...))
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &tags))
	assert.Empty(t, tags.Tags, "bob has written nothing")
}

func TestJournalRoutesWithoutABackendAnswer503(t *testing.T) {
	h := newHarness(t)
	rec := h.do(req(http.MethodPost, "/v1/journal/entries", wineEntry, headers(aliceToken)...))
	problemOf(t, rec, http.StatusServiceUnavailable, "unavailable")
	rec = h.do(req(http.MethodGet, "/v1/journal/tags", nil, headers(aliceToken)...))
	problemOf(t, rec, http.StatusServiceUnavailable, "unavailable")
}
