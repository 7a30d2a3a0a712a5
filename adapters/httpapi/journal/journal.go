package journal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	djournal "github.com/biosync/biosync/domain/journal"
	journalrm "github.com/biosync/biosync/projections/journal"
)

// Deps are the ports of the journal routes; while Commands or Queries is
// nil they answer 503.
type Deps struct {
	// Commands writes entries.
	Commands Commands
	// Queries reads them.
	Queries Queries
	// CursorKey signs page cursors (the queries' key: at least 32 bytes,
	// the same on every instance).
	CursorKey []byte
	// Now is the clock of the default list range; nil means time.Now.
	Now func() time.Time
}

// Commands changes the caller's journal. It is a port so the day and
// version claims (row locks around the append) stay on the command side.
//
// Every method returns a *domain.ValidationError (422) for an entry that
// breaks a rule, a *commands.DayTaken (409) when the day has another
// entry, a *commands.StaleVersion (409) when IfMatch is not the current
// version, domain.ErrNotFound (404) for an entry the caller does not have
// and domain.ErrUnavailable (503, nothing changed) while the log or the
// database is down.
type Commands interface {
	// Write creates the entry of a day.
	Write(ctx context.Context, cmd commands.WriteJournalEntry) (commands.JournalEntrySaved, error)
	// Replace replaces an entry as a whole.
	Replace(ctx context.Context, cmd commands.ReplaceJournalEntry) (commands.JournalEntrySaved, error)
	// Delete deletes an entry.
	Delete(ctx context.Context, cmd commands.DeleteJournalEntry) (commands.JournalEntrySaved, error)
}

// Queries reads the journal read model. It is a port so the HTTP layer
// does not know where entries are stored.
type Queries interface {
	// Entry returns one entry; domain.ErrNotFound when the caller has none
	// with that id.
	Entry(ctx context.Context, userID, entryID uuid.UUID) (journalrm.EntryView, error)
	// Entries returns one page of entries.
	Entries(ctx context.Context, q journalrm.EntryQuery) (journalrm.EntryPage, error)
	// Tags returns the caller's tags with counts.
	Tags(ctx context.Context, userID uuid.UUID) ([]journalrm.TagUse, error)
}

// ReadModelJournal serves the journal (the read model a consistency token
// is awaited on).
const ReadModelJournal = "journal"

// DefaultPage is the page size of GET /v1/journal/entries when the
// request names none (the spec's default; the maximum is
// journalrm.MaxPage).
const DefaultPage = 100

// defaultRangeDays is how many days before `to` a list starts when the
// request names no `from`.
const defaultRangeDays = 30

// kindEntries names the cursor of GET /v1/journal/entries.
const kindEntries edge.CursorKind = 'j'

// ifMatchHint says where an entry's ETag comes from.
const ifMatchHint = "GET the entry first"

// Handlers serves the journal routes; the assembled server embeds it.
type Handlers struct {
	deps        Deps
	consistency *edge.Consistency
	cursors     edge.Cursors
}

// New returns the journal handlers over deps; consistency is the edge's
// read-your-writes wait.
func New(deps Deps, consistency *edge.Consistency) *Handlers {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Handlers{deps: deps, consistency: consistency, cursors: edge.Cursors{Key: deps.CursorKey}}
}

func (h *Handlers) ports() (Commands, Queries, error) {
	if h.deps.Commands == nil || h.deps.Queries == nil {
		return nil, nil, fmt.Errorf("httpapi: no journal backend configured: %w", domain.ErrUnavailable)
	}
	return h.deps.Commands, h.deps.Queries, nil
}

// location is the path of an entry.
func location(id string) string { return "/v1/journal/entries/" + id }

// CreateJournalEntry writes the entry of one local day (POST
// /v1/journal/entries).
func (h *Handlers) CreateJournalEntry(c echo.Context, _ gen.CreateJournalEntryParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	cmds, _, err := h.ports()
	if err != nil {
		return err
	}
	var in gen.JournalEntryInput
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	if in.Version != nil {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/version", Detail: "is only for PUT (a new entry starts at version 1)"}}}
	}
	saved, err := cmds.Write(c.Request().Context(), commands.WriteJournalEntry{UserID: uid, Entry: entryIn(in)})
	if err != nil {
		return dayTaken(err)
	}
	created := saved.At
	return h.answer(c, http.StatusCreated, saved, &created)
}

// ReplaceJournalEntry replaces an entry as a whole (PUT
// /v1/journal/entries/{id}).
func (h *Handlers) ReplaceJournalEntry(c echo.Context, id uuid.UUID, params gen.ReplaceJournalEntryParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	cmds, _, err := h.ports()
	if err != nil {
		return err
	}
	version, err := edge.IfMatch(params.IfMatch, ifMatchHint)
	if err != nil {
		return err
	}
	var in gen.JournalEntryInput
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	if err := edge.BodyVersion(in.Version, version); err != nil {
		return err
	}
	saved, err := cmds.Replace(c.Request().Context(), commands.ReplaceJournalEntry{UserID: uid, EntryID: id, IfMatch: version, Entry: entryIn(in)})
	if err != nil {
		return dayTaken(edge.Stale(err))
	}
	return h.answer(c, http.StatusOK, saved, nil)
}

