package admin

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/catalog"
	"github.com/biosync/biosync/projections/engine"
)

// Deps are the ports of the admin routes. The edge answers every admin
// route 503 while ReadModels is nil; Audit nil answers GET
// /v1/admin/audit 503.
type Deps struct {
	// ReadModels serves the projection and dead-letter routes.
	ReadModels ReadModels
	// Audit lists the audit log and records that it was read.
	Audit commands.AuditTrail
}

// ReadModels operates the read models: blue/green rebuilds of projectors
// and dead letters. It is a port so the HTTP layer stays independent of the
// projection registry and of how rebuilds run. Only callers with the admin
// role reach it. Errors: domain.ErrNotFound (404), domain.ErrConflict
// (409), domain.ErrUnavailable (503).
type ReadModels interface {
	// Projections returns every registered generation with its progress.
	Projections(ctx context.Context) ([]engine.Status, error)
	// Rebuild registers the next generation of the projector called name
	// (domain.ErrNotFound for an unknown name) and returns it as building.
	// It returns at once: waiting for the generation to catch up and, when
	// promote is set, switching reads to it run in the background of the
	// server process, detached from ctx (which ends with the request).
	Rebuild(ctx context.Context, name string, promote bool) (engine.Version, error)
	// Rollback makes the most recently promoted standby generation live
	// again and returns it; domain.ErrNotFound when there is none.
	Rollback(ctx context.Context, name string) (engine.Version, error)
	// Drop removes a generation that is not live: domain.ErrConflict when
	// it is live, domain.ErrNotFound when it does not exist.
	Drop(ctx context.Context, name string, generation int) error
	// DeadLetters lists the dead letters of one projector (all when
	// projector is "").
	DeadLetters(ctx context.Context, projector string) ([]engine.DeadLetter, error)
	// RetryDeadLetters marks the held-back events of user (every user when
	// uuid.Nil) for re-application and returns how many were marked.
	RetryDeadLetters(ctx context.Context, projector string, user uuid.UUID) (int64, error)
	// SkipDeadLetter gives up on one failed event and returns it;
	// domain.ErrNotFound when no failed dead letter has that event id.
	SkipDeadLetter(ctx context.Context, eventID uuid.UUID) (engine.DeadLetter, error)
}

// Handlers serves the /v1/admin routes; the assembled server embeds it.
// The edge's authenticate and authorize have already checked the token,
// the admin role, the MFA session and the network, and that ReadModels is
// set; the access log names the administrator (actor_id), and every
// change is also logged as an "admin action" naming what it changed
// (projector names, generations and event ids; never a user id).
type Handlers struct {
	deps Deps
	log  *slog.Logger
}

// New returns the admin handlers over deps, logging admin actions to log.
func New(deps Deps, log *slog.Logger) *Handlers { return &Handlers{deps: deps, log: log} }

// ListProjections returns every projector generation with its progress
// (GET /v1/admin/projections).
func (h *Handlers) ListProjections(c echo.Context) error {
	list, err := h.deps.ReadModels.Projections(c.Request().Context())
	if err != nil {
		return err
	}
	out := gen.ProjectionList{Projections: make([]gen.ProjectionStatus, 0, len(list))}
	for _, p := range list {
		out.Projections = append(out.Projections, gen.ProjectionStatus{
			Name:       p.Name,
			Generation: p.Generation,
			State:      gen.ProjectionState(p.State),
			Checkpoint: p.Checkpoint,
			Head:       p.Head,
			Lag:        max(p.Head-p.Checkpoint, 0),
			CreatedAt:  p.CreatedAt,
			PromotedAt: p.PromotedAt,
		})
	}
	return c.JSON(http.StatusOK, out)
}

// RebuildProjection registers a new generation of a projector; building,
// waiting and switching reads happen in the background (POST
// /v1/admin/projections/{name}/rebuild).
func (h *Handlers) RebuildProjection(c echo.Context, name gen.ProjectorName, params gen.RebuildProjectionParams) error {
	promote := params.Switch == nil || *params.Switch
	v, err := h.deps.ReadModels.Rebuild(c.Request().Context(), name, promote)
	if err != nil {
		return edge.Reword(err, domain.ErrNotFound, edge.KindNotFound, edge.Wording{Detail: "no projector has this name",
			Field: "/name", FieldDetail: "unknown projector (known: " + strings.Join(catalog.Names, ", ") + ")"})
	}
	h.audit(c, "rebuild started", slog.String("projector", v.Name), slog.Int("generation", v.Generation), slog.Bool("switch", promote))
	return c.JSON(http.StatusAccepted, gen.RebuildStarted{Name: v.Name, Generation: v.Generation, State: gen.RebuildStartedStateBuilding})
}

