package ingest

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/domain/ingest"
)

// Channels recorded with a push.
const (
	channelWebhook = "webhook"
	channelApp     = "app"
)

// Deps are the ports of the push routes and of the deletion route.
type Deps struct {
	// Ingestor serves both push endpoints (required).
	Ingestor Ingestor
	// Deleter serves DELETE /v1/me/samples; nil answers it 503.
	Deleter Deleter
	// Now is the receiving clock; nil means time.Now.
	Now func() time.Time
	// MaxFutureSkew is how far after Now a value may lie
	// (BIOSYNC_MAX_FUTURE_SKEW; zero means DefaultMaxFutureSkew): device
	// clocks run ahead a little, but a sample from next year is a bug that
	// would sit on the dashboard forever.
	MaxFutureSkew time.Duration
}

// DefaultMaxFutureSkew lets a value lie up to a day ahead of the receiving
// clock: enough for a device whose clock or zone is set wrong by hours,
// not enough for a wrong year.
const DefaultMaxFutureSkew = 24 * time.Hour

// notAfter is the latest instant a pushed value may lie at.
func (h *Handlers) notAfter() time.Time {
	now, skew := time.Now, h.deps.MaxFutureSkew
	if h.deps.Now != nil {
		now = h.deps.Now
	}
	if skew <= 0 {
		skew = DefaultMaxFutureSkew
	}
	return now().Add(skew)
}

// Ingestor appends push batches to the event log. It is a port so ingestion
// over webhooks and over the app endpoint share one command.
//
// Push returns a *domain.ValidationError (422; an unknown user is reported at
// field /user_id) and domain.ErrUnavailable (503) while the log cannot be
// written; it returns only after the log acknowledged the append.
type Ingestor interface {
	// Push appends one batch (or recognises a redelivery of it).
	Push(ctx context.Context, cmd commands.PushSamples) (commands.Accepted, error)
}

// Handlers serves the push routes; the assembled server embeds it.
type Handlers struct {
	deps Deps
}

// New returns the push handlers over deps.
func New(deps Deps) *Handlers { return &Handlers{deps: deps} }

// PushWebhook accepts a signed server-to-server batch (POST
// /v1/webhooks/push). The signature was checked on the raw bytes by
// the edge's webhook middleware before this runs.
func (h *Handlers) PushWebhook(c echo.Context, _ gen.PushWebhookParams) error {
	d, ok := edge.Delivery(c)
	if !ok {
		return errors.New("httpapi: webhook route reached without a verified delivery")
	}
	batch, err := ingest.Parse(edge.Body(c), true, h.notAfter())
	if err != nil {
		return err
	}
	uid, err := uuid.Parse(batch.UserID)
	if err != nil {
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/user_id", Detail: "must be a UUID"}}}
	}
	return h.push(c, commands.PushSamples{UserID: uid, Batch: batch, DeliveryID: d.ID, Channel: channelWebhook})
}

// PushMySamples accepts a batch of the caller's own data (POST
// /v1/me/samples).
func (h *Handlers) PushMySamples(c echo.Context, params gen.PushMySamplesParams) error {
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	batch, err := ingest.Parse(edge.Body(c), false, h.notAfter())
	if err != nil {
		return err
	}
	cmd := commands.PushSamples{UserID: uid, Batch: batch, Channel: channelApp}
	if params.IdempotencyKey != nil {
		cmd.DeliveryID = *params.IdempotencyKey
	}
	return h.push(c, cmd)
}

func (h *Handlers) push(c echo.Context, cmd commands.PushSamples) error {
	acc, err := h.deps.Ingestor.Push(c.Request().Context(), cmd)
	if errors.Is(err, ingest.ErrDeliveryReused) {
		return reused(cmd.Channel)
	}
	if err != nil {
		return err
	}
	edge.SetToken(c, acc.Token)
	return c.JSON(http.StatusAccepted, gen.Accepted{EventId: acc.EventID, Duplicate: acc.Duplicate})
}

// reused words a delivery id that came back with another batch: the
// webhook's id is the sender's (409, as a Standard Webhooks sender reads
// a conflict), the app's is an Idempotency-Key (422, as the key store
// answers a reused key, so the answer does not depend on which of the two
// remembered it).
func reused(channel string) error {
	if channel == channelWebhook {
		return &edge.Error{Kind: edge.KindDeliveryReused, Detail: "this webhook-id was accepted with a different body; nothing was written",
			Fields: []domain.FieldProblem{{Field: "webhook-id", Detail: "already used for a different batch"}}}
	}
	return &edge.Error{Kind: edge.KindIdempotencyReused, Detail: "this Idempotency-Key was used for a different request; send a new key",
		Fields: []domain.FieldProblem{{Field: "Idempotency-Key", Detail: "already used with another body"}}}
}
