package eventstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Errors of the key ring. ErrErased is the only one a projector may treat as
// "skip this event"; every other error (ErrKeyUnwrap in particular) must halt
// it, because a wrong master key must never look like "every user was erased".
var (
	// ErrErased: the user's data key was destroyed; the payload is gone.
	ErrErased = errors.New("user data erased (data key destroyed)")
	// ErrNoKey: the user has no data key yet (reading only, never created).
	ErrNoKey = errors.New("user has no data key")
	// ErrKeyUnwrap: a stored data key did not unwrap with the configured
	// master keys: configuration is wrong, data is not erased.
	ErrKeyUnwrap = errors.New("data key does not unwrap with the configured master key")
	// ErrDecrypt: a payload failed authentication (tampered or wrong AAD).
	ErrDecrypt = errors.New("payload failed authenticated decryption")
)

// WrappedKey is a user's data key encrypted by a master key (key-encryption
// key, KEK). Only wrapped keys are ever stored.
type WrappedKey struct {
	UserID    uuid.UUID
	KEKID     string // which master key wrapped it (rotation-ready)
	Wrapped   []byte // nonce || AES-GCM(KEK, data key, aad = user id)
	Destroyed bool   // crypto-shredded: Wrapped is empty
}

// KeyStore persists wrapped data keys. It is NOT a projection (it cannot be
// rebuilt from the log) and needs backups like the log itself.
type KeyStore interface {
	// LoadKey returns the user's wrapped key, or ErrNoKey when there is none.
	// A destroyed key comes back with Destroyed set.
	LoadKey(ctx context.Context, userID uuid.UUID) (WrappedKey, error)
	// CreateKey stores w unless the user already has a key (destroyed or
	// not) and returns whichever key is stored afterwards.
	CreateKey(ctx context.Context, w WrappedKey) (WrappedKey, error)
	// DestroyKey crypto-shreds the user's key: the wrapped bytes are erased.
	DestroyKey(ctx context.Context, userID uuid.UUID) error
}

// MasterKeys is the parsed BIOSYNC_MASTER_KEY: named 32-byte KEKs, the first
// of which wraps new data keys. Older ones stay listed to unwrap old keys
// until they are re-wrapped.
type MasterKeys struct {
	Current string
	Keys    map[string][]byte
}

// ParseMasterKeys reads "id:base64key[,id:base64key...]"; the first entry is
// current. Keys must be 32 bytes (AES-256).
func ParseMasterKeys(s string) (MasterKeys, error) {
	mk := MasterKeys{Keys: map[string][]byte{}}
	for i, part := range strings.Split(strings.TrimSpace(s), ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || id == "" {
			return MasterKeys{}, fmt.Errorf("master key entry %d: want id:base64key", i+1)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return MasterKeys{}, fmt.Errorf("master key %q: want 32 bytes of standard base64", id)
		}
		if i == 0 {
			mk.Current = id
		}
		mk.Keys[id] = key
	}
	return mk, nil
}

// NewMasterKeys makes a fresh single-key configuration string, used by the
// embedded default to generate BIOSYNC_MASTER_KEY once into the data dir.
func NewMasterKeys() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return "k1:" + base64.StdEncoding.EncodeToString(key), nil
}

// Keyring hands out users' data keys: it creates, wraps, unwraps and caches
// them. The cache makes encryption cost microseconds instead of a query;
// Forget drops a user from it (erasure).
type Keyring struct {
	store KeyStore
	keks  map[string]cipher.AEAD
	cur   string

	mu    sync.RWMutex
	cache map[uuid.UUID]cachedKey
	epoch uint64 // bumped by Forget: a key loaded before it is not cached
	now   func() time.Time
}

// cachedKey is an unwrapped data key and when it was loaded.
type cachedKey struct {
	dataKey
	loadedAt time.Time
}

// KeyCacheMaxAge bounds how long an instance uses a data key it loaded
// without checking the store again. Erasure tells every instance to forget
// the key at once (a broadcast); this bound is the guarantee when a
// broadcast is lost, and the erasure workflow purges a second time after it.
const KeyCacheMaxAge = time.Minute

