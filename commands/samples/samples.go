// Package samples runs a user's corrections of their own health data: a
// deletion of the samples and sleep sessions of a time range (optionally
// one source provider and one type) is appended to the log as exactly one
// samples.deleted event, and the command answers only after the log
// acknowledged it. The rows themselves are removed by the metrics
// projector, so a rebuild from the log removes them again; the log keeps
// the pushes (erasure of the whole account is commands/erasure).
package samples

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// Deps are what deletions need. Log is required.
type Deps struct {
	// Log is where samples.deleted is appended.
	Log eventstore.Appender
	// Envelope stamps the appended events.
	Envelope commands.Envelope
}

// Service runs deletions.
type Service struct {
	d Deps
}

// New checks d and returns the deletion service; a missing required
// dependency is an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("samples", "Log", d.Log); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// DeleteSamples validates the deletion (a *domain.ValidationError naming
// /from, /to, /source or /type) and appends one samples.deleted event for
// the user. Each call is a new event with a random id: a deletion appended
// twice is not harmless (the second one also removes what was pushed in
// between), so a retry is made safe by the caller's Idempotency-Key, whose
// stored answer the HTTP edge replays, not by a derived id.
func (s *Service) DeleteSamples(ctx context.Context, cmd commands.DeleteSamples) (commands.Accepted, error) {
	if cmd.UserID == uuid.Nil {
		return commands.Accepted{}, errors.New("samples: a deletion needs the user whose data it removes")
	}
	if err := cmd.Deletion.Validate(); err != nil {
		return commands.Accepted{}, err
	}
	e, err := s.d.Envelope.Event(ctx, uuid.New(), cmd.UserID, ingest.EventDeleted, cmd.Deletion)
	if err != nil {
		return commands.Accepted{}, err
	}
	pos, err := s.d.Log.Append(ctx, e)
	if err != nil {
		return commands.Accepted{}, err
	}
	return commands.Accepted{EventID: e.ID, Token: eventstore.Token{pos}}, nil
}
