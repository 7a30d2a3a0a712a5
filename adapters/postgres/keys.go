package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/eventstore"
)

// KeyStore stores wrapped data keys in the data_keys table. It implements
// eventstore.KeyStore.
type KeyStore struct{ pool *pgxpool.Pool }

// NewKeyStore wraps a pool.
func NewKeyStore(pool *pgxpool.Pool) *KeyStore { return &KeyStore{pool: pool} }

// LoadKey returns the user's wrapped key or eventstore.ErrNoKey.
func (s *KeyStore) LoadKey(ctx context.Context, userID uuid.UUID) (eventstore.WrappedKey, error) {
	w := eventstore.WrappedKey{UserID: userID}
	err := s.pool.QueryRow(ctx, `SELECT kek_id, wrapped, destroyed_at IS NOT NULL FROM data_keys WHERE user_id = $1`, userID).
		Scan(&w.KEKID, &w.Wrapped, &w.Destroyed)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, eventstore.ErrNoKey
	}
	if err != nil {
		return w, fmt.Errorf("load data key: %w", pgerr.Classify(err))
	}
	return w, nil
}

// CreateKey inserts w unless a key exists, then returns the stored key.
func (s *KeyStore) CreateKey(ctx context.Context, w eventstore.WrappedKey) (eventstore.WrappedKey, error) {
	if _, err := s.pool.Exec(ctx, `INSERT INTO data_keys (user_id, kek_id, wrapped) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING`, w.UserID, w.KEKID, w.Wrapped); err != nil {
		return w, fmt.Errorf("create data key: %w", pgerr.Classify(err))
	}
	return s.LoadKey(ctx, w.UserID)
}

// DestroyKey crypto-shreds the user's key. Idempotent.
func (s *KeyStore) DestroyKey(ctx context.Context, userID uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO data_keys (user_id, kek_id, wrapped, destroyed_at) VALUES ($1, '', NULL, now())
		ON CONFLICT (user_id) DO UPDATE SET wrapped = NULL, destroyed_at = COALESCE(data_keys.destroyed_at, now())`, userID)
	if err != nil {
		return fmt.Errorf("destroy data key: %w", pgerr.Classify(err))
	}
	return nil
}