// DeleteJournalEntry deletes an entry (DELETE /v1/journal/entries/{id}).
func (h *Handlers) DeleteJournalEntry(c echo.Context, id uuid.UUID, params gen.DeleteJournalEntryParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	cmds, _, err := h.ports()
	if err != nil {
		return err
	}
	version, err := edge.IfMatch(params.IfMatch, ifMatchHint)
	if err != nil {
		return err
	}
	saved, err := cmds.Delete(c.Request().Context(), commands.DeleteJournalEntry{UserID: uid, EntryID: id, IfMatch: version})
	if err != nil {
		return edge.Stale(err)
	}
	edge.SetToken(c, saved.Token)
	return c.NoContent(http.StatusNoContent)
}

// answer is the 201/200 of a write: the entry as stored, its ETag, its
// Location and the consistency token. created is known only for a new
// entry (a replacement's first write is the read model's to tell).
func (h *Handlers) answer(c echo.Context, status int, saved commands.JournalEntrySaved, created *time.Time) error {
	edge.SetToken(c, saved.Token)
	edge.SetETag(c.Response(), saved.Version)
	c.Response().Header().Set(echo.HeaderLocation, location(saved.ID))
	out := entryOut(journalrm.EntryView{ID: uuid.MustParse(saved.ID), Entry: saved.Entry, Version: saved.Version, UpdatedAt: saved.At.UTC()})
	if created == nil {
		out.CreatedAt = nil
	} else {
		at := created.UTC()
		out.CreatedAt = &at
	}
	return c.JSON(status, out)
}

// dayTaken turns a *commands.DayTaken into the 409 naming the entry that
// holds the day (existing_id, Location).
func dayTaken(err error) error {
	var dt *commands.DayTaken
	if !errors.As(err, &dt) {
		return err
	}
	out := &edge.Error{Kind: edge.KindConflict,
		Detail: fmt.Sprintf("%s already has a journal entry (%s); change it with PUT %s", dt.Date, dt.Existing, location(dt.Existing.String())),
		Fields: []domain.FieldProblem{{Field: "/date", Detail: fmt.Sprintf("already has journal entry %s", dt.Existing)}},
		Cause:  err}
	if dt.Existing != uuid.Nil {
		out.ExistingID = dt.Existing.String()
		out.Header = http.Header{echo.HeaderLocation: {location(dt.Existing.String())}}
	}
	return out
}

// GetJournalEntry returns one entry (GET /v1/journal/entries/{id}).
func (h *Handlers) GetJournalEntry(c echo.Context, id uuid.UUID, params gen.GetJournalEntryParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	_, q, err := h.ports()
	if err != nil {
		return err
	}
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelJournal); err != nil {
		return err
	}
	e, err := q.Entry(c.Request().Context(), uid, id)
	if err != nil {
		return edge.Reword(err, domain.ErrNotFound, edge.KindNotFound, edge.Wording{Detail: "you have no journal entry with this id"})
	}
	if done, err := edge.NotModified(c, e.Version); done {
		return err
	}
	edge.SetETag(c.Response(), e.Version)
	return c.JSON(http.StatusOK, entryOut(e))
}

