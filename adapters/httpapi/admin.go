package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/projections/engine"
)

// The /v1/admin handlers. authenticate and authorize have already checked
// the token, the admin role and that Deps.Admin is set; the access log
// names the administrator (actor_id), and every change is also logged as an
// "admin action" naming what it changed (projector names, generations and
// event ids; never a user id).

// ListProjections returns every projector generation with its progress
// (GET /v1/admin/projections).
func (s *server) ListProjections(c echo.Context) error {
	list, err := s.deps.Admin.Projections(c.Request().Context())
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
func (s *server) RebuildProjection(c echo.Context, name gen.ProjectorName, params gen.RebuildProjectionParams) error {
	promote := params.Switch == nil || *params.Switch
	v, err := s.deps.Admin.Rebuild(c.Request().Context(), name, promote)
	if err != nil {
		return err
	}
	s.audit(c, "rebuild started", slog.String("projector", v.Name), slog.Int("generation", v.Generation), slog.Bool("switch", promote))
	return c.JSON(http.StatusAccepted, gen.RebuildStarted{Name: v.Name, Generation: v.Generation, State: gen.RebuildStartedStateBuilding})
}

// RollbackProjection switches reads back to the standby generation (POST
// /v1/admin/projections/{name}/rollback).
func (s *server) RollbackProjection(c echo.Context, name gen.ProjectorName) error {
	v, err := s.deps.Admin.Rollback(c.Request().Context(), name)
	if err != nil {
		return err
	}
	s.audit(c, "rolled back", slog.String("projector", v.Name), slog.Int("generation", v.Generation))
	return c.JSON(http.StatusOK, gen.ProjectionGeneration{Name: v.Name, Generation: v.Generation})
}

// DropProjectionGeneration removes a generation that is not live (DELETE
// /v1/admin/projections/{name}/generations/{generation}).
func (s *server) DropProjectionGeneration(c echo.Context, name gen.ProjectorName, generation int) error {
	if err := s.deps.Admin.Drop(c.Request().Context(), name, generation); err != nil {
		return err
	}
	s.audit(c, "generation dropped", slog.String("projector", name), slog.Int("generation", generation))
	return c.NoContent(http.StatusNoContent)
}

// ListDeadLetters returns the dead letters, optionally of one projector
// (GET /v1/admin/dead-letters).
func (s *server) ListDeadLetters(c echo.Context, params gen.ListDeadLettersParams) error {
	projector := ""
	if params.Projector != nil {
		projector = *params.Projector
	}
	list, err := s.deps.Admin.DeadLetters(c.Request().Context(), projector)
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
func (s *server) RetryDeadLetters(c echo.Context) error {
	var in gen.RetryDeadLettersRequest
	if err := decodeStrict(rawBody(c), &in); err != nil {
		return err
	}
	user, scope := uuid.Nil, "all users"
	if in.UserId != nil {
		user, scope = *in.UserId, "one user"
	}
	n, err := s.deps.Admin.RetryDeadLetters(c.Request().Context(), in.Projector, user)
	if err != nil {
		return err
	}
	s.audit(c, "dead letters marked for retry", slog.String("projector", in.Projector), slog.String("scope", scope), slog.Int64("marked", n))
	return c.JSON(http.StatusAccepted, gen.RetryMarked{Marked: n})
}

// SkipDeadLetter gives up on one failed event (POST
// /v1/admin/dead-letters/{event_id}/skip).
func (s *server) SkipDeadLetter(c echo.Context, eventID uuid.UUID) error {
	d, err := s.deps.Admin.SkipDeadLetter(c.Request().Context(), eventID)
	if err != nil {
		return err
	}
	s.audit(c, "dead letter skipped", slog.String("projector", d.Projector), slog.String("event_id", eventID.String()))
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
func (s *server) audit(c echo.Context, msg string, attrs ...slog.Attr) {
	ctx := c.Request().Context()
	base := []slog.Attr{slog.String("request_id", CorrelationID(ctx)), slog.String("route", routeLabel(c))}
	if actor, ok := c.Get(actorKey).(uuid.UUID); ok {
		base = append(base, slog.String("actor_id", actor.String()))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "admin action: "+msg, append(base, attrs...)...)
}
