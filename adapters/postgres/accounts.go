package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// Account is the command-side record of a user (commands.Account).
type Account = commands.Account

// Accounts is the accounts table.
type Accounts struct{ pool *pgxpool.Pool }

// NewAccounts wraps a pool.
func NewAccounts(pool *pgxpool.Pool) *Accounts { return &Accounts{pool: pool} }

// Claim takes the email address for a new user (status pending). It returns
// domain.ErrConflict when the address is already claimed.
func (a *Accounts) Claim(ctx context.Context, acc Account) error {
	tag, err := a.pool.Exec(ctx, `INSERT INTO accounts (user_id, email_key, password_hash, status, role) VALUES ($1, $2, $3, 'pending', 'user')
		ON CONFLICT (email_key) DO UPDATE SET user_id = EXCLUDED.user_id, password_hash = EXCLUDED.password_hash,
			created_at = now(), updated_at = now()
		WHERE accounts.status = 'pending' AND accounts.created_at < now() - $4::interval`,
		acc.UserID, acc.EmailKey, acc.PasswordHash, ClaimTakeover.String())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("email address: %w", domain.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("claim email: %w", pgerr.Classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("email address: %w", domain.ErrConflict)
	}
	return nil
}

// ClaimTakeover is how long a pending claim (registration whose append
// outcome was unknown) blocks its address: far longer than any append can
// stay in flight (the producer gives up after seconds).
const ClaimTakeover = 2 * time.Minute

// Complete marks a claimed account active once its event is in the log,
// and keeps where it landed (registration).
func (a *Accounts) Complete(ctx context.Context, userID uuid.UUID, registration eventstore.Token) error {
	if _, err := a.pool.Exec(ctx, `UPDATE accounts SET status = 'active', registration = $2, updated_at = now() WHERE user_id = $1`,
		userID, registration.String()); err != nil {
		return fmt.Errorf("complete account: %w", pgerr.Classify(err))
	}
	return nil
}

// Release drops a pending claim whose event could not be appended.
func (a *Accounts) Release(ctx context.Context, userID uuid.UUID) error {
	_, err := a.pool.Exec(ctx, `DELETE FROM accounts WHERE user_id = $1 AND status = 'pending'`, userID)
	return err
}

// ByEmailKey finds an active account; domain.ErrNotFound otherwise.
func (a *Accounts) ByEmailKey(ctx context.Context, key []byte) (Account, error) {
	return a.one(ctx, `WHERE email_key = $1 AND status = 'active'`, key)
}

// ByID finds an active account; domain.ErrNotFound otherwise.
func (a *Accounts) ByID(ctx context.Context, id uuid.UUID) (Account, error) {
	return a.one(ctx, `WHERE user_id = $1 AND status = 'active'`, id)
}

func (a *Accounts) one(ctx context.Context, where string, arg any) (Account, error) {
	var acc Account
	var registration string
	err := a.pool.QueryRow(ctx, `SELECT user_id, email_key, password_hash, role, status = 'active', registration FROM accounts `+where, arg).
		Scan(&acc.UserID, &acc.EmailKey, &acc.PasswordHash, &acc.Role, &acc.Active, &registration)
	if errors.Is(err, pgx.ErrNoRows) {
		return acc, domain.ErrNotFound
	}
	if err != nil {
		return acc, fmt.Errorf("read account: %w", pgerr.Classify(err))
	}
	if registration != "" {
		// A token this table wrote; one that no longer parses only costs
		// the wait it would have bought.
		acc.Registration, _ = eventstore.ParseToken(registration)
	}
	return acc, nil
}

// UpdatePasswordHash stores a rehashed password (Argon2 parameters
// changed) only while the stored hash is still old: a password change or
// reset that committed meanwhile wins, and the rehash reports ErrConflict.
func (a *Accounts) UpdatePasswordHash(ctx context.Context, id uuid.UUID, old, hash string) error {
	tag, err := a.pool.Exec(ctx, `UPDATE accounts SET password_hash = $3, updated_at = now() WHERE user_id = $1 AND password_hash = $2`, id, old, hash)
	if err != nil {
		return fmt.Errorf("rehash password: %w", pgerr.Classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("password changed meanwhile: %w", domain.ErrConflict)
	}
	return nil
}

// SetRole replaces the account's role (operators.Accounts); it shows in
// access tokens issued from the account's next login on.
func (a *Accounts) SetRole(ctx context.Context, id uuid.UUID, role string) error {
	if _, err := a.pool.Exec(ctx, `UPDATE accounts SET role = $2, updated_at = now() WHERE user_id = $1`, id, role); err != nil {
		return fmt.Errorf("set role: %w", pgerr.Classify(err))
	}
	return nil
}