// RollbackProjection switches reads back to the standby generation (POST
// /v1/admin/projections/{name}/rollback).
func (h *Handlers) RollbackProjection(c echo.Context, name gen.ProjectorName) error {
	v, err := h.deps.ReadModels.Rollback(c.Request().Context(), name)
	if err != nil {
		return edge.Reword(err, domain.ErrNotFound, edge.KindNotFound, edge.Wording{Detail: "the projector has no standby generation to roll back to",
			Field: "/name", FieldDetail: "no standby generation"})
	}
	h.audit(c, "rolled back", slog.String("projector", v.Name), slog.Int("generation", v.Generation))
	return c.JSON(http.StatusOK, gen.ProjectionGeneration{Name: v.Name, Generation: v.Generation})
}

// DropProjectionGeneration removes a generation that is not live (DELETE
// /v1/admin/projections/{name}/generations/{generation}).
func (h *Handlers) DropProjectionGeneration(c echo.Context, name gen.ProjectorName, generation int) error {
	if err := h.deps.ReadModels.Drop(c.Request().Context(), name, generation); err != nil {
		err = edge.Reword(err, domain.ErrNotFound, edge.KindNotFound, edge.Wording{Detail: "the projector has no such generation",
			Field: "/generation", FieldDetail: "no such generation"})
		return edge.Reword(err, domain.ErrConflict, edge.KindConflict, edge.Wording{Detail: "the generation is live; roll back or promote another generation first",
			Field: "/generation", FieldDetail: "is the live generation"})
	}
	h.audit(c, "generation dropped", slog.String("projector", name), slog.Int("generation", generation))
	return c.NoContent(http.StatusNoContent)
}

// ListDeadLetters returns the dead letters, optionally of one projector
// (GET /v1/admin/dead-letters).
func (h *Handlers) ListDeadLetters(c echo.Context, params gen.ListDeadLettersParams) error {
	projector := ""
	if params.Projector != nil {
		projector = *params.Projector
	}
	list, err := h.deps.ReadModels.DeadLetters(c.Request().Context(), projector)
	if err != nil {
		return err
	}
	out := gen.DeadLetterList{DeadLetters: make([]gen.DeadLetter, 0, len(list))}
	for _, d := range list {
		out.DeadLetters = append(out.DeadLetters, deadLetterView(d))
	}
	return c.JSON(http.StatusOK, out)
}

// RetryDeadLetters marks held-back events for re-application (POST
// /v1/admin/dead-letters/retry).
func (h *Handlers) RetryDeadLetters(c echo.Context) error {
	var in gen.RetryDeadLettersRequest
	if err := edge.DecodeStrict(edge.Body(c), &in); err != nil {
		return err
	}
	user, scope := uuid.Nil, "all users"
	if in.UserId != nil {
		user, scope = *in.UserId, "one user"
	}
	n, err := h.deps.ReadModels.RetryDeadLetters(c.Request().Context(), in.Projector, user)
	if err != nil {
		return err
	}
	h.audit(c, "dead letters marked for retry", slog.String("projector", in.Projector), slog.String("scope", scope), slog.Int64("marked", n))
	return c.JSON(http.StatusAccepted, gen.RetryMarked{Marked: n})
}

// SkipDeadLetter gives up on one failed event (POST
// /v1/admin/dead-letters/{event_id}/skip).
func (h *Handlers) SkipDeadLetter(c echo.Context, eventID uuid.UUID) error {
	d, err := h.deps.ReadModels.SkipDeadLetter(c.Request().Context(), eventID)
	if err != nil {
		return edge.Reword(err, domain.ErrNotFound, edge.KindNotFound, edge.Wording{Detail: "no failed dead letter has this event id",
			Field: "/event_id", FieldDetail: "no failed dead letter"})
	}
	h.audit(c, "dead letter skipped", slog.String("projector", d.Projector), slog.String("event_id", eventID.String()))
	return c.JSON(http.StatusOK, deadLetterView(d))
}

// deadLetterView is the wire form of a dead letter; an empty error and an
// unknown creation time are left out.
func deadLetterView(d engine.DeadLetter) gen.DeadLetter {
	v := gen.DeadLetter{
		Projector: d.Projector,
		Partition: d.Partition,
		Offset:    d.Offset,
		UserId:    d.UserID,
		EventId:   d.EventID,
		EventType: d.EventType,
		State:     gen.DeadLetterState(d.State),
	}
	if d.Error != "" {
		msg := d.Error
		v.Error = &msg
	}
	if !d.CreatedAt.IsZero() {
		at := d.CreatedAt
		v.CreatedAt = &at
	}
	return v
}

// audit logs one change made through the admin API with the administrator's
// user id and the request id (the access log line follows with the status).
func (h *Handlers) audit(c echo.Context, msg string, attrs ...slog.Attr) {
	ctx := c.Request().Context()
	base := []slog.Attr{slog.String("request_id", edge.CorrelationID(ctx)), slog.String("route", edge.RouteLabel(c))}
	if actor, ok := edge.Actor(c); ok {
		base = append(base, slog.String("actor_id", actor.String()))
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "admin action: "+msg, append(base, attrs...)...)
}
