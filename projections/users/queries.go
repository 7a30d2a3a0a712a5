package users

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/engine"
)

// UserView is the profile read model behind GET /v1/me.
type UserView struct {
	ID        uuid.UUID
	Email     string
	Timezone  string
	CreatedAt time.Time
	// EmailVerifiedAt is when the address was verified; nil until then.
	EmailVerifiedAt *time.Time
}

// Reader answers the users read model's queries from its live generation.
type Reader struct {
	Pool *pgxpool.Pool
	// Versions tells which generation is live; nil means generation 1.
	Versions *engine.Versions
}

// Me returns the profile of a user; domain.ErrNotFound before the
// registration is projected.
func (r *Reader) Me(ctx context.Context, userID uuid.UUID) (UserView, error) {
	u := UserView{ID: userID}
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return u, err
	}
	err = r.Pool.QueryRow(ctx, `SELECT email, timezone, created_at, email_verified_at FROM `+engine.Table("users", gen)+` WHERE user_id = $1`, userID).
		Scan(&u.Email, &u.Timezone, &u.CreatedAt, &u.EmailVerifiedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, domain.ErrNotFound
	}
	return u, pgerr.Classify(err)
}
