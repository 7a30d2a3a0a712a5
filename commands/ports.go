package commands

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/eventstore"
)

// Account is the command-side record of a user (see Accounts).
type Account struct {
	UserID       uuid.UUID
	EmailKey     []byte
	PasswordHash string
	Role         string
	Active       bool
	// Registration is where the account's user.registered event landed
	// in the log; empty for accounts completed before it was recorded.
	Registration eventstore.Token
}

// Accounts is the synchronous, cross-user state commands need: the email
// claim and credentials. Invariants across users have no common order in
// the log, so they are decided here before the event is appended. Every
// concept that checks a password or a user reads it, hence the kernel.
type Accounts interface {
	// Claim returns domain.ErrConflict when the email key is taken. A
	// pending claim older than the takeover window (an append whose outcome
	// stayed unknown and never landed) can be claimed again.
	Claim(ctx context.Context, a Account) error
	// Complete activates a claim once its registration event is in the
	// log at registration (kept, so reads can wait for it to be projected).
	Complete(ctx context.Context, userID uuid.UUID, registration eventstore.Token) error
	Release(ctx context.Context, userID uuid.UUID) error
	// ByEmailKey and ByID return domain.ErrNotFound for unknown or pending accounts.
	ByEmailKey(ctx context.Context, key []byte) (Account, error)
	ByID(ctx context.Context, id uuid.UUID) (Account, error)
	// UpdatePasswordHash replaces the hash only while it is still old, so a
	// rehash at login can never undo a concurrent password change or reset.
	UpdatePasswordHash(ctx context.Context, id uuid.UUID, old, hash string) error
}

// PasswordHasher hashes and checks passwords (Argon2id in adapters/auth).
type PasswordHasher interface {
	Hash(password string) (string, error)
	Verify(password, phc string) (ok bool, needsRehash bool, err error)
	DummyVerify(password string)
}

// EmailIndex is the key of the hash under which email addresses are
// claimed, so no plaintext address is kept in the claim table. Accounts
// claim under it, sessions look logins up by it, and operators' tools and
// per-account rate limits key by it.
type EmailIndex []byte

// Key is the keyed hash (HMAC-SHA256) of the normalized address.
func (k EmailIndex) Key(email string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(identity.NormalizeEmail(email)))
	return m.Sum(nil)
}

// Required returns an error naming the first missing dependency of
// service, so constructors find wiring mistakes at start instead of at
// request time. A dependency is missing when it is nil (an interface, a
// pointer, a func, a map) or, for byte slices, empty; deps lists name,
// value pairs.
func Required(service string, deps ...any) error {
	for i := 0; i+1 < len(deps); i += 2 {
		if missing(deps[i+1]) {
			return fmt.Errorf("%s: %v is required", service, deps[i])
		}
	}
	if len(deps)%2 != 0 {
		return errors.New(service + ": Required takes name, value pairs")
	}
	return nil
}

func missing(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []byte:
		return len(x) == 0
	case EmailIndex:
		return len(x) == 0
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan:
		return r.IsNil()
	}
	return false
}

// RecordAudit records e for a command whose effect already happened, so a
// failing audit store is logged loudly but never turns the command into an
// error (a login must not fail because the audit log is slow); a nil a
// means auditing is not configured. A zero e.At becomes now.
func RecordAudit(ctx context.Context, a Audit, log *slog.Logger, now time.Time, e AuditEntry) {
	if a == nil {
		return
	}
	if e.At.IsZero() {
		e.At = now.UTC()
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := a.Record(actx, e); err != nil && log != nil {
		log.Error("audit entry not recorded", "action", e.Action, "subject", e.Subject, "err", err)
	}
}
