package journal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/deploy/testbackend/projectiontest"
	"github.com/biosync/biosync/domain"
	djournal "github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/catalog"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/journal"
)

func TestMain(m *testing.M) { testbackend.Main(m) }

func write(t *testing.T, s *projectiontest.Stack, user, id uuid.UUID, e djournal.Entry, version int64) eventstore.Position {
	t.Helper()
	body, err := json.Marshal(djournal.EntryWritten{ID: id.String(), Entry: e, Version: version})
	require.NoError(t, err)
	return s.Append(t, eventstore.Event{Type: djournal.EventEntryWritten, UserID: user, Payload: body})
}

func remove(t *testing.T, s *projectiontest.Stack, user, id uuid.UUID, date string, version int64) {
	t.Helper()
	body, err := json.Marshal(djournal.EntryDeleted{ID: id.String(), Date: date, Version: version})
	require.NoError(t, err)
	s.Append(t, eventstore.Event{Type: djournal.EventEntryDeleted, UserID: user, Payload: body})
}

func runJournal(t *testing.T, s *projectiontest.Stack, gen, batch int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := journal.Projector{Gen: gen}
	rt := s.Runtime(p, batch)
	go func() { _ = rt.Run(ctx) }()
	s.WaitCaughtUp(t, p)
}

func rating(n int) *int { return &n }

var (
	wine  = djournal.Entry{Date: "2026-12-05", Tags: []djournal.Tag{{Name: "alcohol_drinks", Amount: 2}, {Name: "late_meal", Amount: 1}}, Mood: rating(6), Note: "Two glasses of Rioja at Clara's birthday"}
	calm  = djournal.Entry{Date: "2026-12-06", Tags: []djournal.Tag{{Name: "meditation", Amount: 20}}, Energy: rating(8), Stress: rating(2)}
	third = djournal.Entry{Date: "2026-12-07", Tags: []djournal.Tag{{Name: "alcohol_drinks", Amount: 1}}}
)

// Each entry is what its last event left; a deleted entry is gone from
// every read, its tags no longer count, and the note is stored sealed.
func TestEntriesAreTheirLastEventInLogOrder(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada, bob := uuid.New(), uuid.New()
	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	write(t, s, ada, a, djournal.Entry{Date: "2026-12-05", Tags: []djournal.Tag{{Name: "nap", Amount: 30}}}, 1)
	write(t, s, ada, a, wine, 2)
	write(t, s, ada, b, calm, 1)
	write(t, s, ada, c, third, 1)
	remove(t, s, ada, c, third.Date, 2)
	write(t, s, bob, d, third, 1)
	runJournal(t, s, 1, 500)
	r := &journal.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}

	got, err := r.Entry(ctx, ada, a)
	require.NoError(t, err)
	assert.Equal(t, wine, got.Entry, "the replaced entry, whole")
	assert.EqualValues(t, 2, got.Version)
	assert.False(t, got.UpdatedAt.Before(got.CreatedAt))

	_, err = r.Entry(ctx, ada, c)
	assert.ErrorIs(t, err, domain.ErrNotFound, "a deleted entry")
	_, err = r.Entry(ctx, bob, a)
	assert.ErrorIs(t, err, domain.ErrNotFound, "another user's entry")

	page, err := r.Entries(ctx, journal.EntryQuery{UserID: ada, From: "2026-12-01", To: "2026-12-31"})
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	assert.Equal(t, []string{"2026-12-05", "2026-12-06"}, []string{page.Entries[0].Date, page.Entries[1].Date})
	assert.Equal(t, []djournal.Tag{{Name: "meditation", Amount: 20}}, page.Entries[1].Tags)
	assert.Nil(t, page.Next)

	tags, err := r.Tags(ctx, ada)
	require.NoError(t, err)
	assert.Equal(t, []journal.TagUse{
		{Name: "alcohol_drinks", Count: 1, LastUsed: "2026-12-05", TotalAmount: 2},
		{Name: "late_meal", Count: 1, LastUsed: "2026-12-05", TotalAmount: 1},
		{Name: "meditation", Count: 1, LastUsed: "2026-12-06", TotalAmount: 20},
	}, tags, "the deleted entry's tag and the replaced nap are not counted")

	var sealed []byte
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT note_sealed FROM journal_entries_g1 WHERE entry_id = $1`, a).Scan(&sealed))
	assert.NotContains(t, string(sealed), "Rioja", "the note is in plain text")
	var note *[]byte
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT note_sealed FROM journal_entries_g1 WHERE entry_id = $1`, c).Scan(&note))
	assert.Nil(t, note, "a deleted entry keeps no note")

	// The command side learns what the log holds (appends whose handler
	// saw a timeout): claims with the last version, deleted when deleted.
	var version int64
	var deleted bool
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT version, deleted FROM journal_days WHERE entry_id = $1`, a).Scan(&version, &deleted))
	assert.EqualValues(t, 2, version)
	assert.False(t, deleted)
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT version, deleted FROM journal_days WHERE entry_id = $1`, c).Scan(&version, &deleted))
	assert.EqualValues(t, 2, version)
	assert.True(t, deleted)
}

