package queries

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain/metric"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

// Read model names passed to the consistency wait: a token is awaited only
// on the projections a query actually reads.
const (
	// ReadModelUsers serves GET /v1/me.
	ReadModelUsers = "users"
	// ReadModelMetrics serves metrics, sleep sessions, nights and the dashboard.
	ReadModelMetrics = "metrics"
)

// Deps are the ports of the read routes. Reader and Registrations are
// required.
type Deps struct {
	// Reader serves every read.
	Reader Reader
	// Registrations tells where an account's registration landed, so a
	// profile asked for before it is projected can wait for it.
	Registrations Registrations
	// Units tells metric answers the caller's unit system; nil answers in
	// metric units.
	Units Units
	// Now is the clock for default query ranges; nil means time.Now.
	Now func() time.Time
	// CursorKey signs page cursors (required, at least 32 bytes; the same
	// on every instance, so a next page may be read from any of them).
	CursorKey []byte
}

// Reader reads the projections. It is a port so the HTTP layer stays
// independent of PostgreSQL and Redis; every method is scoped to one user.
type Reader interface {
	// Me returns the profile; domain.ErrNotFound when there is none.
	Me(ctx context.Context, userID uuid.UUID) (users.UserView, error)
	// Metrics returns one metric series (one page of a raw series).
	Metrics(ctx context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error)
	// SleepSessions returns one page of the sessions ending in [q.From,
	// q.To).
	SleepSessions(ctx context.Context, q metrics.SleepQuery) (metrics.SleepPage, error)
	// Nights returns one page of the nights whose wake date lies in
	// [q.From, q.To].
	Nights(ctx context.Context, q metrics.NightsQuery) (metrics.NightsPage, error)
	// Dashboard returns the summary; token (possibly empty) says how fresh a
	// cached summary must be to be served.
	Dashboard(ctx context.Context, userID uuid.UUID, token eventstore.Token) (metrics.Dashboard, error)
}

// Registrations is the command side's record of registrations
// (commands/accounts).
type Registrations interface {
	// Registration returns where the user's registration landed in the
	// log (empty for accounts registered before it was recorded), so a
	// profile asked for right after login can wait until it is projected;
	// domain.ErrNotFound when the account is gone.
	Registration(ctx context.Context, userID uuid.UUID) (eventstore.Token, error)
}

// Units reads the caller's unit system from the settings read model. It is
// a port so metric answers learn it without knowing where it is stored.
type Units interface {
	// Units returns the caller's unit system (metric when unknown); fresh
	// asks for the read model itself rather than a value cached for a
	// second (a read that carries a consistency token).
	Units(ctx context.Context, userID uuid.UUID, fresh bool) (metric.System, error)
}