// maxCachedKeys bounds memory; when exceeded the cache is simply reset.
const maxCachedKeys = 200_000

// NewKeyring builds a key ring over store with the given master keys.
func NewKeyring(store KeyStore, mk MasterKeys) (*Keyring, error) {
	k := &Keyring{store: store, keks: map[string]cipher.AEAD{}, cur: mk.Current, cache: map[uuid.UUID]cachedKey{}, now: time.Now}
	for id, key := range mk.Keys {
		a, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		k.keks[id] = a
	}
	if _, ok := k.keks[k.cur]; !ok {
		return nil, errors.New("keyring: no current master key")
	}
	return k, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// dataKey is a user's unwrapped data key: the AEAD that seals their
// events and fields, and the key that picks a sealed field's nonce.
type dataKey struct {
	aead cipher.AEAD
	// fieldNonces keys the synthetic nonces of SealField: HMAC-SHA256 of
	// a purpose label under the data key, a key of its own that never
	// encrypts anything.
	fieldNonces []byte
}

// fieldNoncePurpose labels the derivation of dataKey.fieldNonces.
const fieldNoncePurpose = "biosync field nonce v1"

// aead returns the user's data key as an AEAD, creating the key when create
// is set. It returns ErrErased for a destroyed key and ErrNoKey for a user
// without one when create is false.
func (k *Keyring) aead(ctx context.Context, userID uuid.UUID, create bool) (cipher.AEAD, error) {
	dk, err := k.key(ctx, userID, create)
	return dk.aead, err
}

// key returns the user's unwrapped data key (see aead), from the cache when
// it was loaded less than KeyCacheMaxAge ago.
func (k *Keyring) key(ctx context.Context, userID uuid.UUID, create bool) (dataKey, error) {
	now := k.now()
	k.mu.RLock()
	c, ok := k.cache[userID]
	epoch := k.epoch
	k.mu.RUnlock()
	if ok && now.Sub(c.loadedAt) < KeyCacheMaxAge {
		return c.dataKey, nil
	}
	w, err := k.store.LoadKey(ctx, userID)
	if errors.Is(err, ErrNoKey) && create {
		w, err = k.create(ctx, userID)
	}
	if err != nil {
		return dataKey{}, err
	}
	if w.Destroyed {
		return dataKey{}, ErrErased
	}
	kek, ok := k.keks[w.KEKID]
	if !ok || len(w.Wrapped) < kek.NonceSize() {
		return dataKey{}, fmt.Errorf("%w: user %s key wrapped by %q", ErrKeyUnwrap, userID, w.KEKID)
	}
	dk, err := kek.Open(nil, w.Wrapped[:kek.NonceSize()], w.Wrapped[kek.NonceSize():], userID[:])
	if err != nil {
		return dataKey{}, fmt.Errorf("%w: user %s key wrapped by %q", ErrKeyUnwrap, userID, w.KEKID)
	}
	a, err := newGCM(dk)
	if err != nil {
		return dataKey{}, err
	}
	mac := hmac.New(sha256.New, dk)
	mac.Write([]byte(fieldNoncePurpose))
	key := dataKey{aead: a, fieldNonces: mac.Sum(nil)}
	k.mu.Lock()
	if len(k.cache) >= maxCachedKeys {
		k.cache = map[uuid.UUID]cachedKey{}
	}
	if k.epoch == epoch { // no erasure raced with this load
		k.cache[userID] = cachedKey{dataKey: key, loadedAt: now}
	}
	k.mu.Unlock()
	return key, nil
}

func (k *Keyring) create(ctx context.Context, userID uuid.UUID) (WrappedKey, error) {
	dk := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, dk); err != nil {
		return WrappedKey{}, err
	}
	kek := k.keks[k.cur]
	nonce := make([]byte, kek.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return WrappedKey{}, err
	}
	w := WrappedKey{UserID: userID, KEKID: k.cur, Wrapped: kek.Seal(nonce, nonce, dk, userID[:])}
	return k.store.CreateKey(ctx, w)
}

// Forget drops a user's key from this instance's cache (after erasure).
func (k *Keyring) Forget(userID uuid.UUID) {
	k.mu.Lock()
	delete(k.cache, userID)
	k.epoch++
	k.mu.Unlock()
}

