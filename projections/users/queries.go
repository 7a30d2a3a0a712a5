package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
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
	// Fields opens the sealed address (the key ring; required).
	Fields engine.Fields
}

// Me returns the profile of a user; domain.ErrNotFound before the
// registration is projected and once the user is erased (the key that
// sealed the address is destroyed before the row is purged).
func (r *Reader) Me(ctx context.Context, userID uuid.UUID) (UserView, error) {
	u := UserView{ID: userID}
	gen, err := r.Versions.Live(ctx, Name)
	if err != nil {
		return u, err
	}
	var sealed []byte
	err = r.Pool.QueryRow(ctx, `SELECT email_sealed, timezone, created_at, email_verified_at FROM `+engine.Table("users", gen)+` WHERE user_id = $1`, userID).
		Scan(&sealed, &u.Timezone, &u.CreatedAt, &u.EmailVerifiedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, domain.ErrNotFound
	}
	if err != nil {
		return u, pgerr.Classify(err)
	}
	if r.Fields == nil {
		return u, errors.New("users: the reader has no key ring to open addresses with")
	}
	email, err := r.Fields.OpenField(ctx, userID, EmailField, sealed)
	if errors.Is(err, eventstore.ErrErased) {
		return UserView{ID: userID}, domain.ErrNotFound
	}
	if err != nil {
		return UserView{ID: userID}, fmt.Errorf("users: open the address of %s: %w", userID, err)
	}
	u.Email = string(email)
	return u, nil
}
