package journal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/journal"
	"github.com/biosync/biosync/domain"
	djournal "github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/eventstore/memstore"
)

// days fakes journal.Days with one claim per entry, decided like the
// PostgreSQL adapter decides them.
type days struct {
	mu     sync.Mutex
	claims map[uuid.UUID]claim
}

type claim struct {
	user    uuid.UUID
	date    string
	version int64
	deleted bool
}

func newDays() *days { return &days{claims: map[uuid.UUID]claim{}} }

func (d *days) holder(user uuid.UUID, date string, except uuid.UUID) (uuid.UUID, bool) {
	for id, c := range d.claims {
		if c.user == user && c.date == date && !c.deleted && id != except {
			return id, true
		}
	}
	return uuid.Nil, false
}

func (d *days) Create(ctx context.Context, user uuid.UUID, date string, entry uuid.UUID, write func(context.Context) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.holder(user, date, uuid.Nil); ok {
		return &commands.DayTaken{Date: date, Existing: id}
	}
	if err := write(ctx); err != nil {
		return err
	}
	d.claims[entry] = claim{user: user, date: date, version: 1}
	return nil
}

func (d *days) lock(user, entry uuid.UUID, expected int64) (claim, error) {
	c, ok := d.claims[entry]
	if !ok || c.user != user || c.deleted {
		return c, domain.ErrNotFound
	}
	if c.version != expected {
		return c, &commands.StaleVersion{Document: "journal_entry", Current: c.version}
	}
	return c, nil
}

func (d *days) Change(ctx context.Context, user, entry uuid.UUID, expected int64, date string, write func(context.Context, int64) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := d.lock(user, entry, expected)
	if err != nil {
		return err
	}
	if id, ok := d.holder(user, date, entry); ok {
		return &commands.DayTaken{Date: date, Existing: id}
	}
	if err := write(ctx, c.version+1); err != nil {
		return err
	}
	c.date, c.version = date, c.version+1
	d.claims[entry] = c
	return nil
}

func (d *days) Delete(ctx context.Context, user, entry uuid.UUID, expected int64, write func(context.Context, int64, string) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := d.lock(user, entry, expected)
	if err != nil {
		return err
	}
	if err := write(ctx, c.version+1, c.date); err != nil {
		return err
	}
	c.version, c.deleted = c.version+1, true
	d.claims[entry] = c
	return nil
}

var today = time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)

// onMemstore is the journal over the unit layer's in-memory event store
// (sealed with real per-user keys) and the fake claims.
func onMemstore(t *testing.T) (*journal.Service, *memstore.Store, *days) {
	t.Helper()
	codec, err := memstore.NewCodec()
	require.NoError(t, err)
	log := memstore.New(codec, 4)
	d := newDays()
	s, err := journal.New(journal.Deps{Log: log, Days: d, Now: func() time.Time { return today }})
	require.NoError(t, err)
	return s, log, d
}

func readBack(t *testing.T, log *memstore.Store, tok eventstore.Token) eventstore.Stored {
	t.Helper()
	require.Len(t, tok, 1, "one command, one record")
	recs, err := log.Fetch(context.Background(), tok[0].Partition, []int64{tok[0].Offset})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	st, err := log.Codec().Decode(context.Background(), recs[0])
	require.NoError(t, err)
	return st
}

func wine(date string, drinks float64) djournal.Entry {
	return djournal.Entry{Date: date, Tags: []djournal.Tag{{Name: "alcohol_drinks", Amount: drinks}}, Note: "Two glasses of red with dinner"}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	_, err := journal.New(journal.Deps{Days: newDays()})
	assert.ErrorContains(t, err, "Log")
	_, err = journal.New(journal.Deps{Log: memstore.New(nil, 1)})
	assert.ErrorContains(t, err, "Days")
}

func TestWritingADayAppendsOneSealedEntryWrittenAtVersionOne(t *testing.T) {
	s, log, _ := onMemstore(t)
	ada := uuid.New()
	saved, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 2)})
	require.NoError(t, err)
	assert.Equal(t, int64(1), saved.Version)
	assert.NotEmpty(t, saved.ID)

	st := readBack(t, log, saved.Token)
	assert.Equal(t, djournal.EventEntryWritten, st.Type)
	assert.Equal(t, ada, st.UserID)
	assert.NotEmpty(t, st.KeyID, "the payload (note and tag names) is sealed with the user's data key")
	var body djournal.EntryWritten
	require.NoError(t, json.Unmarshal(st.Payload, &body))
	assert.Equal(t, saved.EntryWritten, body)
	assert.Equal(t, "Two glasses of red with dinner", body.Note)
}

func TestASecondEntryForTheSameDayIsAConflictNamingTheFirstAndAppendsNothing(t *testing.T) {
	s, log, _ := onMemstore(t)
	ada, bob := uuid.New(), uuid.New()
	first, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 2)})
	require.NoError(t, err)

	_, err = s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: djournal.Entry{Date: "2026-12-07"}})
	require.ErrorIs(t, err, domain.ErrConflict)
	var taken *commands.DayTaken
	require.ErrorAs(t, err, &taken)
	assert.Equal(t, first.ID, taken.Existing.String())

	_, err = s.Write(context.Background(), commands.WriteJournalEntry{UserID: bob, Entry: wine("2026-12-07", 1)})
	require.NoError(t, err, "days are per user")
	hw, err := log.HighWater(context.Background(), first.Token[0].Partition)
	require.NoError(t, err)
	assert.LessOrEqual(t, hw, int64(2), "the refused entry appended nothing")
}

