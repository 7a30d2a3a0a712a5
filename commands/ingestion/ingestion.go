// Package ingestion runs pushes: each accepted batch of samples and sleep
// sessions is appended to the log as exactly one samples.pushed event, and
// the command answers only after the log acknowledged it. Redeliveries are
// recognised by an event id derived from the delivery identity.
package ingestion

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// Delivery is what is known about an accepted delivery: what its batch
// said (Digest, see ingest.Batch.Digest) and where its event landed
// (Token; empty while the append is not confirmed).
type Delivery struct {
	Digest [32]byte
	Token  eventstore.Token
}

// Dedup is the fast path of redelivery detection (Redis): it answers a
// redelivery with the original token without a PostgreSQL round trip. It
// may forget (a TTL, a flush, an in-memory server restarted); Deliveries
// is the record that does not.
type Dedup interface {
	Lookup(ctx context.Context, eventID uuid.UUID) (Delivery, bool)
	Remember(ctx context.Context, eventID uuid.UUID, d Delivery)
}

// Deliveries is the durable record of the deliveries that carried an id
// (PostgreSQL): one row per event id with the digest of its batch, written
// before the append, so a delivery id that comes back with another batch
// is refused across restarts and beyond any cache's lifetime, and the log
// never holds two different events under one id.
type Deliveries interface {
	// Reserve records eventID (of userID) with digest unless it is
	// recorded already. It returns the record holding eventID afterwards
	// and whether the caller's call created it.
	Reserve(ctx context.Context, eventID, userID uuid.UUID, digest [32]byte) (d Delivery, created bool, err error)
	// Confirm stores where the event of a reserved delivery landed. It
	// may return before the record is written (an implementation may
	// batch it): a confirm that is lost only makes a later redelivery of
	// the same batch append a copy, which the projectors skip.
	Confirm(ctx context.Context, eventID uuid.UUID, t eventstore.Token) error
}

// Deps are what pushes need. Log and Accounts are required.
type Deps struct {
	// Log is where samples.pushed is appended.
	Log eventstore.Appender
	// Accounts tells whether the pushing user exists (ByID).
	Accounts commands.Accounts
	// Dedup recognises redeliveries early; nil asks Deliveries every time.
	Dedup Dedup
	// Deliveries is the durable record of deliveries with an id; nil
	// leaves redeliveries to Dedup and the projectors (a process whose
	// deliveries must be refused across restarts sets it).
	Deliveries Deliveries
	// Envelope stamps the appended events.
	Envelope commands.Envelope
	// Logger hears about deliveries appended but not confirmed; nil
	// means slog.Default().
	Logger *slog.Logger
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
// the user). A delivery whose id is known answers with the original token
// (Duplicate) when its batch is the same, and ingest.ErrDeliveryReused
// when it is not: Dedup answers first, Deliveries when Dedup does not know.
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
	batch := cmd.Batch
	batch.UserID = userID.String()
	if cmd.DeliveryID == "" {
		return s.appendPush(ctx, id, userID, cmd, batch)
	}
	digest := batch.Digest()
	if s.d.Dedup != nil {
		if d, ok := s.d.Dedup.Lookup(ctx, id); ok {
			return seen(id, d, digest)
		}
	}
	if s.d.Deliveries == nil {
		acc, err := s.appendPush(ctx, id, userID, cmd, batch)
		if err == nil && s.d.Dedup != nil {
			s.d.Dedup.Remember(ctx, id, Delivery{Digest: digest, Token: acc.Token})
		}
		return acc, err
	}
	d, created, err := s.d.Deliveries.Reserve(ctx, id, userID, digest)
	if err != nil {
		return commands.Accepted{}, err
	}
	if !created && (d.Digest != digest || len(d.Token) > 0) {
		if s.d.Dedup != nil && d.Digest == digest {
			s.d.Dedup.Remember(ctx, id, d)
		}
		return seen(id, d, digest)
	}
	// Reserved now, or reserved earlier with this batch by an attempt
	// that never confirmed (it failed, crashed or is still running):
	// append. A second append of one batch under one id is a redelivery
	// that the projectors apply once.
	acc, err := s.appendPush(ctx, id, userID, cmd, batch)
	if err != nil {
		return commands.Accepted{}, err
	}
	if err := s.d.Deliveries.Confirm(ctx, id, acc.Token); err != nil {
		// The event is durable; an unconfirmed record only makes a later
		// redelivery append again, which the projectors absorb.
		s.logger().Warn("delivery appended but not confirmed", "event_id", id, "error", err)
	}
	if s.d.Dedup != nil {
		s.d.Dedup.Remember(ctx, id, Delivery{Digest: digest, Token: acc.Token})
	}
	return acc, nil
}

func (s *Service) logger() *slog.Logger {
	if s.d.Logger == nil {
		return slog.Default()
	}
	return s.d.Logger
}

// seen answers a delivery whose id is known: the same batch is a
// redelivery (the original token, Duplicate), another batch is refused.
func seen(id uuid.UUID, d Delivery, digest [32]byte) (commands.Accepted, error) {
	if d.Digest != digest {
		return commands.Accepted{}, ingest.ErrDeliveryReused
	}
	return commands.Accepted{EventID: id, Token: d.Token, Duplicate: true}, nil
}

// appendPush appends one samples.pushed event and returns once the log
// acknowledged it.
func (s *Service) appendPush(ctx context.Context, id, userID uuid.UUID, cmd commands.PushSamples, batch ingest.Batch) (commands.Accepted, error) {
	e, err := s.d.Envelope.Event(ctx, id, userID, ingest.EventPushed, ingest.Pushed{DeliveryID: cmd.DeliveryID, Channel: cmd.Channel, ReceivedAt: s.d.Envelope.Now.Now().UTC(), Batch: batch})
	if err != nil {
		return commands.Accepted{}, err
	}
	pos, err := s.d.Log.Append(ctx, e)
	if err != nil {
		return commands.Accepted{}, err
	}
	return commands.Accepted{EventID: id, Token: eventstore.Token{pos}}, nil
}
