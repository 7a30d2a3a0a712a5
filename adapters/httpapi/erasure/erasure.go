package erasure

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
)

// Deps are the ports of the erasure routes.
type Deps struct {
	// Erasure serves /v1/me/deletion-requests; nil answers them 503.
	Erasure Erasure
}

// Erasure is the account-deletion workflow (GDPR art. 17). It is a port so
// the HTTP layer only relays requests; the grace period and the purge are
// decided in commands. Errors: *domain.ValidationError (422, /password on
// a failed re-authentication), domain.ErrConflict (409: already open, or
// no longer cancellable), domain.ErrNotFound (404), domain.ErrUnavailable.
type Erasure interface {
	// RequestErasure re-checks password and schedules the erasure.
	RequestErasure(ctx context.Context, user uuid.UUID, password, ip string) (commands.DeletionRequest, error)
	// ErasureStatus returns one of the user's requests.
	ErasureStatus(ctx context.Context, user, id uuid.UUID) (commands.DeletionRequest, error)
	// CancelErasure cancels a scheduled request.
	CancelErasure(ctx context.Context, user, id uuid.UUID, ip string) (commands.DeletionRequest, error)
}

// Handlers serves the erasure routes; the assembled server embeds it.
type Handlers struct {
	deps Deps
}

// New returns the erasure handlers over deps.
func New(deps Deps) *Handlers { return &Handlers{deps: deps} }

func (h *Handlers) erasure() (Erasure, error) {
	if h.deps.Erasure == nil {
		return nil, edge.NotConfigured("erasure")
	}
	return h.deps.Erasure, nil
}

func deletionOut(d commands.DeletionRequest) gen.DeletionRequest {
	return gen.DeletionRequest{Id: d.ID, Status: gen.DeletionRequestStatus(d.Status), RequestedAt: d.RequestedAt,
		ExecuteAfter: d.ExecuteAfter, CancelledAt: d.CancelledAt, CompletedAt: d.CompletedAt}
}

// RequestErasure schedules the erasure of the caller's account (POST
// /v1/me/deletion-requests).
func (h *Handlers) RequestErasure(c echo.Context) error {
	e, err := h.erasure()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	var in gen.ErasureRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	d, err := e.RequestErasure(c.Request().Context(), uid, in.Password, c.RealIP())
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/me/deletion-requests/"+d.ID.String())
	return c.JSON(http.StatusAccepted, deletionOut(d))
}

// GetErasure reads one of the caller's requests (GET
// /v1/me/deletion-requests/{id}).
func (h *Handlers) GetErasure(c echo.Context, id uuid.UUID) error {
	e, err := h.erasure()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	d, err := e.ErasureStatus(c.Request().Context(), uid, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deletionOut(d))
}

// CancelErasure cancels a scheduled request (DELETE
// /v1/me/deletion-requests/{id}).
func (h *Handlers) CancelErasure(c echo.Context, id uuid.UUID) error {
	e, err := h.erasure()
	if err != nil {
		return err
	}
	uid, err := edge.Caller(c)
	if err != nil {
		return err
	}
	d, err := e.CancelErasure(c.Request().Context(), uid, id, c.RealIP())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deletionOut(d))
}