func TestAnInvalidEntryIsRefusedWithEveryFieldAndAppendsNothing(t *testing.T) {
	s, _, d := onMemstore(t)
	bad := djournal.Entry{Date: "2026-12-07", Tags: []djournal.Tag{{Name: "Alcohol", Amount: 1}, {Name: "nap", Amount: -5}}}
	_, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: uuid.New(), Entry: bad})
	var v *domain.ValidationError
	require.ErrorAs(t, err, &v)
	var got []string
	for _, p := range v.Problems {
		got = append(got, p.Field)
	}
	assert.Equal(t, []string{"/tags/0/name", "/tags/1/amount"}, got)
	assert.Empty(t, d.claims)
}

func TestAFailedAppendLeavesTheDayFree(t *testing.T) {
	s, log, d := onMemstore(t)
	ada := uuid.New()
	log.Inject(memstore.Faults{Append: func(context.Context, eventstore.Event) error {
		return fmt.Errorf("broker down: %w: %w", domain.ErrUnavailable, eventstore.ErrNotAppended)
	}})
	_, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 2)})
	require.ErrorIs(t, err, domain.ErrUnavailable)
	assert.Empty(t, d.claims)

	log.Inject(memstore.Faults{})
	_, err = s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 2)})
	require.NoError(t, err, "the retry finds the day free")
}

func TestReplacingWithTheCurrentVersionAppendsTheWholeEntryWithTheNextVersion(t *testing.T) {
	s, log, _ := onMemstore(t)
	ada := uuid.New()
	first, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 2)})
	require.NoError(t, err)
	id := uuid.MustParse(first.ID)

	mood := 4
	saved, err := s.Replace(context.Background(), commands.ReplaceJournalEntry{UserID: ada, EntryID: id, IfMatch: 1,
		Entry: djournal.Entry{Date: "2026-12-07", Mood: &mood}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), saved.Version)
	var body djournal.EntryWritten
	require.NoError(t, json.Unmarshal(readBack(t, log, saved.Token).Payload, &body))
	assert.Equal(t, djournal.EntryWritten{ID: first.ID, Entry: djournal.Entry{Date: "2026-12-07", Tags: []djournal.Tag{}, Mood: &mood}, Version: 2}, body,
		"the whole entry: tags and note not sent are gone")

	_, err = s.Replace(context.Background(), commands.ReplaceJournalEntry{UserID: ada, EntryID: id, IfMatch: 1, Entry: wine("2026-12-07", 3)})
	var stale *commands.StaleVersion
	require.ErrorAs(t, err, &stale)
	assert.Equal(t, int64(2), stale.Current)

	_, err = s.Replace(context.Background(), commands.ReplaceJournalEntry{UserID: uuid.New(), EntryID: id, IfMatch: 2, Entry: wine("2026-12-07", 3)})
	assert.ErrorIs(t, err, domain.ErrNotFound, "another user's entry does not exist for the caller")
}

func TestAnEntryMovesOnlyToAFreeDay(t *testing.T) {
	s, _, _ := onMemstore(t)
	ada := uuid.New()
	mon, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 2)})
	require.NoError(t, err)
	tue, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-08", 1)})
	require.NoError(t, err)

	_, err = s.Replace(context.Background(), commands.ReplaceJournalEntry{UserID: ada, EntryID: uuid.MustParse(tue.ID), IfMatch: 1, Entry: wine("2026-12-07", 1)})
	var taken *commands.DayTaken
	require.ErrorAs(t, err, &taken)
	assert.Equal(t, mon.ID, taken.Existing.String())

	moved, err := s.Replace(context.Background(), commands.ReplaceJournalEntry{UserID: ada, EntryID: uuid.MustParse(tue.ID), IfMatch: 1, Entry: wine("2026-12-06", 1)})
	require.NoError(t, err)
	assert.Equal(t, "2026-12-06", moved.Date)
	_, err = s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-08", 1)})
	require.NoError(t, err, "the day it left is free")
}

func TestDeletingFreesTheDayWithOneEntryDeleted(t *testing.T) {
	s, log, _ := onMemstore(t)
	ada := uuid.New()
	first, err := s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 2)})
	require.NoError(t, err)
	id := uuid.MustParse(first.ID)

	_, err = s.Delete(context.Background(), commands.DeleteJournalEntry{UserID: ada, EntryID: id, IfMatch: 0})
	require.ErrorIs(t, err, domain.ErrConflict, "a stale If-Match deletes nothing")

	gone, err := s.Delete(context.Background(), commands.DeleteJournalEntry{UserID: ada, EntryID: id, IfMatch: 1})
	require.NoError(t, err)
	st := readBack(t, log, gone.Token)
	assert.Equal(t, djournal.EventEntryDeleted, st.Type)
	var body djournal.EntryDeleted
	require.NoError(t, json.Unmarshal(st.Payload, &body))
	assert.Equal(t, djournal.EntryDeleted{ID: first.ID, Date: "2026-12-07", Version: 2}, body)

	_, err = s.Delete(context.Background(), commands.DeleteJournalEntry{UserID: ada, EntryID: id, IfMatch: 2})
	assert.ErrorIs(t, err, domain.ErrNotFound)
	_, err = s.Write(context.Background(), commands.WriteJournalEntry{UserID: ada, Entry: wine("2026-12-07", 0)})
	require.NoError(t, err, "the day is free again")
}
