// Package journal runs the edits of a user's journal: creating the entry
// of a local day, replacing it as a whole, deleting it. One entry per user
// and local day, and If-Match on every change, are invariants per-user log
// order cannot decide (two creations, or two edits of one version, would
// both be appended), so each command first claims the day and version in
// a command-side table (the Days port), appends exactly one event while
// holding the claim, and lets the claim go if the append fails.
package journal

import (
	"context"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/journal"
	"github.com/biosync/biosync/eventstore"
)

// Days is the command-side record of each user's journal entries: which
// entry holds which local day, at which version. It is where concurrent
// creations and edits are decided; every method holds its claim while
// write runs and keeps it only if write returned nil.
type Days interface {
	// Create claims date for entry at version 1 and calls write while
	// holding the claim; a day held by another entry returns a
	// *commands.DayTaken (domain.ErrConflict) without calling write.
	Create(ctx context.Context, user uuid.UUID, date string, entry uuid.UUID, write func(ctx context.Context) error) error
	// Change locks entry (domain.ErrNotFound when the user has no such
	// live entry), compares its version with expected (a
	// *commands.StaleVersion when it differs), moves its claim to date (a
	// *commands.DayTaken when another entry holds that day) and calls
	// write with the next version while holding the lock.
	Change(ctx context.Context, user, entry uuid.UUID, expected int64, date string, write func(ctx context.Context, next int64) error) error
	// Delete is Change that frees the entry's day once write succeeded;
	// write also learns the day the entry held.
	Delete(ctx context.Context, user, entry uuid.UUID, expected int64, write func(ctx context.Context, next int64, date string) error) error
}

// Deps are what journal edits need; Log and Days are required.
type Deps struct {
	// Log is where the journal events are appended.
	Log eventstore.Appender
	// Days decides one entry per day and the versions.
	Days Days
	// Envelope stamps the appended events.
	Envelope commands.Envelope
	// Now bounds entry dates (no entries for days that have not begun
	// anywhere); nil means the system clock.
	Now commands.Clock
}

// Service runs journal edits.
type Service struct{ d Deps }

// New checks d and returns the service; a missing required dependency is
// an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("journal", "Log", d.Log, "Days", d.Days); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// Write creates the entry of a local day: validated whole (422 lists every
// broken field), the day claimed, then one journal.entry_written at
// version 1. Returns a *commands.DayTaken (409) when the day has an entry,
// domain.ErrUnavailable (503, nothing changed) while the log or the
// database is down.
func (s *Service) Write(ctx context.Context, cmd commands.WriteJournalEntry) (commands.JournalEntrySaved, error) {
	e, err := s.valid(cmd.Entry)
	if err != nil {
		return commands.JournalEntrySaved{}, err
	}
	id := uuid.New()
	var out commands.JournalEntrySaved
	err = s.d.Days.Create(ctx, cmd.UserID, e.Date, id, func(ctx context.Context) error {
		out.EntryWritten = journal.EntryWritten{ID: id.String(), Entry: e, Version: 1}
		return s.append(ctx, cmd.UserID, journal.EventEntryWritten, out.EntryWritten, &out)
	})
	return out, err
}

// Replace replaces an entry as a whole (one journal.entry_written with the
// next version) when IfMatch is its current version: a
// *commands.StaleVersion (409) otherwise, domain.ErrNotFound (404) for an
// entry the user does not have, a *commands.DayTaken (409) when the entry
// moves to a day another entry holds.
func (s *Service) Replace(ctx context.Context, cmd commands.ReplaceJournalEntry) (commands.JournalEntrySaved, error) {
	e, err := s.valid(cmd.Entry)
	if err != nil {
		return commands.JournalEntrySaved{}, err
	}
	var out commands.JournalEntrySaved
	err = s.d.Days.Change(ctx, cmd.UserID, cmd.EntryID, cmd.IfMatch, e.Date, func(ctx context.Context, next int64) error {
		out.EntryWritten = journal.EntryWritten{ID: cmd.EntryID.String(), Entry: e, Version: next}
		return s.append(ctx, cmd.UserID, journal.EventEntryWritten, out.EntryWritten, &out)
	})
	return out, err
}

// Delete deletes an entry (one journal.entry_deleted with the next
// version) when IfMatch is its current version; its day is free again.
// Errors as Replace.
func (s *Service) Delete(ctx context.Context, cmd commands.DeleteJournalEntry) (commands.JournalEntrySaved, error) {
	var out commands.JournalEntrySaved
	err := s.d.Days.Delete(ctx, cmd.UserID, cmd.EntryID, cmd.IfMatch, func(ctx context.Context, next int64, date string) error {
		out.EntryWritten = journal.EntryWritten{ID: cmd.EntryID.String(), Entry: journal.Entry{Date: date, Tags: []journal.Tag{}}, Version: next}
		return s.append(ctx, cmd.UserID, journal.EventEntryDeleted, journal.EntryDeleted{ID: cmd.EntryID.String(), Date: date, Version: next}, &out)
	})
	return out, err
}

func (s *Service) valid(e journal.Entry) (journal.Entry, error) {
	e = e.Normalize()
	v := &domain.ValidationError{}
	e.Validate(v, s.d.Now.Now())
	return e, v.Err()
}

// append appends one event; an error leaves the caller's claim to be
// rolled back. An append whose outcome is unknown (a timeout) may still
// land: the journal projector then shows it and raises the claim to it.
func (s *Service) append(ctx context.Context, user uuid.UUID, typ string, body any, out *commands.JournalEntrySaved) error {
	e, err := s.d.Envelope.Event(ctx, uuid.New(), user, typ, body)
	if err != nil {
		return err
	}
	pos, err := s.d.Log.Append(ctx, e)
	if err != nil {
		return err
	}
	out.Token, out.At = eventstore.Token{pos}, e.OccurredAt
	return nil
}
