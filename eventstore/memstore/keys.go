package memstore

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/biosync/biosync/eventstore"
)

// KeyStore keeps wrapped data keys in a map: the eventstore.KeyStore port
// without a database, with adapters/postgres.KeyStore's semantics (a
// destroyed key stays destroyed; creating never replaces a stored key).
type KeyStore struct {
	mu   sync.Mutex
	keys map[uuid.UUID]eventstore.WrappedKey
}

var _ eventstore.KeyStore = (*KeyStore)(nil)

// NewKeyStore returns an empty key store.
func NewKeyStore() *KeyStore { return &KeyStore{keys: map[uuid.UUID]eventstore.WrappedKey{}} }

// LoadKey returns the user's wrapped key or eventstore.ErrNoKey.
func (k *KeyStore) LoadKey(_ context.Context, userID uuid.UUID) (eventstore.WrappedKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.keys[userID]
	if !ok {
		return eventstore.WrappedKey{UserID: userID}, eventstore.ErrNoKey
	}
	return w, nil
}

// CreateKey stores w unless the user has a key, then returns the stored key.
func (k *KeyStore) CreateKey(ctx context.Context, w eventstore.WrappedKey) (eventstore.WrappedKey, error) {
	k.mu.Lock()
	if _, ok := k.keys[w.UserID]; !ok {
		k.keys[w.UserID] = w
	}
	k.mu.Unlock()
	return k.LoadKey(ctx, w.UserID)
}

// DestroyKey crypto-shreds the user's key. Idempotent.
func (k *KeyStore) DestroyKey(_ context.Context, userID uuid.UUID) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[userID] = eventstore.WrappedKey{UserID: userID, Destroyed: true}
	return nil
}

// NewCodec returns a codec whose data keys live in a fresh KeyStore,
// wrapped by a fresh random master key.
func NewCodec() (*eventstore.Codec, error) {
	master, err := eventstore.NewMasterKeys()
	if err != nil {
		return nil, err
	}
	mk, err := eventstore.ParseMasterKeys(master)
	if err != nil {
		return nil, err
	}
	kr, err := eventstore.NewKeyring(NewKeyStore(), mk)
	if err != nil {
		return nil, err
	}
	return eventstore.NewCodec(kr), nil
}
