package httpapi

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

// Accounts is the command side of an account's credentials
// (commands/accounts). It is a port so the HTTP layer never touches
// password hashing or the email claim directly.
//
// Register returns domain.ErrConflict (409) when the email is taken, a
// *domain.ValidationError (422) for bad input and domain.ErrUnavailable (503)
// when the log or database is down. ChangePassword returns a
// *domain.ValidationError naming /current_password or /new_password (422)
// and domain.ErrConflict (409) when a concurrent change won.
type Accounts interface {
	// Register creates an account and returns its consistency token.
	Register(ctx context.Context, cmd commands.RegisterUser) (commands.Registered, error)
	// ChangePassword re-checks the password, stores the new one and
	// revokes every session.
	ChangePassword(ctx context.Context, cmd commands.ChangePassword) error
	// Registration returns where the user's registration landed in the
	// log (empty for accounts registered before it was recorded), so a
	// profile asked for right after login can wait until it is projected;
	// domain.ErrNotFound when the account is gone.
	Registration(ctx context.Context, userID uuid.UUID) (eventstore.Token, error)
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

// Queries reads the projections. It is a port so the HTTP layer stays
// independent of PostgreSQL and Redis; every method is scoped to one user.
type Queries interface {
	// Me returns the profile; domain.ErrNotFound when there is none.
	Me(ctx context.Context, userID uuid.UUID) (users.UserView, error)
	// Metrics returns one metric series.
	Metrics(ctx context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error)
	// SleepSessions returns the sessions ending in [from, to).
	SleepSessions(ctx context.Context, userID uuid.UUID, from, to time.Time) ([]metrics.SleepSession, error)
	// Dashboard returns the summary; token (possibly empty) says how fresh a
	// cached summary must be to be served.
	Dashboard(ctx context.Context, userID uuid.UUID, token eventstore.Token) (metrics.Dashboard, error)
	// WaitFor blocks until every named read model has passed token, bounded
	// by ctx; domain.ErrTimeout otherwise.
	WaitFor(ctx context.Context, token eventstore.Token, readModels ...string) error
}

// TokenVerifier checks access tokens. It is a port so JWT details (keys,
// algorithms, audiences) live in the auth adapter only.
type TokenVerifier interface {
	// VerifyAccess returns the user the token was issued to and its
	// session (sid), or domain.ErrUnauthorized (also for a token of a
	// revoked session), or domain.ErrUnavailable when revocation cannot be
	// checked.
	VerifyAccess(token string) (userID, sessionID uuid.UUID, err error)
}

// RoleVerifier tells the role of an access token's bearer. It is a port so
// the admin routes learn the role claim without the HTTP layer decoding
// JWTs; it is separate from TokenVerifier so that port stays one method.
type RoleVerifier interface {
	// VerifyRole checks token like TokenVerifier.VerifyAccess and returns
	// its user and role claim (e.g. RoleAdmin) and whether its session was
	// opened with a second factor (amr has "otp"), or
	// domain.ErrUnauthorized.
	VerifyRole(token string) (userID uuid.UUID, role string, mfa bool, err error)
}

// RoleAdmin is the role claim that opens the /v1/admin routes (operations
// marked `x-biosync-role: admin` in the spec).
const RoleAdmin = "admin"

// Admin operates the read models: blue/green rebuilds of projectors and
// dead letters. It is a port so the HTTP layer stays independent of the
// projection registry and of how rebuilds run. Only callers with RoleAdmin
// reach it. Errors: domain.ErrNotFound (404), domain.ErrConflict (409),
// domain.ErrUnavailable (503).
type Admin interface {
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

// HealthCheck is one dependency probed by GET /readyz, so a load balancer
// stops routing to an instance that cannot reach Kafka or PostgreSQL.
type HealthCheck struct {
	// Name labels the dependency in the /readyz body and the logs.
	Name string
	// Check returns nil when the dependency answers; it should honour ctx
	// (the probe gives up at Config.ReadinessTimeout either way).
	Check func(context.Context) error
}

// Read model names passed to Queries.WaitFor: the consistency token is
// awaited only on the projections a query actually reads.
const (
	// ReadModelUsers serves GET /v1/me.
	ReadModelUsers = "users"
	// ReadModelMetrics serves metrics, sleep sessions and the dashboard.
	ReadModelMetrics = "metrics"
)
