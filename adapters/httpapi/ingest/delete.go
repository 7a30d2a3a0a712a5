package ingest

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain/ingest"
)

// Deleter appends the caller's deletions of their own samples to the event
// log. It is a port so the HTTP layer only relays the request; which rows
// go is decided by the metrics projector.
//
// DeleteSamples returns a *domain.ValidationError (422 naming /from, /to,
// /source or /type) and domain.ErrUnavailable (503) while the log cannot be
// written; it returns only after the log acknowledged the append.
type Deleter interface {
	// DeleteSamples appends one samples.deleted event.
	DeleteSamples(ctx context.Context, cmd commands.DeleteSamples) (commands.Accepted, error)
}

func (h *Handlers) deleter() (Deleter, error) {
	if h.deps.Deleter == nil {
		return nil, edge.NotConfigured("sample deletion")
	}
	return h.deps.Deleter, nil
}

// DeleteMySamples deletes the caller's samples and sleep sessions of a
// time range (DELETE /v1/me/samples): 202 with the event id and a
// consistency token once the deletion is in the log.
func (h *Handlers) DeleteMySamples(c echo.Context, params gen.DeleteMySamplesParams) error {
	d, err := h.deleter()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	del := ingest.Deletion{From: params.From, To: params.To, Provider: edge.Deref(params.Source)}
	if params.Type != nil {
		del.Type = string(*params.Type)
	}
	// The spec has checked the parameters one by one; the domain checks
	// the range as a whole before anything reaches the command.
	if err := del.Validate(); err != nil {
		return err
	}
	acc, err := d.DeleteSamples(c.Request().Context(), commands.DeleteSamples{UserID: uid, Deletion: del})
	if err != nil {
		return err
	}
	edge.SetToken(c, acc.Token)
	return c.JSON(http.StatusAccepted, gen.SampleDeletion{EventId: acc.EventID, From: params.From, To: params.To, Source: params.Source, Type: params.Type})
}
