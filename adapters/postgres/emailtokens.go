package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// EmailTokens is the email_tokens table: single-use tokens mailed to users
// (accounts.EmailTokens). Only hashes are stored.
type EmailTokens struct{ pool *pgxpool.Pool }

// NewEmailTokens wraps a pool.
func NewEmailTokens(pool *pgxpool.Pool) *EmailTokens { return &EmailTokens{pool: pool} }

// Issue stores the hash of token for user and purpose, valid for ttl. The
// user's earlier unused tokens of the same purpose stop working: only the
// newest mail counts.
func (t *EmailTokens) Issue(ctx context.Context, user uuid.UUID, purpose, token string, ttl time.Duration) error {
	h := sha256.Sum256([]byte(token))
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`, user, purpose); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, now() + $4::interval)`,
			h[:], user, purpose, ttl.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("store email token: %w", pgerr.Classify(err))
	}
	return nil
}

// Consume spends token if it exists for purpose, is unused and unexpired,
// and returns its user; domain.ErrNotFound otherwise (one answer for
// unknown, used and expired tokens).
func (t *EmailTokens) Consume(ctx context.Context, purpose, token string) (uuid.UUID, error) {
	h := sha256.Sum256([]byte(token))
	var user uuid.UUID
	err := t.pool.QueryRow(ctx, `UPDATE email_tokens SET used_at = now()
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() RETURNING user_id`, h[:], purpose).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, domain.ErrNotFound
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("spend email token: %w", pgerr.Classify(err))
	}
	return user, nil
}

// RetirePasswordResets spends every unused password-reset token of user
// inside tx. A credential change (password, MFA on or off, an operator's
// MFA reset) calls it in the transaction that makes the change, so a reset
// link mailed before the change can never undo it afterwards.
func RetirePasswordResets(ctx context.Context, tx pgx.Tx, user uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
		user, commands.PurposeResetPassword)
	return err
}