// ListJournalEntries returns one page of the caller's entries (GET
// /v1/journal/entries).
func (h *Handlers) ListJournalEntries(c echo.Context, params gen.ListJournalEntriesParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	_, q, err := h.ports()
	if err != nil {
		return err
	}
	v := &domain.ValidationError{}
	today := h.deps.Now().UTC()
	to := localDay(v, "/to", params.To, time.Date(today.Year(), today.Month(), today.Day()+1, 0, 0, 0, 0, time.UTC))
	from := localDay(v, "/from", params.From, to.AddDate(0, 0, -defaultRangeDays))
	switch {
	case len(v.Problems) > 0:
	case from.After(to):
		v.Add("/from", "must not be after to")
	case to.Sub(from) >= journalrm.MaxRangeDays*24*time.Hour:
		v.Add("/to", "must be less than %d days after from", journalrm.MaxRangeDays)
	}
	if params.Limit != nil && (*params.Limit < 1 || *params.Limit > journalrm.MaxPage) {
		v.Add("/limit", "must be from 1 to %d", journalrm.MaxPage)
	}
	if err := v.Err(); err != nil {
		return err
	}
	query := journalrm.EntryQuery{UserID: uid, From: from.Format(djournal.DateLayout), To: to.Format(djournal.DateLayout), Limit: DefaultPage}
	if params.Limit != nil {
		query.Limit = *params.Limit
	}
	scope := edge.QueryScope(kindEntries, uid, "", from, to)
	if params.Cursor != nil {
		pos, err := h.cursors.Decode(*params.Cursor, kindEntries, scope)
		if err != nil {
			return err
		}
		id, err := uuid.Parse(pos.Source)
		if err != nil {
			return &domain.MalformedError{Field: "/cursor", Detail: "not a page cursor of this list"}
		}
		query.After = &journalrm.EntryKey{Date: pos.A.Format(djournal.DateLayout), ID: id}
	}
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelJournal); err != nil {
		return err
	}
	page, err := q.Entries(c.Request().Context(), query)
	if err != nil {
		return err
	}
	out := gen.JournalEntryList{Entries: make([]gen.JournalEntry, 0, len(page.Entries))}
	for _, e := range page.Entries {
		out.Entries = append(out.Entries, entryOut(e))
	}
	if n := page.Next; n != nil {
		day, err := time.Parse(djournal.DateLayout, n.Date)
		if err != nil {
			return err
		}
		out.Next = edge.NextPage(c, map[string]string{"from": query.From, "to": query.To},
			h.cursors.Encode(kindEntries, scope, edge.Position{A: day, Source: n.ID.String()}))
	}
	return c.JSON(http.StatusOK, out)
}

// ListJournalTags returns the caller's tags and the suggested catalog
// (GET /v1/journal/tags).
func (h *Handlers) ListJournalTags(c echo.Context, params gen.ListJournalTagsParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	_, q, err := h.ports()
	if err != nil {
		return err
	}
	if _, err := h.consistency.Await(c, params.XConsistencyToken, ReadModelJournal); err != nil {
		return err
	}
	uses, err := q.Tags(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	var out gen.JournalTags
	out.Tags = make([]struct {
		Count       int64   `json:"count"`
		LastUsed    string  `json:"last_used"`
		Name        string  `json:"name"`
		TotalAmount float64 `json:"total_amount"`
	}, len(uses))
	for i, u := range uses {
		out.Tags[i].Name, out.Tags[i].Count, out.Tags[i].LastUsed, out.Tags[i].TotalAmount = u.Name, u.Count, u.LastUsed, u.TotalAmount
	}
	out.Catalog = make([]struct {
		DisplayName string  `json:"display_name"`
		Name        string  `json:"name"`
		Unit        *string `json:"unit,omitempty"`
	}, len(djournal.Catalog))
	for i, s := range djournal.Catalog {
		out.Catalog[i].Name, out.Catalog[i].DisplayName = s.Name, s.DisplayName
		if s.Unit != "" {
			out.Catalog[i].Unit = &s.Unit
		}
	}
	return c.JSON(http.StatusOK, out)
}

// localDay reads a day of a list's range: "YYYY-MM-DD", or an RFC 3339
// timestamp standing for the day it names in its own offset (what a
// client of the other lists sends); def when absent. The day is returned
// as its UTC midnight. A value that is neither is recorded in v.
func localDay(v *domain.ValidationError, field string, raw *string, def time.Time) time.Time {
	if raw == nil {
		return def
	}
	if d, err := time.Parse(djournal.DateLayout, *raw); err == nil {
		return d
	}
	if t, err := time.Parse(time.RFC3339Nano, *raw); err == nil {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	v.Add(field, "must be a local day YYYY-MM-DD")
	return def
}

// entryIn is the domain entry of a request body: tags without an amount
// happened once.
func entryIn(in gen.JournalEntryInput) djournal.Entry {
	e := djournal.Entry{Date: in.Date, Mood: in.Mood, Energy: in.Energy, Stress: in.Stress, Note: edge.Deref(in.Note), Tags: []djournal.Tag{}}
	if in.Tags != nil {
		for _, t := range *in.Tags {
			amount := djournal.DefaultAmount
			if t.Amount != nil {
				amount = *t.Amount
			}
			e.Tags = append(e.Tags, djournal.Tag{Name: t.Name, Amount: amount})
		}
	}
	return e
}

func entryOut(e journalrm.EntryView) gen.JournalEntry {
	created, updated := e.CreatedAt, e.UpdatedAt
	out := gen.JournalEntry{Id: e.ID, Date: e.Date, Mood: e.Mood, Energy: e.Energy, Stress: e.Stress, Version: e.Version,
		CreatedAt: &created, UpdatedAt: &updated}
	if e.Note != "" {
		note := e.Note
		out.Note = &note
	}
	out.Tags = make([]struct {
		Amount float64 `json:"amount"`
		Name   string  `json:"name"`
	}, len(e.Tags))
	for i, t := range e.Tags {
		out.Tags[i].Name, out.Tags[i].Amount = t.Name, t.Amount
	}
	return out
}