// Pages follow (local day, id) and together hold every entry once.
func TestFollowingNextReturnsEveryEntryOnce(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada := uuid.New()
	var want []string
	for i := range 7 {
		date := fmt.Sprintf("2026-11-%02d", 10+i)
		write(t, s, ada, uuid.New(), djournal.Entry{Date: date, Tags: []djournal.Tag{}}, 1)
		want = append(want, date)
	}
	write(t, s, ada, uuid.New(), djournal.Entry{Date: "2026-10-01", Tags: []djournal.Tag{}}, 1) // outside the range
	runJournal(t, s, 1, 500)
	r := &journal.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}

	var got []string
	q := journal.EntryQuery{UserID: ada, From: "2026-11-01", To: "2026-11-30", Limit: 3}
	for pages := 1; ; pages++ {
		page, err := r.Entries(ctx, q)
		require.NoError(t, err)
		for _, e := range page.Entries {
			got = append(got, e.Date)
		}
		if page.Next == nil {
			assert.Equal(t, 3, pages)
			break
		}
		assert.Len(t, page.Entries, 3)
		q.After = page.Next
	}
	assert.Equal(t, want, got)
}

// A rebuild (a new generation projected from the log in other batches)
// holds the same rows, byte for byte: the sealed note's nonce derives
// from the value and the times from the events. It also restores the
// command-side claims when they were lost: days, versions, deletions.
func TestARebuildHoldsTheSameRows(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada := uuid.New()
	a, b := uuid.New(), uuid.New()
	write(t, s, ada, a, calm, 1)
	write(t, s, ada, a, wine, 2)
	write(t, s, ada, b, third, 1)
	remove(t, s, ada, b, third.Date, 2)
	write(t, s, ada, uuid.New(), third, 1)
	moved := uuid.New()
	write(t, s, ada, moved, djournal.Entry{Date: "2026-12-01", Tags: []djournal.Tag{}}, 1)
	write(t, s, ada, moved, djournal.Entry{Date: "2026-12-02", Tags: []djournal.Tag{}}, 2)
	runJournal(t, s, 1, 1)
	claims := func() []string {
		rows, err := s.Pool.Query(ctx, `SELECT format('%s %s %s %s', entry_id, local_date, version, deleted) FROM journal_days WHERE user_id = $1 ORDER BY entry_id`, ada)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	live := claims()
	require.Len(t, live, 4)
	// journal_days is lost: the rebuild restores it as well.
	_, err := s.Pool.Exec(ctx, `DELETE FROM journal_days`)
	require.NoError(t, err)
	_, err = s.Pool.Exec(ctx, `CREATE TABLE journal_entries_g2 (LIKE journal_entries_g1 INCLUDING ALL)`) // as a rebuild makes it
	require.NoError(t, err)
	runJournal(t, s, 2, 500)
	assert.Equal(t, live, claims(), "the claims a rebuild restores")

	dump := func(table string) []string {
		rows, err := s.Pool.Query(ctx, `SELECT t::text FROM `+table+` t ORDER BY entry_id`)
		require.NoError(t, err)
		var out []string
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			out = append(out, line)
		}
		require.NoError(t, rows.Err())
		return out
	}
	rows := dump("journal_entries_g1")
	assert.Len(t, rows, 4)
	assert.Equal(t, rows, dump("journal_entries_g2"))
}

// Once the key is destroyed an entry's note opens for nobody and the
// entry reads as gone, before any purge.
func TestAnErasedUsersEntriesAreGoneWhenTheKeyIs(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada := uuid.New()
	a := uuid.New()
	write(t, s, ada, a, wine, 1)
	runJournal(t, s, 1, 500)
	r := &journal.Reader{Pool: s.Pool, Fields: s.Codec.Keys()}
	_, err := r.Entry(ctx, ada, a)
	require.NoError(t, err)

	require.NoError(t, s.Codec.Keys().Destroy(ctx, ada))
	_, err = r.Entry(ctx, ada, a)
	assert.ErrorIs(t, err, domain.ErrNotFound)
	_, err = r.Entries(ctx, journal.EntryQuery{UserID: ada, From: "2026-01-01", To: "2026-12-31"})
	assert.ErrorIs(t, err, domain.ErrNotFound)
}

// An analyst's as-of build of the journal holds the entries as they were
// at the mark, in its own schema, and settles the claims in its own copy:
// the live read model and the command side are untouched.
func TestAnAsOfBuildShowsTheJournalAsItWas(t *testing.T) {
	s := projectiontest.New(t, testbackend.Kafka(t))
	ctx := context.Background()
	ada, a := uuid.New(), uuid.New()
	write(t, s, ada, a, calm, 1)
	time.Sleep(100 * time.Millisecond)
	mark := time.Now()
	time.Sleep(100 * time.Millisecond)
	write(t, s, ada, a, wine, 2)

	log, err := kafka.NewLog(s.Cfg)
	require.NoError(t, err)
	defer log.Close()
	build := engine.AsOf{DSN: s.Pool.Config().ConnString(), Log: log, Codec: s.Codec, Catalog: catalog.Catalog{}}
	require.NoError(t, build.Build(ctx, journal.Name, "asof_journal", mark, nil))
	var date string
	var version int64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT local_date::text, version FROM asof_journal.journal_entries_g1 WHERE entry_id = $1`, a).Scan(&date, &version))
	assert.Equal(t, calm.Date, date, "the entry as it was at the mark")
	assert.EqualValues(t, 1, version)
	var live, claims int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM public.journal_entries_g1`).Scan(&live))
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM public.journal_days`).Scan(&claims))
	assert.Zero(t, live, "the live read model")
	assert.Zero(t, claims, "the command side")
}
