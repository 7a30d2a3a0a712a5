// Package ingestion runs pushes: each accepted batch of samples and sleep
// sessions is appended to the log as exactly one samples.pushed event, and
// the command answers only after the log acknowledged it. Redeliveries are
// recognised by an event id derived from the delivery identity.
package ingestion

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// Dedup remembers the tokens of accepted deliveries so a redelivery answers
// with the original token without appending again. It is an optimisation:
// read models are idempotent by natural keys, so a Dedup that forgets (or a
// Redis outage) costs a harmless duplicate record, never a double count.
type Dedup interface {
	Lookup(ctx context.Context, eventID uuid.UUID) (eventstore.Token, bool)
	Remember(ctx context.Context, eventID uuid.UUID, t eventstore.Token)
}

// Deps are what pushes need. Log and Accounts are required.
type Deps struct {
	// Log is where samples.pushed is appended.
	Log eventstore.Appender
	// Accounts tells whether the pushing user exists (ByID).
	Accounts commands.Accounts
	// Dedup recognises redeliveries early; nil appends them again (harmless).
	Dedup Dedup
	// Envelope stamps the appended events.
	Envelope commands.Envelope
}

// Service runs pushes.
type Service struct {
	d Deps
	// known caches user ids whose account is active, so a push does not
	// cost a PostgreSQL round trip. Erasure ends an account: the erasure
	// worker (and every instance hearing its broadcast) calls Forget.
	known sync.Map
}

// New checks d and returns the push service; a missing required
// dependency is an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("ingestion", "Log", d.Log, "Accounts", d.Accounts); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// Forget drops a user from the active-account cache (after erasure), so
// later pushes for them are refused.
func (s *Service) Forget(userID uuid.UUID) { s.known.Delete(userID) }

// Push appends one samples.pushed event. The event id derives from the
// delivery identity (webhook-id, or the caller's Idempotency-Key scoped to
// the user), so redeliveries are recognised; read models are idempotent by
// natural keys in any case.
func (s *Service) Push(ctx context.Context, cmd commands.PushSamples) (commands.Accepted, error) {
	userID := cmd.UserID
	if userID == uuid.Nil {
		id, err := uuid.Parse(cmd.Batch.UserID)
		if err != nil {
			return commands.Accepted{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/user_id", Detail: "must be a UUID"}}}
		}
		userID = id
	}
	if _, ok := s.known.Load(userID); !ok {
		if _, err := s.d.Accounts.ByID(ctx, userID); errors.Is(err, domain.ErrNotFound) {
			return commands.Accepted{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/user_id", Detail: "no such user"}}}
		} else if err != nil {
			return commands.Accepted{}, err
		}
		s.known.Store(userID, struct{}{})
	}
	var id uuid.UUID
	switch {
	case cmd.DeliveryID != "" && cmd.Channel == "webhook":
		// Scoped to the user: a delivery id is unique per sender, not
		// across senders, and must never collapse two users' data.
		id = eventstore.DeterministicID("push.webhook", userID.String(), cmd.DeliveryID)
	case cmd.DeliveryID != "":
		id = eventstore.DeterministicID("push.app", userID.String(), cmd.DeliveryID)
	default:
		id = uuid.New()
	}
	if s.d.Dedup != nil && cmd.DeliveryID != "" {
		if t, ok := s.d.Dedup.Lookup(ctx, id); ok {
			return commands.Accepted{EventID: id, Token: t, Duplicate: true}, nil
		}
	}
	batch := cmd.Batch
	batch.UserID = userID.String()
	e, err := s.d.Envelope.Event(ctx, id, userID, ingest.EventPushed, ingest.Pushed{DeliveryID: cmd.DeliveryID, Channel: cmd.Channel, ReceivedAt: s.d.Envelope.Now.Now().UTC(), Batch: batch})
	if err != nil {
		return commands.Accepted{}, err
	}
	pos, err := s.d.Log.Append(ctx, e)
	if err != nil {
		return commands.Accepted{}, err
	}
	t := eventstore.Token{pos}
	if s.d.Dedup != nil && cmd.DeliveryID != "" {
		s.d.Dedup.Remember(ctx, id, t)
	}
	return commands.Accepted{EventID: id, Token: t}, nil
}
