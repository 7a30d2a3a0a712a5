package main

import (
	"context"

	"github.com/google/uuid"

	"github.com/biosync/biosync/adapters/httpapi"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections"
)

// admin implements httpapi.Admin over the projector registry, the dead
// letters and the rebuilder. Rebuilds started over HTTP run in the server's
// background (life) and switch reads when caught up; the server's own
// projector supervisor does the projecting.
type admin struct {
	p    *platform
	life context.Context
}

// Projections lists every generation with its checkpoint and the head.
func (a admin) Projections(ctx context.Context) ([]httpapi.ProjectionStatus, error) {
	versions, err := a.p.versions.List(ctx)
	if err != nil {
		return nil, err
	}
	heads, err := a.p.heads(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.ProjectionStatus, 0, len(versions))
	for _, v := range versions {
		done, head, err := projections.Progress(ctx, a.p.pool, heads, v.Name, v.Generation)
		if err != nil {
			return nil, err
		}
		out = append(out, httpapi.ProjectionStatus{Version: v, Checkpoint: done, Head: head})
	}
	return out, nil
}

// Rebuild registers a new generation and returns at once; the switch
// happens in the background when it has caught up (unless promote is off).
func (a admin) Rebuild(ctx context.Context, name string, promote bool) (projections.Version, error) {
	v, err := a.p.rebuilder().Start(ctx, name)
	if err != nil {
		return v, err
	}
	if promote {
		// Stored, so a restarted server finishes the switch (resumeSwitches).
		if err := a.p.versions.MarkSwitchPending(ctx, name, v.Generation); err != nil {
			return v, err
		}
	}
	go a.p.awaitSwitch(a.life, v, promote)
	return v, nil
}

// Rollback switches reads back to the standby generation.
func (a admin) Rollback(ctx context.Context, name string) (projections.Version, error) {
	gen, err := a.p.versions.Rollback(ctx, name)
	return projections.Version{Name: name, Generation: gen, State: projections.StateLive}, err
}

// Drop deletes a generation that is not live.
func (a admin) Drop(ctx context.Context, name string, generation int) error {
	p, err := projections.New(name, generation, nil)
	if err != nil {
		return err
	}
	return a.p.versions.Drop(ctx, p)
}

// DeadLetters lists dead letters of a projector ("" for all).
func (a admin) DeadLetters(ctx context.Context, projector string) ([]projections.DeadLetter, error) {
	return projections.DeadLetters{Pool: a.p.pool}.List(ctx, projector)
}

// RetryDeadLetters marks held-back events for re-application.
func (a admin) RetryDeadLetters(ctx context.Context, projector string, user uuid.UUID) (int64, error) {
	if projector == "" {
		return 0, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/projector", Detail: "is required"}}}
	}
	return projections.DeadLetters{Pool: a.p.pool}.Retry(ctx, projector, user)
}

// SkipDeadLetter gives up on one failed event.
func (a admin) SkipDeadLetter(ctx context.Context, eventID uuid.UUID) (projections.DeadLetter, error) {
	return projections.DeadLetters{Pool: a.p.pool}.Skip(ctx, eventID)
}