// Destroy crypto-shreds a user: the stored key is erased and the cache entry
// dropped. Every event of theirs in the log becomes unreadable.
func (k *Keyring) Destroy(ctx context.Context, userID uuid.UUID) error {
	if err := k.store.DestroyKey(ctx, userID); err != nil {
		return err
	}
	k.Forget(userID)
	return nil
}

// DataKeyID names the payload key scheme written in every envelope. A user
// data key rotation would introduce "dek2".
const DataKeyID = "dek1"

// aad binds a ciphertext to its event: moving a payload to another event id
// or type makes decryption fail.
func aad(eventID uuid.UUID, typ string) []byte {
	out := make([]byte, 0, 16+len(typ))
	out = append(out, eventID[:]...)
	return append(out, typ...)
}

// Seal encrypts plaintext for e's user with AES-256-GCM (random nonce, event
// id and type as associated data), creating the user's key on first use.
func (k *Keyring) Seal(ctx context.Context, userID, eventID uuid.UUID, typ string, plaintext []byte) ([]byte, error) {
	a, err := k.aead(ctx, userID, true)
	if err != nil {
		return nil, err
	}
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := io.ReadFull(rand.Reader, out); err != nil {
		return nil, err
	}
	return a.Seal(out, out, plaintext, aad(eventID, typ)), nil
}

// Open decrypts a payload sealed by Seal. It returns ErrErased when the
// user's key was destroyed.
func (k *Keyring) Open(ctx context.Context, userID, eventID uuid.UUID, typ string, sealed []byte) ([]byte, error) {
	a, err := k.aead(ctx, userID, false)
	if errors.Is(err, ErrNoKey) {
		// An event exists but its key does not: only erasure (or a restored
		// database without keys) leads here; treat like erasure only if the
		// store says so, otherwise fail loudly.
		return nil, fmt.Errorf("%w: user %s", ErrNoKey, userID)
	}
	if err != nil {
		return nil, err
	}
	if len(sealed) < a.NonceSize() {
		return nil, ErrDecrypt
	}
	pt, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], aad(eventID, typ))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SealField seals one personal field of a stored row (a read model's
// address or display name) with the user's data key: AES-256-GCM with the
// user id and field name as associated data, so a value cannot be moved to
// another user's row or another column. Erasure destroys the key, and with
// it every value sealed this way, in every copy and backup of the row.
//
// The nonce is synthetic: HMAC-SHA256, under a key derived from the data
// key, of the field name and the value (the SIV construction). Sealing a
// value twice gives the same bytes, so a read model rebuilt from the log
// or a redelivered event leaves the rows byte-identical, while two
// different values never share a nonce. What that reveals is only that a
// user's field holds the same value in two rows or at two times.
//
// Unlike Seal it never creates a key: the rows it seals derive from events
// the key already opened, and a user without a key has nothing to seal.
func (k *Keyring) SealField(ctx context.Context, userID uuid.UUID, field string, plaintext []byte) ([]byte, error) {
	dk, err := k.key(ctx, userID, false)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, dk.fieldNonces)
	mac.Write([]byte(field))
	mac.Write([]byte{0}) // a field name holds no NUL: field and value cannot run together
	mac.Write(plaintext)
	n := dk.aead.NonceSize()
	out := make([]byte, n, n+len(plaintext)+dk.aead.Overhead())
	copy(out, mac.Sum(nil)[:n])
	return dk.aead.Seal(out, out, plaintext, aad(userID, field)), nil
}

// OpenField opens a value sealed by SealField for the same user and field.
// It returns ErrErased when the user's key was destroyed (the value is gone
// for good), ErrNoKey when the user never had one, and ErrDecrypt when the
// value was altered or belongs to another user or field.
func (k *Keyring) OpenField(ctx context.Context, userID uuid.UUID, field string, sealed []byte) ([]byte, error) {
	a, err := k.aead(ctx, userID, false)
	if err != nil {
		return nil, err
	}
	if len(sealed) < a.NonceSize() {
		return nil, ErrDecrypt
	}
	pt, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], aad(userID, field))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
