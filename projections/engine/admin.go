package engine

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
)

// Admin is the operators' use cases over the registry, the dead letters
// and the rebuilder; it implements the HTTP adapter's Admin port. Rebuilds
// started through it run in the background of Life (the server's lifetime,
// not the request's) and switch reads when caught up; the server's own
// supervisor does the projecting.
type Admin struct {
	Rebuilder *Rebuilder
	Logger    *slog.Logger
	// Life bounds the background waits for rebuilds to catch up.
	Life context.Context
}

// Projections lists every generation with its checkpoint and the head.
func (a Admin) Projections(ctx context.Context) ([]Status, error) {
	return a.Rebuilder.Statuses(ctx)
}

// Rebuild registers a new generation and returns at once; the switch
// happens in the background when it has caught up (unless promote is off).
func (a Admin) Rebuild(ctx context.Context, name string, promote bool) (Version, error) {
	v, err := a.Rebuilder.Start(ctx, name)
	if err != nil {
		return v, err
	}
	if promote {
		// Stored, so a restarted server finishes the switch (ResumeSwitches).
		if err := a.Rebuilder.Versions.MarkSwitchPending(ctx, name, v.Generation); err != nil {
			return v, err
		}
	}
	go a.Rebuilder.AwaitSwitch(a.Life, a.logger(), v, promote)
	return v, nil
}

// Rollback switches reads back to the standby generation.
func (a Admin) Rollback(ctx context.Context, name string) (Version, error) {
	gen, err := a.Rebuilder.Versions.Rollback(ctx, name)
	return Version{Name: name, Generation: gen, State: StateLive}, err
}

// Drop deletes a generation that is not live.
func (a Admin) Drop(ctx context.Context, name string, generation int) error {
	p, err := a.Rebuilder.Catalog.New(name, generation)
	if err != nil {
		return err
	}
	return a.Rebuilder.Versions.Drop(ctx, p)
}

// DeadLetters lists dead letters of a projector ("" for all).
func (a Admin) DeadLetters(ctx context.Context, projector string) ([]DeadLetter, error) {
	return DeadLetters{Pool: a.Rebuilder.Pool}.List(ctx, projector)
}

// RetryDeadLetters marks held-back events for re-application.
func (a Admin) RetryDeadLetters(ctx context.Context, projector string, user uuid.UUID) (int64, error) {
	if projector == "" {
		return 0, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/projector", Detail: "is required"}}}
	}
	return DeadLetters{Pool: a.Rebuilder.Pool}.Retry(ctx, projector, user)
}

// SkipDeadLetter gives up on one failed event.
func (a Admin) SkipDeadLetter(ctx context.Context, eventID uuid.UUID) (DeadLetter, error) {
	return DeadLetters{Pool: a.Rebuilder.Pool}.Skip(ctx, eventID)
}

func (a Admin) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.Default()
	}
	return a.Logger
}
